"""kNN, farthest point sampling and ball query over batched point sets, chunked to bound memory."""

from __future__ import annotations

from typing import NamedTuple

import torch

from pointlens.errors import bad_argument
from pointlens.utils.validate import check_float, check_int

DEFAULT_MEMORY_BUDGET = 256 * 2**20  # bytes for the largest temporary distance block


class KNN(NamedTuple):
    """Result of :func:`knn`.

    Attributes:
        sqdist: ``(B, M, k)`` SQUARED Euclidean distances, ascending along the last dimension.
        idx: ``(B, M, k)`` long indices into the reference set.
    """

    sqdist: torch.Tensor
    idx: torch.Tensor


def _check_pair(query: torch.Tensor, ref: torch.Tensor, qname: str, rname: str) -> None:
    if query.dim() != 3 or ref.dim() != 3:
        raise bad_argument(f"{qname}/{rname}", f"shapes {tuple(query.shape)} and {tuple(ref.shape)}",
                           "batched point sets (B, M, D) and (B, N, D)")
    if query.shape[0] != ref.shape[0] or query.shape[2] != ref.shape[2]:
        raise bad_argument(f"{qname}/{rname}", f"shapes {tuple(query.shape)} and {tuple(ref.shape)}",
                           "the same batch size B and dimension D")


