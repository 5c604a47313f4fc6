"""Voxel grids from points and meshes, and voxel IoU."""

from __future__ import annotations

import numpy as np
import torch

from pointlens.errors import bad_argument
from pointlens.metrics.shape.distances import as_clouds, pair_clouds
from pointlens.utils.validate import as_points, check_float, check_int


def _bounds(bounds, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(lo, hi) scalars or 3-vectors -> two (3,) float64 tensors with lo < hi."""
    try:
        lo, hi = bounds
        lo = torch.as_tensor(np.broadcast_to(np.asarray(lo, dtype=np.float64), (3,)).copy(), device=device)
        hi = torch.as_tensor(np.broadcast_to(np.asarray(hi, dtype=np.float64), (3,)).copy(), device=device)
    except (TypeError, ValueError):
        raise bad_argument("bounds", bounds, "(lo, hi) with lo, hi numbers or 3-vectors") from None
    if not bool(torch.isfinite(lo).all() and torch.isfinite(hi).all() and (hi > lo).all()):
        raise bad_argument("bounds", bounds, "finite (lo, hi) with lo < hi on every axis")
    return lo, hi


def _voxel_index(p: torch.Tensor, resolution: int, lo: torch.Tensor, hi: torch.Tensor):
    """(K, 3) points -> (K, 3) long voxel indices and (K,) bool inside mask.

    The upper face belongs to the last voxel; points outside ``[lo, hi]`` are flagged outside."""
    x = p.double()
    inside = ((x >= lo) & (x <= hi)).all(-1)
    ijk = torch.floor((x - lo) / (hi - lo) * resolution).long().clamp_(0, resolution - 1)
    return ijk, inside


def voxelize_points(points, resolution: int = 32, bounds=(-0.5, 0.5)) -> torch.Tensor:
    """Occupancy grid of point clouds: a voxel is on when at least one point falls in it.

    The box ``[lo, hi]^3`` is cut into ``resolution^3`` equal voxels; voxel ``(i, j, k)`` covers
    ``[lo + i h, lo + (i + 1) h)`` along x (``h = (hi - lo) / resolution``), the last voxel also holds the
    upper face; points outside the box are ignored. Grid axes are ``(x, y, z)``.

    Args:
        points: ``(B, N, 3)`` (or ``(N, 3)``) or a list of ``(N_i, 3)`` clouds.
        resolution: voxels per side, e.g. 32 or 128.
        bounds: ``(lo, hi)``; numbers (a cube, default the unit cube ``(-0.5, 0.5)``) or 3-vectors (a box).

    Returns:
        ``(B, R, R, R)`` bool on the input's device.
    """
    r = check_int("resolution", resolution, minimum=1, maximum=1024)
    t, lst = as_clouds(points, "points")
    items = lst if lst is not None else list(t)
    lo, hi = _bounds(bounds, items[0].device)
    return _voxelize(items, r, lo, hi)


def _voxelize(items: list, r: int, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    dev = items[0].device
    grid = torch.zeros(len(items), r * r * r, dtype=torch.bool, device=dev)
    for bi, p in enumerate(items):
        ijk, inside = _voxel_index(p.to(dev), r, lo, hi)
        ijk = ijk[inside]
        grid[bi, (ijk[:, 0] * r + ijk[:, 1]) * r + ijk[:, 2]] = True
    return grid.view(len(items), r, r, r)


def _sample_triangles(tri: np.ndarray, spacing: float) -> np.ndarray:
    """Points on a regular barycentric grid of each triangle, neighbours at most ``spacing`` apart.

    tri ``(F, 3, 3)`` -> ``(K, 3)``; a triangle whose longest edge is ``e`` gets ``k = ceil(e / spacing)``
    subdivisions per edge (``(k + 1)(k + 2) / 2`` points, vertices and edges included).
    """
    edges = np.linalg.norm(tri[:, [1, 2, 0]] - tri, axis=-1)  # (F, 3) edge lengths
    k_all = np.maximum(1, np.ceil(edges.max(-1) / spacing)).astype(np.int64)
    out = []
    for k in np.unique(k_all):
        sel = tri[k_all == k]
        i, j = np.meshgrid(np.arange(k + 1), np.arange(k + 1), indexing="ij")
        keep = (i + j) <= k
        u = (i[keep] / k)[:, None]
        v = (j[keep] / k)[:, None]
        w = 1.0 - u - v
        # (F_k, P, 3): u * v0 + v * v1 + w * v2, chunked so a batch stays below ~64 MB
        per = max(1, int(8e6 // max(1, len(u) * 3)))
        for s in range(0, len(sel), per):
            blk = sel[s:s + per]
            pts = (u[None] * blk[:, None, 0] + v[None] * blk[:, None, 1] + w[None] * blk[:, None, 2])
            out.append(pts.reshape(-1, 3))
    return np.concatenate(out, 0) if out else np.zeros((0, 3))


def voxelize_mesh(vertices, faces, resolution: int = 32, *, fill: bool = True, bounds=(-0.5, 0.5),
                  spacing: float | None = None) -> torch.Tensor:
    """Occupancy grid of a triangle mesh: its surface, and with ``fill`` its interior too.

    The surface is sampled deterministically on a barycentric grid of every triangle with at most ``spacing``
    between neighbouring samples (default: a quarter of a voxel), and the samples are voxelised as in
    :func:`voxelize_points`. With ``fill`` the cavities enclosed by the surface voxels are filled with
    ``scipy.ndimage.binary_fill_holes`` (needs a closed surface; an open mesh stays a shell). A surface that
    crosses a voxel by less than ``spacing`` (a clipped corner) may be missed; lower ``spacing`` to be
    stricter.

    Args:
        vertices: ``(V, 3)`` array/tensor of vertex positions.
        faces: ``(F, 3)`` integer vertex indices (triangles).
        resolution: voxels per side.
        fill: fill the interior.
        bounds: ``(lo, hi)`` numbers or 3-vectors; default the unit cube ``(-0.5, 0.5)``.
        spacing: largest distance between surface samples (default ``min voxel side / 4``).

    Returns:
        ``(R, R, R)`` bool tensor (CPU, or the device of ``vertices`` when it is a tensor).
    """
    r = check_int("resolution", resolution, minimum=1, maximum=1024)
    dev = vertices.device if isinstance(vertices, torch.Tensor) else torch.device("cpu")
    v = as_points(vertices, "vertices", batched=False).detach().cpu().double().numpy()
    f = faces.detach().cpu().numpy() if isinstance(faces, torch.Tensor) else np.asarray(faces)
    if f.ndim != 2 or f.shape[1] != 3 or f.shape[0] == 0 or not np.issubdtype(f.dtype, np.integer):
        raise bad_argument("faces", f"an array of shape {f.shape} and dtype {f.dtype}",
                           "a non-empty (F, 3) integer array of triangle vertex indices")
    if f.min() < 0 or f.max() >= len(v):
        raise bad_argument("faces", f"indices in [{f.min()}, {f.max()}]", f"indices in [0, {len(v) - 1}]")
    lo, hi = _bounds(bounds, torch.device("cpu"))
    side = float(((hi - lo) / r).min())
    step = side / 4 if spacing is None else check_float("spacing", spacing, minimum=0.0, strict_min=True)
    if step < side / 1000:
        raise bad_argument("spacing", spacing, f"at least {side / 1000:g} (a thousandth of a voxel)")
    samples = _sample_triangles(v[f], step)
    grid = _voxelize([torch.from_numpy(np.vstack([samples, v]))], r, lo, hi)[0].numpy()
    if fill:
        from scipy.ndimage import binary_fill_holes

        grid = binary_fill_holes(grid)
    return torch.from_numpy(np.ascontiguousarray(grid)).to(dev)


def voxel_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Intersection over union of occupancy grids.

    Args:
        a: ``(B, R, R, R)`` or ``(R, R, R)`` bool (non-zero = occupied).
        b: the same shape as ``a``.

    Returns:
        ``(B,)`` float32 ``|a & b| / |a | b|`` (``()`` for unbatched input); two empty grids give 1.0.
    """
    ta = torch.as_tensor(a)
    tb = torch.as_tensor(b)
    if ta.shape != tb.shape or ta.dim() not in (3, 4):
        raise bad_argument("a/b", f"shapes {tuple(ta.shape)} and {tuple(tb.shape)}",
                           "two grids of the same shape (B, R, R, R) or (R, R, R)")
    if ta.device != tb.device:
        raise bad_argument("a/b", f"devices {ta.device} and {tb.device}", "both grids on the same device")
    ta, tb = ta != 0, tb != 0
    dims = tuple(range(ta.dim() - 3, ta.dim()))
    inter = (ta & tb).sum(dims).double()
    union = (ta | tb).sum(dims).double()
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))
    return iou.float()


def iou_points(pred, gt, resolution: int = 32, bounds=(-0.5, 0.5)) -> torch.Tensor:
    """Voxel IoU of two point clouds: :func:`voxelize_points` both, then :func:`voxel_iou`.

    Args:
        pred: ``(B, N, 3)`` or a list of ``(N_i, 3)`` clouds.
        gt: ``(B, M, 3)`` or a list of ``(M_i, 3)`` clouds.
        resolution: voxels per side.
        bounds: ``(lo, hi)`` of the grid (default the unit cube).

    Returns:
        ``(B,)`` float32 IoU of the occupied voxels.
    """
    ta, tb, la, lb = pair_clouds(pred, gt, ("pred", "gt"))
    ga = voxelize_points(la if la is not None else ta, resolution, bounds)
    gb = voxelize_points(lb if lb is not None else tb, resolution, bounds)
    return voxel_iou(ga, gb)
