"""Mesh files: OFF (with ModelNet's merged header), PLY and OBJ through trimesh, and area-weighted surface
sampling. Each parser returns plain arrays; :mod:`pointlens.data.readers` builds datasets from them."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from pointlens.data.formats.common import data_reader, decode_text, read_text, require_file
from pointlens.errors import DataError, bad_argument
from pointlens.utils.validate import check_int

MESH_SUFFIXES = (".off", ".ply", ".obj")


_PLY_SIZES = {"char": 1, "int8": 1, "uchar": 1, "uint8": 1, "short": 2, "int16": 2, "ushort": 2, "uint16": 2,
              "int": 4, "int32": 4, "uint": 4, "uint32": 4, "float": 4, "float32": 4, "double": 8, "float64": 8}


def ply_header(path) -> dict:
    """Parse a PLY header and check its declared element counts against the file size (before any reader
    allocates them).

    Returns:
        ``{"format": "ascii" | "binary_little_endian" | "binary_big_endian", "elements": [(name, count,
        properties)], "header_bytes": int}``.

    Raises:
        DataError: not a PLY file, no ``end_header`` in the first 64 KiB, a malformed element/property line, a
            negative count, or counts that need more bytes than the file has.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(65536)
    size = path.stat().st_size
    if not head.startswith(b"ply"):
        raise DataError(f"{path}: not a PLY file (it must start with 'ply')")
    end = re.search(rb"end_header[ \t]*\r?\n", head)
    if end is None:
        raise DataError(f"{path}: no 'end_header' line in the first 64 KiB (truncated or not a PLY file)")
    text = decode_text(head[: end.end()], path)
    fmt, elements = None, []
    for k, line in enumerate(text.splitlines()):
        toks = line.split()
        if not toks or toks[0] in ("ply", "comment", "obj_info", "end_header"):
            continue
        if toks[0] == "format" and len(toks) >= 2:
            fmt = toks[1]
        elif toks[0] == "element" and len(toks) == 3 and re.fullmatch(r"-?\d+", toks[2]):
            count = int(toks[2])
            if count < 0:
                raise DataError(f"{path}: line {k + 1} declares {count} {toks[1]} elements (negative)")
            elements.append((toks[1], count, []))
        elif toks[0] == "property" and elements and len(toks) >= 3:
            if toks[1] == "list":
                if len(toks) != 5 or toks[2] not in _PLY_SIZES or toks[3] not in _PLY_SIZES:
                    raise DataError(f"{path}: line {k + 1} is a malformed list property: {line.strip()[:60]!r}")
                elements[-1][2].append(("list", toks[2], toks[3]))
            elif toks[1] in _PLY_SIZES:
                elements[-1][2].append(("scalar", toks[1], None))
            else:
                raise DataError(f"{path}: line {k + 1} has the unknown property type {toks[1][:20]!r}")
        else:
            raise DataError(f"{path}: line {k + 1} of the header is malformed: {line.strip()[:60]!r}")
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise DataError(f"{path}: unknown PLY format {fmt!r}; expected ascii or binary_little/big_endian")
    need = 0
    for _, count, props in elements:
        if fmt == "ascii":
            row = 2 * max(1, len(props))  # at least one character and one separator per value
        else:
            row = sum(_PLY_SIZES[t] for kind, t, _ in props)  # a list needs at least its count
        need += count * max(1, row)
    available = size - end.end()
    if need > available:
        raise DataError(f"{path}: the header declares " + ", ".join(f"{c} {n}" for n, c, _ in elements) +
                        f" elements, which need at least {need} bytes, but the file has {available} after the "
                        "header (truncated or corrupt counts)")
    return {"format": fmt, "elements": elements, "header_bytes": end.end()}


def check_faces(faces: np.ndarray, num_vertices: int, source) -> np.ndarray:
    """Refuse face indices outside ``[0, num_vertices)`` (negative indices are never wrapped)."""
    faces = np.asarray(faces)
    if faces.size and (faces.min() < 0 or faces.max() >= num_vertices):
        bad = int(faces.min()) if faces.min() < 0 else int(faces.max())
        row = int(np.flatnonzero(((faces < 0) | (faces >= num_vertices)).any(axis=-1))[0])
        raise DataError(f"{source}: face {row} uses the vertex index {bad}; expected 0 <= index < {num_vertices} "
                        "(the mesh has that many vertices)")
    return faces


