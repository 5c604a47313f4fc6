"""Single point-cloud files: text (``.txt``/``.xyz``/``.csv``), ``.npy``/``.npz`` arrays, and PLY/OFF/OBJ
(vertices, or points sampled on the surface when the file has faces)."""

from __future__ import annotations

import itertools
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np

from pointlens.data.formats.common import check_finite, require_file
from pointlens.data.formats.mesh import read_mesh, sample_surface
from pointlens.errors import DataError, bad_argument
from pointlens.utils.validate import check_choice, check_int

DEFAULT_MESH_POINTS = 2048
"""Points sampled from a mesh file when no count is given."""
CLOUD_SUFFIXES = (".npy", ".npz", ".txt", ".xyz", ".csv", ".ply", ".off", ".obj")


def parse_text_cloud(path: Path, max_lines: int | None = None) -> np.ndarray:
    """Rows of >= 3 numbers separated by commas and/or whitespace; leading header lines are skipped.

    Reads only the first ``max_lines`` point lines when given (fast path: one numpy conversion of the block).
    """
    try:
        with open(path) as fh:
            lines = list(fh) if max_lines is None else list(itertools.islice(fh, max_lines))
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read as text ({e})") from None
    if lines:
        first = lines[0].replace(",", " ").split()
        try:
            flat = np.array(" ".join(lines).replace(",", " ").split(), dtype=np.float32)
            if len(first) >= 3 and flat.size == len(first) * len(lines):
                return flat.reshape(len(lines), len(first))
        except ValueError:
            pass
    return _parse_text_slow(path, max_lines)


def _parse_text_slow(path: Path, max_lines: int | None) -> np.ndarray:
    rows, started = [], False
    try:
        with open(path) as fh:
            for k, line in enumerate(fh):
                toks = line.split("#", 1)[0].replace(",", " ").split()
                if not toks:
                    continue
                try:
                    vals = [float(t) for t in toks]
                except ValueError:
                    if started:
                        raise DataError(f"{path}: line {k + 1} is not numeric: {line.strip()[:60]!r}") \
                            from None
                    continue  # a header line
                if len(vals) < 3:
                    if started:
                        raise DataError(f"{path}: line {k + 1} has {len(vals)} value(s); expected x, y, z")
                    continue  # e.g. the point count of an .xyz header
                if started and len(vals) != len(rows[0]):
                    raise DataError(f"{path}: line {k + 1} has {len(vals)} values, earlier lines "
                                    f"{len(rows[0])}")
                rows.append(vals)
                started = True
                if max_lines is not None and len(rows) >= max_lines:
                    break
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read as text ({e})") from None
    if not rows:
        raise DataError(f"{path}: no point found (expected lines of x, y, z separated by commas or spaces)")
    return np.asarray(rows, dtype=np.float32)


def _first_cloud(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.ndim == 3:
        arr = arr[0]
    if arr.ndim != 2 or arr.shape[-1] < 3:
        raise DataError(f"{path}: points of shape {arr.shape}; expected (N, D>=3) or (M, N, D>=3)")
    return arr


def read_cloud_file(path, num_points: int | None = None, seed: int = 0) -> np.ndarray:
    """Read one point cloud from a file.

    Formats: ``.npy`` (``(N, D)`` or ``(M, N, D)``: first cloud), ``.npz`` (key ``points``, first cloud if
    batched), ``.txt``/``.xyz``/``.csv`` (x, y, z[, ...] per line separated by commas or spaces), ``.ply`` (a
    point-cloud PLY gives its vertices; a mesh PLY is sampled), ``.off``/``.obj`` meshes (sampled by area).

    Args:
        path: the file.
        num_points: for clouds, keep the first ``num_points`` points (None: all); for meshes, the number of
            area samples (None: 2048).
        seed: seed of the mesh sampling.

    Returns:
        ``(N, 3)`` float32 xyz (extra channels dropped).

    Raises:
        DataError: missing, unreadable, truncated or NaN-containing file; a mesh without faces.
        InvalidArgumentError: unknown extension, or more points asked than the cloud has.
    """
    path = require_file(path)
    if num_points is not None:
        num_points = check_int("num_points", num_points, minimum=1)
    suffix = path.suffix.lower()
    check_choice("path suffix", suffix, CLOUD_SUFFIXES)
    if suffix in (".off", ".obj") or suffix == ".ply" and _ply_has_faces(path):
        v, f = read_mesh(path)
        return sample_surface(v, f, num_points or DEFAULT_MESH_POINTS, seed, source=str(path))
    if suffix == ".npy":
        try:
            arr = _first_cloud(np.load(path, allow_pickle=False), path)
        except (OSError, ValueError, EOFError) as e:
            raise DataError(f"{path}: cannot read the .npy file ({e})") from None
    elif suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                if "points" not in z.files:
                    raise DataError(f"{path}: no 'points' array (arrays: {', '.join(z.files)})")
                arr = _first_cloud(z["points"], path)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
            raise DataError(f"{path}: cannot read the .npz file ({type(e).__name__}: {e})") from None
    elif suffix == ".ply":
        import trimesh

        try:
            arr = np.asarray(trimesh.load(str(path), process=False).vertices)
        except Exception as e:
            raise DataError(f"{path}: cannot read the PLY file ({type(e).__name__}: {e})") from None
    else:
        arr = parse_text_cloud(path, num_points)
    arr = np.asarray(arr[:, :3], dtype=np.float32)
    if num_points is not None:
        if len(arr) < num_points:
            raise bad_argument("num_points", num_points, f"at most {len(arr)} (the points in {path})")
        arr = arr[:num_points]
    check_finite(arr, path)
    return np.ascontiguousarray(arr)


def _ply_has_faces(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    header = head.split(b"end_header", 1)[0]
    m = re.search(rb"element\s+face\s+(\d+)", header)
    return bool(m and int(m.group(1)) > 0)
