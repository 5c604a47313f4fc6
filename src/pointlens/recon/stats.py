"""Deprecated: the reconstruction study's statistics moved to :mod:`pointlens.stats` (``spearman`` there is
the batched correlation; the 1-D test with a p-value that lived here is :func:`pointlens.stats.spearman_test`).
Importing from here still works for one release with a ``DeprecationWarning``."""

from __future__ import annotations

import warnings

from pointlens import stats as _stats

_MOVED = {"StatResult": "StatResult", "ks_test": "ks_test", "pairwise_ks": "pairwise_ks", "spearman": "spearman_test"}


def __getattr__(name: str):
    if name in _MOVED:
        warnings.warn(f"pointlens.recon.stats.{name} moved to pointlens.stats.{_MOVED[name]}; the old path goes in "
                      "the next release", DeprecationWarning, stacklevel=2)
        return getattr(_stats, _MOVED[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
