"""Mesh files: OFF (with ModelNet's merged header), PLY and OBJ through trimesh, and area-weighted surface
sampling. Each parser returns plain arrays; :mod:`pointlens.data.readers` builds datasets from them."""

from __future__ import annotations

import re

import numpy as np

from pointlens.data.formats.common import require_file
from pointlens.errors import DataError, bad_argument
from pointlens.utils.validate import check_int

MESH_SUFFIXES = (".off", ".ply", ".obj")


def read_off(path) -> tuple[np.ndarray, np.ndarray]:
    """Read an OFF mesh, tolerating ModelNet's merged header (``OFF490 518 0`` on the first line).

    Polygons with more than three vertices are split into a triangle fan. Comments (``#``) and the COFF/NOFF
    variants (extra columns after xyz) are accepted.

    Args:
        path: the ``.off`` file.

    Returns:
        ``(vertices (V, 3) float64, faces (F, 3) int64)``.

    Raises:
        DataError: missing file, not an OFF file, truncated, bad indices, or no faces.
    """
    path = require_file(path)
    try:
        text = path.read_text(errors="strict")
    except (UnicodeDecodeError, OSError) as e:
        raise DataError(f"{path}: cannot read as a text OFF file ({e})") from None
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
        raise DataError(f"{path}: bad OFF header counts {counts!r}; expected 'vertices faces edges'") \
            from None
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
            faces = np.array([r[1:4] for r in rows], dtype=np.int64)
        else:
            tris = []
            for r in rows:
                k = int(r[0])
                ids = [int(x) for x in r[1:1 + k]]
                if k < 3 or len(ids) < k:
                    raise ValueError
                tris.extend((ids[0], ids[j], ids[j + 1]) for j in range(1, k - 1))
            faces = np.array(tris, dtype=np.int64).reshape(-1, 3)
    except ValueError:
        raise DataError(f"{path}: malformed face lines (expected 'k i1 ... ik' with k >= 3)") from None
    if faces.size and (faces.min() < 0 or faces.max() >= nv):
        raise DataError(f"{path}: face indices outside [0, {nv - 1}]")
    return vertices, faces


def read_mesh(path) -> tuple[np.ndarray, np.ndarray]:
    """Read a triangle mesh from ``.off`` (own parser), ``.ply`` or ``.obj`` (trimesh).

    Returns:
        ``(vertices (V, 3) float64, faces (F, 3) int64)``.

    Raises:
        DataError: missing/unreadable file or a file without faces.
    """
    path = require_file(path)
    suffix = path.suffix.lower()
    if suffix == ".off":
        vertices, faces = read_off(path)
    elif suffix in (".ply", ".obj"):
        import trimesh

        try:
            mesh = trimesh.load(str(path), force="mesh", process=False)
            vertices = np.asarray(mesh.vertices, dtype=np.float64).reshape(-1, 3)
            faces = np.asarray(mesh.faces, dtype=np.int64).reshape(-1, 3)
        except Exception as e:  # trimesh raises many types on corrupt files
            raise DataError(f"{path}: cannot read the mesh ({type(e).__name__}: {e})") from None
        if len(faces) == 0:
            raise DataError(f"{path}: the mesh has no faces (a mesh is needed to sample its surface)")
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
