"""Checks every file parser and dataset reader shares: the file must exist, coordinates must be finite."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pointlens.errors import DataError


def require_file(path, layout: str | None = None) -> Path:
    """``path`` as a :class:`Path`; raises :class:`DataError` naming it (and the expected ``layout``) when it is
    not a file."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"{p}: file not found" + (f"; expected {layout}" if layout else ""))
    return p


def check_finite(points: np.ndarray, source) -> None:
    """Raise :class:`DataError` naming ``source`` when ``points (M, N, D)`` has NaN/infinite coordinates."""
    finite = np.isfinite(points)
    if finite.all():
        return
    bad = ~finite.all(axis=-1)
    if bad.ndim == 1:
        bad = bad[None]
    clouds = np.flatnonzero(bad.any(axis=1))
    raise DataError(f"{source}: {int(bad.sum())} point(s) in {len(clouds)} cloud(s) have NaN or infinite "
                    f"coordinates (first bad cloud: index {int(clouds[0])}); repair or drop them")