def _chunk_rows(batch: int, n_ref: int, budget: int, element_bytes: int = 4, copies: int = 3) -> int:
    per_row = max(1, batch * n_ref * element_bytes * copies)
    return max(1, budget // per_row)


def gather_points(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Gather rows of ``points`` by index.

    Args:
        points: ``(B, N, C)``.
        idx: ``(B, ...)`` long indices into ``N``.

    Returns:
        ``(B, ..., C)``.
    """
    b, n, c = points.shape
    if idx.dim() < 1 or idx.shape[0] != b:
        raise bad_argument("idx", f"shape {tuple(idx.shape)}", f"(B, ...) indices with B = {b} like points")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
        lo, hi = int(idx.min()), int(idx.max())
        raise bad_argument("idx", f"indices in [{lo}, {hi}]", f"indices in [0, {n - 1}]")
    # one index_select on the flattened batch: several times faster than torch.gather on an expanded index
    offset = (torch.arange(b, device=idx.device) * n).view(b, *([1] * (idx.dim() - 1)))
    flat = (idx + offset).reshape(-1)
    return points.reshape(b * n, c).index_select(0, flat).reshape(*idx.shape, c)


def _sqdist_block(q: torch.Tensor, r: torch.Tensor, r_norm: torch.Tensor) -> torch.Tensor:
    # ||q||^2 - 2 q.r + ||r||^2 via one batched matmul; clamped at 0 against round-off.
    d = torch.baddbmm(r_norm.unsqueeze(1), q, r.transpose(1, 2), alpha=-2.0)
    d += (q * q).sum(-1, keepdim=True)
    return d.clamp_min_(0.0)


def knn_indices(query: torch.Tensor, ref: torch.Tensor, k: int, *, memory_budget: int = DEFAULT_MEMORY_BUDGET,
                exclude_self: bool = False) -> torch.Tensor:
    """The SET of the ``k`` nearest neighbours of every query point in ``ref``, in no particular order.

    The same neighbour sets as :func:`knn` (candidates ranked with one matmul per chunk of queries), without
    the exact distances and the sort: for callers that only reduce over the neighbours (DGCNN's max over the
    ``k`` edges), about a third cheaper.

    Args:
        query: ``(B, M, D)``.
        ref: ``(B, N, D)``.
        k: neighbours per query, ``1 <= k <= N`` (``N - 1`` with ``exclude_self``).
        memory_budget: bytes allowed for the temporary distance block.
        exclude_self: drop each query ``i``'s own reference index ``i``.

    Returns:
        ``(B, M, k)`` long indices into the reference set.
    """
    _check_pair(query, ref, "query", "ref")
    b, m, _ = query.shape
    n = ref.shape[1]
    k = check_int("k", k)
    top = n - (1 if exclude_self else 0)
    if not 1 <= k <= top:
        raise bad_argument("k", k, f"an integer in [1, {top}] (the reference size)")
    r_norm = (ref * ref).sum(-1)
    rows = _chunk_rows(b, n, memory_budget)
    parts = []
    for s in range(0, m, rows):
        q = query[:, s:s + rows]
        d = _sqdist_block(q, ref, r_norm)
        if exclude_self:
            ar = torch.arange(s, s + q.shape[1], device=q.device)
            d[:, torch.arange(q.shape[1], device=q.device), ar.clamp_max(n - 1)] = float("inf")
        parts.append(d.topk(k, dim=-1, largest=False, sorted=False).indices)
    if len(parts) == 1:
        return parts[0]
    return torch.cat(parts, 1) if parts else query.new_zeros(b, 0, k, dtype=torch.long)


def knn(query: torch.Tensor, ref: torch.Tensor, k: int, *, memory_budget: int = DEFAULT_MEMORY_BUDGET,
        exclude_self: bool = False) -> KNN:
    """k nearest neighbours of every query point in ``ref`` (brute force, chunked over queries).

    Candidates are ranked with one matmul per chunk (:func:`knn_indices`); the returned distances are
    recomputed exactly as ``sum((q - r)^2)`` for the selected neighbours and sorted (equal distances: lower
    index first).

    Args:
        query: ``(B, M, D)``.
        ref: ``(B, N, D)``.
        k: neighbours per query, ``1 <= k <= N`` (``N - 1`` with ``exclude_self``).
        memory_budget: bytes allowed for the temporary distance block.
        exclude_self: when ``query is ref``-like (same points), drop each point's own index ``i`` (query ``i``
            never returns reference ``i``).

    Returns:
        :class:`KNN` with ``sqdist (B, M, k)`` ascending and ``idx (B, M, k)``.
    """
    idx = knn_indices(query, ref, k, memory_budget=memory_budget, exclude_self=exclude_self)
    if idx.shape[1] == 0:
        return KNN(query.new_zeros(idx.shape), idx)
    idx = idx.sort(dim=-1).values
    nb = gather_points(ref, idx)
    sq = (query.unsqueeze(2) - nb).square_().sum(-1)
    sq, order = sq.sort(dim=-1, stable=True)
    idx = torch.gather(idx, -1, order)
    return KNN(sq, idx)


def knn_naive(query: torch.Tensor, ref: torch.Tensor, k: int) -> KNN:
    """Reference kNN: the full ``(B, M, N)`` difference tensor, no chunking (for tests and benchmarks)."""
    d = ((query.unsqueeze(2) - ref.unsqueeze(1)) ** 2).sum(-1)
    sq, idx = d.topk(k, dim=-1, largest=False, sorted=True)
    return KNN(sq, idx)


def farthest_point_sampling(points: torch.Tensor, n: int, *, start: int | torch.Tensor = 0) -> torch.Tensor:
    """Iterative farthest point sampling.

    Args:
        points: ``(B, N, D)``.
        n: number of points to pick, ``1 <= n <= N``.
        start: index of the first pick: an int for every cloud, or a ``(B,)`` long tensor.

    Returns:
        ``(B, n)`` long indices; pick ``j`` maximises the distance to the picks before it (lowest index on
        ties).
    """
    if points.dim() != 3:
        raise bad_argument("points", f"shape {tuple(points.shape)}", "(B, N, D)")
    b, npts, _ = points.shape
    n = check_int("n", n)
    if not 1 <= n <= npts:
        raise bad_argument("n", n, f"an integer in [1, {npts}] (the number of points)")
    dev = points.device
    out = torch.empty(b, n, dtype=torch.long, device=dev)
    far = (torch.as_tensor(start, device=dev).long().expand(b)).clone()
    mind = torch.full((b, npts), float("inf"), device=dev, dtype=points.dtype)
    bidx = torch.arange(b, device=dev)
    for i in range(n):
        out[:, i] = far
        c = points[bidx, far].unsqueeze(1)
        d = ((points - c) ** 2).sum(-1)
        torch.minimum(mind, d, out=mind)
        far = mind.argmax(-1)
    return out


def farthest_point_sampling_naive(points: torch.Tensor, n: int, start: int = 0) -> torch.Tensor:
    """Reference FPS in python loops over numpy (for tests and benchmarks). Returns ``(B, n)``."""
    import numpy as np

    pts = points.detach().cpu().double().numpy()
    res = []
    for p in pts:
        picks = [start]
        mind = np.full(len(p), np.inf)
        for _ in range(n - 1):
            mind = np.minimum(mind, ((p - p[picks[-1]]) ** 2).sum(-1))
            picks.append(int(np.argmax(mind)))
        res.append(picks)
    return torch.tensor(res, dtype=torch.long)


def ball_query(centres: torch.Tensor, points: torch.Tensor, radius: float, k: int, *,
               memory_budget: int = DEFAULT_MEMORY_BUDGET) -> torch.Tensor:
    """PointNet++ ball query: the first ``k`` points (in index order) within ``radius`` of each centre.

    Slots left empty are filled with the first point found; a centre with no point in the ball gets its
    nearest point in every slot.

    Args:
        centres: ``(B, M, D)``.
        points: ``(B, N, D)``.
        radius: ball radius (plain Euclidean, a point counts when ``dist < radius``).
        k: points per ball.
        memory_budget: bytes allowed for the temporary distance block.

    Returns:
        ``(B, M, k)`` long indices into ``points``.
    """
    _check_pair(centres, points, "centres", "points")
    radius = check_float("radius", radius, minimum=0.0, strict_min=True)
    k = check_int("k", k, minimum=1)
    b, m, _ = centres.shape
    n = points.shape[1]
    if m == 0 or n == 0:
        if n == 0:
            raise bad_argument("points", f"shape {tuple(points.shape)}", "at least one point per cloud")
        return torch.zeros(b, 0, k, dtype=torch.long, device=points.device)
    kk = min(k, n)
    p_norm = (points * points).sum(-1)
    rows = _chunk_rows(b, n, memory_budget, element_bytes=8)
    parts = []
    ar = torch.arange(n, device=points.device)
    for s in range(0, m, rows):
        d = _sqdist_block(centres[:, s:s + rows], points, p_norm)
        inside = d < radius * radius
        key = torch.where(inside, ar, n)
        first = key.topk(kk, dim=-1, largest=False, sorted=True).values
        nearest = d.argmin(-1, keepdim=True)
        head = torch.where(first[..., :1] < n, first[..., :1], nearest)
        first = torch.where(first < n, first, head)
        parts.append(first)
    idx = torch.cat(parts, 1)
    if kk < k:
        idx = torch.cat([idx, idx[..., :1].expand(-1, -1, k - kk)], -1)
    return idx
