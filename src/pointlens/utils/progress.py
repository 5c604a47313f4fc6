"""The one progress helper: a tqdm bar on stderr, silent under ``--quiet`` or when stderr is not a terminal."""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm

_QUIET = False


def set_quiet(quiet: bool) -> None:
    """Silence (True) or allow (False) every progress bar of the process."""
    global _QUIET
    _QUIET = bool(quiet)


def progress_enabled() -> bool:
    """True when bars should show: not quiet, stderr is a terminal, and POINTLENS_PROGRESS is not 0."""
    env = os.environ.get("POINTLENS_PROGRESS")
    if env is not None:
        return env not in ("0", "false", "no") and not _QUIET
    return not _QUIET and sys.stderr.isatty()


def progress(iterable=None, total: int | None = None, desc: str | None = None, **kwargs):
    """Wrap ``iterable`` in a progress bar (or return a manual bar when ``iterable`` is None).

    Args:
        iterable: what to iterate; may be None for a manual bar updated with ``.update(n)``.
        total: number of steps when ``len(iterable)`` is unknown.
        desc: label shown before the bar.
    """
    return tqdm(iterable, total=total, desc=desc, disable=not progress_enabled(), leave=False,
                dynamic_ncols=True, file=sys.stderr, **kwargs)