@data_reader("the OFF file")
def read_off(path) -> tuple[np.ndarray, np.ndarray]:
    """Read an OFF mesh, tolerating ModelNet's merged header (``OFF490 518 0`` on the first line).

    Polygons with more than three vertices are split into a triangle fan. Comments (``#``) and the COFF/NOFF
    variants (extra columns after xyz) are accepted. The file must be UTF-8 text; counts must be
    non-negative and face indices in range.

    Args:
        path: the ``.off`` file.

    Returns:
        ``(vertices (V, 3) float64, faces (F, 3) int64)``.

    Raises:
        DataError: missing file, not an OFF file, truncated, negative counts, bad indices, or no faces.
    """
    path = require_file(path)
    text = read_text(path)
    lines = [t for t in (s.split("#", 1)[0].strip() for s in text.splitlines()) if t]
    m = re.match(r"^([A-Za-z]*OFF)\s*(.*)$", lines[0]) if lines else None
    if m is None:
        raise DataError(f"{path}: not an OFF file (the first line must start with 'OFF')")
    if m.group(2):
        counts, body = m.group(2), 1
    else:
        counts, body = (lines[1] if len(lines) > 1 else ""), 2
    try:
        nv, nf = (int(x) for x in counts.split()[:2])
    except ValueError:
        raise DataError(f"{path}: bad OFF header counts {counts[:60]!r}; expected 'vertices faces edges'") \
            from None
    if nv < 0 or nf < 0:
        raise DataError(f"{path}: the OFF header declares {nv} vertices and {nf} faces; counts must be >= 0")
    vlines, flines = lines[body:body + nv], lines[body + nv:body + nv + nf]
    if len(vlines) < nv or len(flines) < nf:
        raise DataError(f"{path}: truncated OFF file: header announces {nv} vertices and {nf} faces, found "
                        f"{len(vlines)} and {max(0, len(flines))}")
    try:
        vertices = np.array([s.split()[:3] for s in vlines], dtype=np.float64).reshape(nv, 3)
    except ValueError:
        raise DataError(f"{path}: malformed vertex lines (expected three numbers per line)") from None
    if nf == 0:
        raise DataError(f"{path}: the OFF file has no faces (a mesh is needed to sample its surface)")
    rows = [s.split() for s in flines]
    try:
        if all(len(r) >= 4 and r[0] == "3" for r in rows):
            faces = np.array([[int(x) for x in r[1:4]] for r in rows], dtype=np.int64)
        else:
            tris = []
            for r in rows:
                k = int(r[0])
                ids = [int(x) for x in r[1:1 + k]] if 3 <= k <= len(r) - 1 else []
                if len(ids) < 3 or len(ids) != k:
                    raise ValueError
                tris.extend((ids[0], ids[j], ids[j + 1]) for j in range(1, k - 1))
            faces = np.array(tris, dtype=np.int64).reshape(-1, 3)
    except (ValueError, OverflowError):
        raise DataError(f"{path}: malformed face lines (expected 'k i1 ... ik' with k >= 3 integers)") from None
    check_faces(faces, nv, path)
    return vertices, faces


@data_reader("the mesh")
def read_mesh(path) -> tuple[np.ndarray, np.ndarray]:
    """Read a triangle mesh from ``.off`` (own parser), ``.ply`` or ``.obj`` (trimesh).

    PLY headers are checked against the file size and OBJ files decoded strictly before trimesh reads them;
    face indices must lie in ``[0, V)`` (never wrapped).

    Returns:
        ``(vertices (V, 3) float64, faces (F, 3) int64)``.

    Raises:
        DataError: missing/unreadable file, a file without faces, out-of-range face indices.
    """
    path = require_file(path)
    suffix = path.suffix.lower()
    if suffix == ".off":
        vertices, faces = read_off(path)
    elif suffix in (".ply", ".obj"):
        import trimesh

        if suffix == ".ply":
            ply_header(path)
        else:
            read_text(path)  # strict UTF-8, no NUL bytes, with the line number in a refusal
        mesh = trimesh.load(str(path), force="mesh", process=False)
        vertices = np.asarray(mesh.vertices, dtype=np.float64).reshape(-1, 3)
        faces = np.asarray(getattr(mesh, "faces", np.zeros((0, 3))), dtype=np.int64).reshape(-1, 3)
        if len(faces) == 0:
            raise DataError(f"{path}: the mesh has no faces (a mesh is needed to sample its surface)")
        check_faces(faces, len(vertices), path)
    else:
        raise bad_argument("path", str(path), "a mesh file ending in " + ", ".join(MESH_SUFFIXES))
    if not np.isfinite(vertices).all():
        bad = int((~np.isfinite(vertices)).any(-1).sum())
        raise DataError(f"{path}: {bad} vertex(es) with NaN or infinite coordinates")
    return vertices, faces


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng([int(s) % 2**32 for s in np.atleast_1d(seed)])


def sample_surface(vertices, faces, n: int, seed=0, *, return_normals: bool = False, source: str = "mesh"):
    """Sample ``n`` points uniformly by area on a triangle mesh.

    Each point picks a triangle with probability proportional to its area, then uniform barycentric
    coordinates (``sqrt`` trick), so the expected number of points in any region is ``n * area / total``.

    Args:
        vertices: ``(V, 3)``.
        faces: ``(F, 3)`` vertex indices.
        n: number of points (>= 1).
        seed: int, sequence of ints, or a ``numpy.random.Generator``; the same seed gives the same points.
        return_normals: also return the unit normal of each point's triangle.
        source: name used in error messages.

    Returns:
        ``(n, 3)`` float32 points, and ``(n, 3)`` float32 normals with ``return_normals``.

    Raises:
        DataError: the mesh has zero total area or non-finite vertices.
    """
    n = check_int("n", n, minimum=1)
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    tri = v[f]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area2 = np.linalg.norm(cross, axis=1)
    cdf = np.cumsum(area2)
    if len(cdf) == 0 or not np.isfinite(cdf[-1]) or cdf[-1] <= 0:
        raise DataError(f"{source}: the mesh has zero surface area; cannot sample points on it")
    rng = _rng(seed)
    face = np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right"), len(cdf) - 1)
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    a, b, c = tri[face, 0], tri[face, 1], tri[face, 2]
    pts = ((1 - s)[:, None] * a + (s * (1 - r2))[:, None] * b + (s * r2)[:, None] * c).astype(np.float32)
    if not return_normals:
        return pts
    normals = (cross[face] / area2[face, None]).astype(np.float32)
    return pts, normals
