"""Deprecated path: removing points is a geometry op and lives in :mod:`pointlens.ops.removal` (so that
attribution methods, metrics and the dropping experiment all import it from below). Importing from here still
works for one release with a ``DeprecationWarning``."""

from __future__ import annotations

import warnings

from pointlens.ops import removal as _removal

_NAMES = ("CENTRES", "cloud_centre", "shift_to_centre", "delete_points", "keep_points", "kept_indices")


def __getattr__(name: str):
    if name in _NAMES or hasattr(_removal, name):
        warnings.warn(f"pointlens.perturb.removal.{name} moved to pointlens.ops.removal.{name}; the old path goes "
                      "in the next release", DeprecationWarning, stacklevel=2)
        return getattr(_removal, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
