"""Nearest-neighbour distances between clouds: a chunked brute-force torch path (bounded memory, any device) and
a KD-tree path (``scipy.spatial.cKDTree``, CPU); the input handling every shape metric shares."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from pointlens.errors import bad_argument
from pointlens.utils.validate import as_points, check_choice, check_int

KDTREE_MIN_PAIRS = 1_000_000
"""``backend="auto"`` uses the KD-tree on CPU when ``N * M`` (per cloud pair) is at least this (measured)."""

DEFAULT_MEMORY_BUDGET = 128 * 2**20
"""Bytes allowed for the largest temporary distance block of the torch path."""

_CACHE_BLOCK = 16 * 2**20
"""Preferred size of one distance block of the torch path (measured on 2 CPU cores: 16 MiB blocks were the
fastest of 0.25-128 MiB; blocks of a few rows are several times slower)."""


class NNResult(NamedTuple):
    """Result of :func:`nn_distances`.

    Attributes:
        dist: ``(B, N)`` plain Euclidean distance from each point of ``a`` to its nearest point of ``b``
            (a list of ``(N_i,)`` tensors for ragged input).
        idx: ``(B, N)`` long index of that nearest point in ``b`` (a list of ``(N_i,)`` for ragged input).
    """

    dist: torch.Tensor | list
    idx: torch.Tensor | list


def as_clouds(x, name: str):
    """Return ``(tensor (B, N, 3), None)`` for batched input or ``(None, [(N_i, 3), ...])`` for a list.

    A list/tuple whose items are tensors, arrays or nested lists of points is a list of clouds; a nested list
    of numbers (``[[x, y, z], ...]``) is one cloud.
    """
    if isinstance(x, (list, tuple)):
        if len(x) == 0:
            raise bad_argument(name, "an empty list",
                               "a (B, N, 3) tensor or a non-empty list of (N_i, 3) clouds")
        first = x[0]
        is_list_of_clouds = isinstance(first, (torch.Tensor, np.ndarray)) or (
            isinstance(first, (list, tuple)) and len(first) > 0 and isinstance(first[0], (list, tuple)))
        if is_list_of_clouds:
            clouds = []
            for i, c in enumerate(x):
                if isinstance(c, (torch.Tensor, np.ndarray)) and c.ndim != 2:
                    raise bad_argument(f"{name}[{i}]", f"an array of shape {tuple(c.shape)}",
                                       "one cloud of shape (N_i, 3)")
                clouds.append(as_points(c, f"{name}[{i}]", batched=False))
            return None, clouds
    return as_points(x, name), None


def pair_clouds(a, b, names=("a", "b")):
    """Validate a pair of inputs: both batched (same B, same device) or both lists (same length)."""
    ta, la = as_clouds(a, names[0])
    tb, lb = as_clouds(b, names[1])
    if (la is None) != (lb is None):
        if la is None:
            la = list(ta)
        else:
            lb = list(tb)
        ta = tb = None
    if la is None:
        if ta.shape[0] != tb.shape[0]:
            raise bad_argument(f"{names[0]}/{names[1]}", f"batch sizes {ta.shape[0]} and {tb.shape[0]}",
                               "the same number of clouds B on both sides")
        if ta.device != tb.device:
            raise bad_argument(f"{names[0]}/{names[1]}", f"devices {ta.device} and {tb.device}",
                               "both clouds on the same device")
        return ta, tb, None, None
    if len(la) != len(lb):
        raise bad_argument(f"{names[0]}/{names[1]}", f"lists of {len(la)} and {len(lb)} clouds",
                           "the same number of clouds on both sides")
    for i, (p, q) in enumerate(zip(la, lb)):
        if p.device != q.device:
            raise bad_argument(f"{names[0]}[{i}]/{names[1]}[{i}]", f"devices {p.device} and {q.device}",
                               "both clouds on the same device")
    return None, None, la, lb


def _nn_index_torch(a: torch.Tensor, b: torch.Tensor, memory_budget: int) -> torch.Tensor:
    """Index of the nearest point of ``b`` for each point of ``a``, brute force chunked over ``a``.

    ``a`` (B, N, 3), ``b`` (B, M, 3) -> (B, N) long. The block of squared distances is formed with one batched
    matmul after translating both clouds to ``b``'s bounding-box centre (smaller norms = less round-off).
    Blocks are kept near ``_CACHE_BLOCK`` bytes and never above ``memory_budget``; a batch whose rows would
    make the blocks too thin is processed cloud by cloud.
    """
    with torch.no_grad():
        bsz, n, _ = a.shape
        m = b.shape[1]
        block = min(memory_budget, _CACHE_BLOCK)
        row_bytes = m * a.element_size() * 2
        if bsz > 1 and bsz * row_bytes * 16 > block:
            return torch.cat([_nn_index_torch(a[i:i + 1], b[i:i + 1], memory_budget) for i in range(bsz)])
        centre = (b.amax(1, keepdim=True) + b.amin(1, keepdim=True)) / 2
        a0 = a.detach() - centre
        b0 = b.detach() - centre
        bt = b0.transpose(1, 2).contiguous()
        b_norm = (b0 * b0).sum(-1).unsqueeze(1)  # (B, 1, M)
        rows = max(1, block // (bsz * row_bytes))
        out = torch.empty(bsz, n, dtype=torch.long, device=a.device)
        for s in range(0, n, rows):
            q = a0[:, s:s + rows]
            # ||b||^2 - 2 q.b ; the ||q||^2 term is constant per row and does not change the argmin
            d = torch.baddbmm(b_norm, q, bt, alpha=-2.0)
            out[:, s:s + rows] = d.argmin(-1)
        return out


GRID_MIN_PAIRS = 1_000_000
"""The torch backend uses the exact grid search (:func:`_nn_index_grid`) when ``N * M`` is at least this."""
GRID_POINTS_PER_CELL = 2
GRID_MAX_CELL = 128
"""A cell holding more points than this (clustered or duplicated points) sends the pair to brute force."""
_OFFSETS = [(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)]


def _grid_nn(q: torch.Tensor, p: torch.Tensor, memory_budget: int) -> torch.Tensor:
    """Nearest point of ``p (M, 3)`` for each point of ``q (N, 3)``: exact, with a uniform grid in torch.

    ``p`` is bucketed into cubic cells (side ``h``, about :data:`GRID_POINTS_PER_CELL` points per occupied cell,
    found by sorting linear cell keys; no dense grid is allocated). Each query scans the 27 cells around its own;
    the best candidate is certainly the nearest point when its distance is below ``h`` (every point outside the
    3x3x3 block is at least ``h`` away). Queries without such a certificate (far outside ``p``'s box, sparse
    regions) are solved by the brute-force path, so the result is exact. Ties go to the lower index, as
    ``argmin`` does. Memory ``O(N + M)``; time ``O((N + M) log M + 27 N * points per cell)``.
    """
    n, m = q.shape[0], p.shape[0]
    lo = p.amin(0)
    ext = (p.amax(0) - lo).clamp_min(1e-9)
    h = float((ext.prod() / m * GRID_POINTS_PER_CELL) ** (1 / 3))
    for _ in range(4):  # surfaces fill few cells of their box: shrink h until occupied cells hold ~the target
        h = max(h, float(ext.max()) / 2**20)
        cells = torch.floor((p - lo) / h).long() + 2  # a margin of 2 empty cells: neighbours never leave the grid
        dims = cells.amax(0) + 3
        keys = (cells[:, 0] * dims[1] + cells[:, 1]) * dims[2] + cells[:, 2]
        occupied = torch.unique(keys).numel()
        per_cell = m / occupied
        if per_cell <= 2 * GRID_POINTS_PER_CELL:
            break
        h *= (GRID_POINTS_PER_CELL / per_cell) ** 0.5
    sorted_keys, order = keys.sort(stable=True)
    total_cells = int(dims.prod())
    counts = torch.bincount(sorted_keys, minlength=total_cells) if total_cells <= 2**25 else None
    if int(counts.max() if counts is not None else torch.unique_consecutive(sorted_keys, return_counts=True)[1].max()) \
            > GRID_MAX_CELL:
        return _nn_index_torch(q[None], p[None], memory_budget)[0]  # clustered/duplicated points: brute force
    table = torch.cumsum(counts, 0) - counts if counts is not None else None  # first sorted point of each cell
    ps = p[order]
    offsets = torch.tensor(_OFFSETS, device=q.device)
    key_offsets = (offsets[:, 0] * dims[1] + offsets[:, 1]) * dims[2] + offsets[:, 2]  # (27,)
    best_d = torch.empty(n, device=q.device, dtype=q.dtype)
    best_i = torch.empty(n, device=q.device, dtype=torch.long)
    # candidates per query <= 27 * GRID_MAX_CELL; chunks of queries keep the flat candidate arrays ~ 4M long
    rows = max(1, min(n, 4_000_000 // (27 * 4 * GRID_POINTS_PER_CELL)))
    upper = dims - 2
    for s0 in range(0, n, rows):
        qc = q[s0:s0 + rows]
        cq = torch.floor((qc - lo) / h).long().add_(2)
        cq = torch.minimum(torch.maximum(cq, torch.ones_like(cq)), upper)  # far queries: no certificate below
        key = (((cq[:, 0] * dims[1] + cq[:, 1]) * dims[2] + cq[:, 2])[:, None] + key_offsets).reshape(-1)
        if table is not None:
            start, count = table.index_select(0, key), counts.index_select(0, key)
        else:
            start = torch.searchsorted(sorted_keys, key)
            count = torch.searchsorted(sorted_keys, key, right=True) - start
        seg = torch.repeat_interleave(torch.arange(key.numel(), device=q.device), count)
        first = torch.cumsum(count, 0) - count
        pos = (start - first).index_select(0, seg).add_(torch.arange(seg.numel(), device=q.device))
        qi = torch.div(seg, 27, rounding_mode="floor")
        diff = qc.index_select(0, qi).sub_(ps.index_select(0, pos))
        d = diff.mul_(diff).sum(-1)
        inf = torch.full((qc.shape[0],), float("inf"), device=q.device, dtype=q.dtype)
        mind = inf.scatter_reduce(0, qi, d, "amin")
        at_min = d == mind.index_select(0, qi)
        cand = order.index_select(0, pos)
        none = torch.full((qc.shape[0],), m, device=q.device, dtype=torch.long)
        best_d[s0:s0 + rows] = mind
        best_i[s0:s0 + rows] = none.scatter_reduce(0, qi[at_min], cand[at_min], "amin")
    unsure = torch.nonzero(~(best_d < h * h)).squeeze(1)
    if unsure.numel():
        best_i[unsure] = _nn_index_torch(q[unsure][None], p[None], memory_budget)[0]
    return best_i


def _nn_index_grid(a: torch.Tensor, b: torch.Tensor, memory_budget: int) -> torch.Tensor:
    """:func:`_grid_nn` for every cloud pair: ``a (B, N, 3)``, ``b (B, M, 3)`` -> ``(B, N)`` long."""
    with torch.no_grad():
        return torch.stack([_grid_nn(a[i].detach(), b[i].detach(), memory_budget) for i in range(a.shape[0])])


def _nn_index_kdtree(a: torch.Tensor, b: torch.Tensor, workers: int) -> torch.Tensor:
    """Same as :func:`_nn_index_torch` with ``scipy.spatial.cKDTree`` (float64, CPU)."""
    from scipy.spatial import cKDTree

    an = a.detach().cpu().double().numpy()
    bn = b.detach().cpu().double().numpy()
    out = np.empty(an.shape[:2], dtype=np.int64)
    for i in range(an.shape[0]):
        _, out[i] = cKDTree(bn[i]).query(an[i], k=1, workers=workers)
    return torch.from_numpy(out).to(a.device)


def _choose_backend(backend: str, device: torch.device, n: int, m: int) -> str:
    if backend != "auto":
        return backend
    return "kdtree" if device.type == "cpu" and n * m >= KDTREE_MIN_PAIRS else "torch"


def _nn_batched(a: torch.Tensor, b: torch.Tensor, backend: str, memory_budget: int, workers: int):
    """(B, N, 3), (B, M, 3) -> (dist (B, N), sqdist (B, N), idx (B, N)); distances recomputed exactly."""
    kind = _choose_backend(backend, a.device, a.shape[1], b.shape[1])
    if kind == "kdtree":
        idx = _nn_index_kdtree(a, b, workers)
    elif a.shape[1] * b.shape[1] >= GRID_MIN_PAIRS:
        idx = _nn_index_grid(a, b, memory_budget)
    else:
        idx = _nn_index_torch(a, b, memory_budget)
    nearest = torch.gather(b, 1, idx.unsqueeze(-1).expand(-1, -1, b.shape[-1]))
    diff = a - nearest
    return torch.linalg.vector_norm(diff, dim=-1), (diff * diff).sum(-1), idx


def nn_any(ta, tb, la, lb, backend, memory_budget, workers):
    """Dispatch over batched or ragged input: returns lists or tensors of (dist, sqdist, idx)."""
    if la is None:
        return _nn_batched(ta, tb, backend, memory_budget, workers)
    res = [_nn_batched(p.unsqueeze(0), q.unsqueeze(0), backend, memory_budget, workers)
           for p, q in zip(la, lb)]
    return [r[0][0] for r in res], [r[1][0] for r in res], [r[2][0] for r in res]


def check_backend(backend: str, memory_budget: int, workers: int) -> None:
    check_choice("backend", backend, ["auto", "torch", "kdtree"])
    check_int("memory_budget", memory_budget, minimum=1)
    check_int("workers", workers, minimum=-1)
    if workers == 0:
        raise bad_argument("workers", workers, "-1 (all cores) or a positive number of threads")


def nn_distances(a, b, *, backend: str = "auto", memory_budget: int = DEFAULT_MEMORY_BUDGET,
                 workers: int = -1) -> NNResult:
    """Distance from every point of ``a`` to its nearest neighbour in ``b`` (one direction).

    Args:
        a: ``(B, N, 3)`` (or ``(N, 3)``) tensor/array, or a list of ``B`` clouds ``(N_i, 3)``.
        b: ``(B, M, 3)`` (or ``(M, 3)``), or a list of ``B`` clouds ``(M_i, 3)``.
        backend: ``"torch"`` (chunked brute force, any device, memory bounded by ``memory_budget``),
            ``"kdtree"`` (``scipy.spatial.cKDTree`` on CPU; GPU input is copied to the CPU and the result
            back), or ``"auto"`` (KD-tree on CPU when ``N * M >= KDTREE_MIN_PAIRS``, torch otherwise).
        memory_budget: bytes allowed for the torch path's temporary distance block.
        workers: threads of the KD-tree queries (-1 = all cores).

    Returns:
        :class:`NNResult` ``(dist, idx)``: ``dist (B, N)`` plain Euclidean distances and ``idx (B, N)`` long
        indices into ``b``; for list input, lists of ``(N_i,)`` tensors. On the input's device.

    Raises:
        InvalidArgumentError: malformed clouds, different batch sizes or devices, unknown backend.
    """
    check_backend(backend, memory_budget, workers)
    ta, tb, la, lb = pair_clouds(a, b)
    dist, _, idx = nn_any(ta, tb, la, lb, backend, memory_budget, workers)
    return NNResult(dist, idx)


def both_directions(pred, gt, backend, memory_budget, workers, names=("pred", "gt")):
    check_backend(backend, memory_budget, workers)
    ta, tb, la, lb = pair_clouds(pred, gt, names)
    ab = nn_any(ta, tb, la, lb, backend, memory_budget, workers)
    ba = nn_any(tb, ta, lb, la, backend, memory_budget, workers)
    return ab, ba, la is not None
