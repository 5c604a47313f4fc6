"""Single point-cloud files: text (``.txt``/``.xyz``/``.csv``), ``.npy``/``.npz`` arrays, and PLY/OFF/OBJ
(vertices, or points sampled on the surface when the file has faces)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from pointlens.data.formats.common import (
    check_declared_bytes,
    check_finite,
    check_numeric_dtype,
    check_point_shape,
    data_reader,
    decode_text,
    npy_header,
    open_npz,
    reading,
    require_file,
)
from pointlens.data.formats.mesh import ply_header, read_mesh, sample_surface
from pointlens.errors import DataError, bad_argument
from pointlens.utils.validate import check_choice, check_int

DEFAULT_MESH_POINTS = 2048
"""Points sampled from a mesh file when no count is given."""
CLOUD_SUFFIXES = (".npy", ".npz", ".txt", ".xyz", ".csv", ".ply", ".off", ".obj")


_EMPTY_FIELD = re.compile(r"(^|,)[ \t]*(,|$)")


def _text_lines(path: Path, max_lines: int | None) -> list[tuple[int, str]]:
    """``(line number, text without comment)`` of the non-empty lines, decoded strictly; ``max_lines`` bounds
    the lines read after the first numeric one (plus a few header lines)."""
    data = Path(path).read_bytes()
    text = decode_text(data, path)
    out = []
    for k, line in enumerate(text.splitlines()):
        body = line.split("#", 1)[0].strip()
        if not body:
            continue
        if "," in body and _EMPTY_FIELD.search(body):
            raise DataError(f"{path}: line {k + 1} has an empty field between commas: {body[:60]!r}; expected "
                            "x, y, z[, ...] with one number between commas")
        out.append((k + 1, body))
        if max_lines is not None and len(out) >= max_lines + 16:
            break
    return out


@data_reader("the text file")
def parse_text_cloud(path: Path, max_lines: int | None = None) -> np.ndarray:
    """Rows of >= 3 numbers separated by commas and/or whitespace; leading header lines are skipped.

    The file must be UTF-8 text without NUL bytes (a refusal names the line); a comma-separated line may not
    have empty fields (``1,,2``). Reads only the first ``max_lines`` point lines when given.

    Returns:
        ``(N, D)`` float32, ``D >= 3`` (all columns of the file).
    """
    lines = _text_lines(path, max_lines)
    fast = _fast_block(lines, max_lines)
    if fast is not None:
        return fast
    rows, started, width = [], False, None
    for k, body in lines:
        toks = body.replace(",", " ").split()
        try:
            vals = [float(t) for t in toks]
        except ValueError:
            if started:
                raise DataError(f"{path}: line {k} is not numeric: {body[:60]!r}") from None
            continue  # a header line
        if len(vals) < 3:
            if started:
                raise DataError(f"{path}: line {k} has {len(vals)} value(s); expected x, y, z")
            continue  # e.g. the point count of an .xyz header
        if started and len(vals) != width:
            raise DataError(f"{path}: line {k} has {len(vals)} values, earlier lines {width}")
        rows.append(vals)
        started, width = True, len(vals)
        if max_lines is not None and len(rows) >= max_lines:
            break
    if not rows:
        raise DataError(f"{path}: no point found (expected lines of x, y, z separated by commas or spaces)")
    return np.asarray(rows, dtype=np.float32)


def _fast_block(lines: list[tuple[int, str]], max_lines: int | None) -> np.ndarray | None:
    """One numpy conversion of the point lines when the file is regular (the common case); None otherwise, and
    the line-by-line parser then gives the exact message."""
    start = 0
    while start < len(lines) and start < 16:
        toks = lines[start][1].replace(",", " ").split()
        try:
            [float(t) for t in toks]
        except ValueError:
            start += 1
            continue
        if len(toks) < 3:
            start += 1
            continue
        break
    else:
        return None
    width = len(lines[start][1].replace(",", " ").split())
    block = lines[start:] if max_lines is None else lines[start:start + max_lines]
    try:
        flat = np.array(" ".join(b for _, b in block).replace(",", " ").split(), dtype=np.float32)
    except ValueError:
        return None
    if flat.size != width * len(block):
        return None
    return flat.reshape(len(block), width)


def _first_cloud(arr: np.ndarray, path: Path) -> np.ndarray:
    check_point_shape(arr.shape, path)
    return arr[0] if arr.ndim == 3 else arr


@data_reader("the point-cloud file")
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
        with reading(path, "the .npy file"):
            arr = _load_npy_first_cloud(path)
    elif suffix == ".npz":
        with reading(path, "the .npz file"), open_npz(path) as z:
            if "points" not in z.files:
                raise DataError(f"{path}: no 'points' array (arrays: {', '.join(z.files)})")
            arr = _first_cloud(z["points"], path)
            check_numeric_dtype(arr.dtype, path, "points")
    elif suffix == ".ply":
        import trimesh

        with reading(path, "the PLY file"):
            ply_header(path)  # declared counts checked against the file size before trimesh allocates
            arr = np.asarray(trimesh.load(str(path), process=False).vertices)
            check_point_shape(arr.shape, path, "vertices", batched=False)
    else:
        arr = parse_text_cloud(path, num_points)
    arr = np.asarray(arr[:, :3], dtype=np.float32)
    if len(arr) == 0:
        raise DataError(f"{path}: the cloud has no points")
    if num_points is not None:
        if len(arr) < num_points:
            raise bad_argument("num_points", num_points, f"at most {len(arr)} (the points in {path})")
        arr = arr[:num_points]
    check_finite(arr, path)
    return np.ascontiguousarray(arr)


def _load_npy_first_cloud(path: Path) -> np.ndarray:
    """The first cloud of an ``.npy`` after its header is checked (dtype, shape, declared bytes <= file)."""
    with open(path, "rb") as fh:
        shape, _, dtype, header = npy_header(fh, path, "points")
    check_point_shape(shape, path)
    check_declared_bytes(shape, dtype, path.stat().st_size - header, path, "points")
    arr = np.load(path, mmap_mode="r", allow_pickle=False)  # only the first cloud is copied into memory
    return np.array(_first_cloud(arr, path))


def _ply_has_faces(path: Path) -> bool:
    with reading(path, "the PLY header"):
        return any(name == "face" and count > 0 for name, count, _ in ply_header(path)["elements"])
