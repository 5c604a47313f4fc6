"""Shape metrics done right: nearest-neighbour distances, F-score@d, Chamfer, Hausdorff and voxel IoU.

Every function takes either batched tensors ``(B, N, 3)`` / ``(B, M, 3)`` (``N`` and ``M`` may differ) or
two lists of ``B`` ragged clouds ``[(N_i, 3), ...]`` / ``[(M_i, 3), ...]``; a single ``(N, 3)`` cloud is
treated as a batch of one. Results live on the input's device.

Conventions (see docs/metrics_shape.md):

* Distances are plain Euclidean unless ``squared=True`` (Chamfer only).
* F-score follows Tatarchenko et al. (CVPR 2019) and what3d: precision = share of PREDICTED points whose
  nearest ground-truth point is strictly closer than ``d``; recall = share of GROUND-TRUTH points whose
  nearest predicted point is strictly closer than ``d``; ``F = 2PR / (P + R)``, and ``F = 0`` when
  ``P + R = 0``.
* The default threshold ``d = 0.01`` is 1% of the side of a unit cube: it assumes both shapes were
  normalised with :func:`normalize_unit_cube` (the ground truth's bounding box mapped into
  ``[-0.5, 0.5]^3``, longest side 1).
* Chamfer: explicit options, and presets reproducing PyTorch3D, kaolin and a plain (non-squared) convention.
* Nearest neighbours: a chunked brute-force torch path (bounded memory, any device) and a KD-tree path
  (``scipy.spatial.cKDTree``, CPU, all cores). ``backend="auto"`` uses the KD-tree on CPU when
  ``N * M >= KDTREE_MIN_PAIRS`` (measured crossover, see benchmarks/bench_shape_metrics.py) and torch
  otherwise. Both paths choose the neighbour index, then recompute the distance exactly as
  ``||a_i - b_j||`` in torch, so the two paths agree bit for bit when they choose the same neighbour, and
  gradients flow to both clouds through the distances (not through the choice), as in PyTorch3D.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from pointlens.errors import bad_argument
from pointlens.utils.validate import as_points, check_choice, check_float, check_int

__all__ = [
    "CHAMFER_PRESETS",
    "DEFAULT_THRESHOLD",
    "KDTREE_MIN_PAIRS",
    "WHAT3D_THRESHOLDS",
    "FScore",
    "NNResult",
    "chamfer_distance",
    "compare_shapes",
    "fscore",
    "hausdorff_distance",
    "iou_points",
    "nn_distances",
    "normalize_unit_cube",
    "unit_cube_transform",
    "voxel_iou",
    "voxelize_mesh",
    "voxelize_points",
]

DEFAULT_THRESHOLD = 0.01
"""F-score threshold: 1% of the side of the unit cube the shapes are normalised into."""

WHAT3D_THRESHOLDS = (1 / 200, 1 / 100, 1 / 50, 1 / 20, 1 / 10, 1 / 5)
"""The thresholds (fractions of the side) the what3d code reports besides the 1% headline."""

KDTREE_MIN_PAIRS = 1_000_000
"""``backend="auto"`` uses the KD-tree on CPU when ``N * M`` (per cloud pair) is at least this (measured)."""

DEFAULT_MEMORY_BUDGET = 128 * 2**20
"""Bytes allowed for the largest temporary distance block of the torch path."""

_CACHE_BLOCK = 16 * 2**20
"""Preferred size of one distance block of the torch path (measured on 2 CPU cores: 16 MiB blocks were the
fastest of 0.25-128 MiB; blocks of a few rows are several times slower)."""

CHAMFER_PRESETS = {
    # PyTorch3D pytorch3d.loss.chamfer_distance (norm=2): squared L2, mean over points each way, the two
    # directions summed, mean over the batch.
    "pytorch3d": dict(squared=True, point_reduction="mean", direction_reduction="sum", weights=(1.0, 1.0),
                      batch_reduction="mean"),
    # kaolin kaolin.metrics.pointcloud.chamfer_distance(p1, p2, w1=1, w2=1, squared=True): squared by default,
    # mean each way, weighted sum w1 * mean(p1 -> p2) + w2 * mean(p2 -> p1), one value per batch item.
    "kaolin": dict(squared=True, point_reduction="mean", direction_reduction="sum", weights=(1.0, 1.0),
                   batch_reduction=None),
    # plain: non-squared Euclidean, mean each way, average of the two directions, one value per batch item.
    "plain": dict(squared=False, point_reduction="mean", direction_reduction="mean", weights=(1.0, 1.0),
                  batch_reduction=None),
}
"""Chamfer conventions: option values of each preset of :func:`chamfer_distance`."""

_FROM_PRESET = "preset"


class NNResult(NamedTuple):
    """Result of :func:`nn_distances`.

    Attributes:
        dist: ``(B, N)`` plain Euclidean distance from each point of ``a`` to its nearest point of ``b``
            (a list of ``(N_i,)`` tensors for ragged input).
        idx: ``(B, N)`` long index of that nearest point in ``b`` (a list of ``(N_i,)`` for ragged input).
    """

    dist: torch.Tensor | list
    idx: torch.Tensor | list


class FScore(NamedTuple):
    """Result of :func:`fscore`: each field ``(B, T)`` float32 (one column per threshold).

    Attributes:
        fscore: ``2PR / (P + R)`` (0 where ``P + R = 0``).
        precision: share of predicted points strictly within ``d`` of the ground truth.
        recall: share of ground-truth points strictly within ``d`` of the prediction.
    """

    fscore: torch.Tensor
    precision: torch.Tensor
    recall: torch.Tensor


# ----------------------------------------------------------------------------------------------------
# input handling


def _as_clouds(x, name: str):
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


def _pair(a, b, names=("a", "b")):
    """Validate a pair of inputs: both batched (same B, same device) or both lists (same length)."""
    ta, la = _as_clouds(a, names[0])
    tb, lb = _as_clouds(b, names[1])
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


def _thresholds(thresholds) -> list[float]:
    vals = np.atleast_1d(np.asarray(thresholds, dtype=object)).ravel().tolist() if not isinstance(
        thresholds, torch.Tensor) else thresholds.reshape(-1).tolist()
    if len(vals) == 0:
        raise bad_argument("thresholds", "an empty list", "one or more positive distances")
    return [check_float("thresholds", v, minimum=0.0, strict_min=True) for v in vals]


# ----------------------------------------------------------------------------------------------------
# nearest neighbours


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
    else:
        idx = _nn_index_torch(a, b, memory_budget)
    nearest = torch.gather(b, 1, idx.unsqueeze(-1).expand(-1, -1, b.shape[-1]))
    diff = a - nearest
    return torch.linalg.vector_norm(diff, dim=-1), (diff * diff).sum(-1), idx


def _nn_any(ta, tb, la, lb, backend, memory_budget, workers):
    """Dispatch over batched or ragged input: returns lists or tensors of (dist, sqdist, idx)."""
    if la is None:
        return _nn_batched(ta, tb, backend, memory_budget, workers)
    res = [_nn_batched(p.unsqueeze(0), q.unsqueeze(0), backend, memory_budget, workers)
           for p, q in zip(la, lb)]
    return [r[0][0] for r in res], [r[1][0] for r in res], [r[2][0] for r in res]


def _check_backend(backend: str, memory_budget: int, workers: int) -> None:
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
    _check_backend(backend, memory_budget, workers)
    ta, tb, la, lb = _pair(a, b)
    dist, _, idx = _nn_any(ta, tb, la, lb, backend, memory_budget, workers)
    return NNResult(dist, idx)


def _both_directions(pred, gt, backend, memory_budget, workers, names=("pred", "gt")):
    _check_backend(backend, memory_budget, workers)
    ta, tb, la, lb = _pair(pred, gt, names)
    ab = _nn_any(ta, tb, la, lb, backend, memory_budget, workers)
    ba = _nn_any(tb, ta, lb, la, backend, memory_budget, workers)
    return ab, ba, la is not None


# ----------------------------------------------------------------------------------------------------
# reductions from distances


def _per_item(values, fn) -> torch.Tensor:
    """Apply ``fn`` (a reduction over the last dimension) to a (B, N) tensor or a list of (N_i,) tensors."""
    if isinstance(values, list):
        return torch.stack([fn(v) for v in values])
    return fn(values)


def _fscore_from(d_pred: torch.Tensor | list, d_gt: torch.Tensor | list, thr: list[float]) -> FScore:
    def share_below(d):
        t = torch.tensor(thr, dtype=torch.float64, device=d.device)
        return (d.detach().double().unsqueeze(-1) < t).double().mean(-2)

    precision = _per_item(d_pred, share_below)
    recall = _per_item(d_gt, share_below)
    denom = precision + recall
    f = torch.where(denom > 0, 2 * precision * recall / denom.clamp_min(1e-300), torch.zeros_like(denom))
    return FScore(f.float(), precision.float(), recall.float())


def fscore(pred, gt, thresholds=DEFAULT_THRESHOLD, *, backend: str = "auto",
           memory_budget: int = DEFAULT_MEMORY_BUDGET, workers: int = -1) -> FScore:
    """F-score at one or several distance thresholds (Tatarchenko et al. 2019 / what3d convention).

    ``P(d)`` = share of predicted points whose nearest ground-truth point is at distance ``< d`` (strict);
    ``R(d)`` = share of ground-truth points whose nearest predicted point is at distance ``< d``;
    ``F(d) = 2 P R / (P + R)``, 0 when ``P + R = 0``. Distances are plain Euclidean.

    Args:
        pred: predicted clouds ``(B, N, 3)`` or a list of ``(N_i, 3)``.
        gt: ground-truth clouds ``(B, M, 3)`` or a list of ``(M_i, 3)``.
        thresholds: a positive number or a sequence of ``T`` of them (default 0.01 = 1% of the side of the
            unit cube; normalise first with :func:`normalize_unit_cube`).
        backend, memory_budget, workers: see :func:`nn_distances`.

    Returns:
        :class:`FScore` ``(fscore, precision, recall)``, each ``(B, T)`` float32 on the input's device.
    """
    thr = _thresholds(thresholds)
    (d_pred, _, _), (d_gt, _, _), _ = _both_directions(pred, gt, backend, memory_budget, workers)
    return _fscore_from(d_pred, d_gt, thr)


def _chamfer_options(preset, squared, point_reduction, direction_reduction, weights, batch_reduction) -> dict:
    check_choice("preset", preset, list(CHAMFER_PRESETS))
    opts = dict(CHAMFER_PRESETS[preset])
    if squared is not None:
        if not isinstance(squared, (bool, np.bool_)):
            raise bad_argument("squared", squared, "True, False or None (the preset's choice)")
        opts["squared"] = bool(squared)
    if point_reduction is not None:
        opts["point_reduction"] = check_choice("point_reduction", point_reduction, ["mean", "sum"])
    if direction_reduction is not None:
        opts["direction_reduction"] = check_choice("direction_reduction", direction_reduction,
                                                   ["sum", "mean"])
    if weights is not None:
        try:
            w = [float(v) for v in weights]
        except (TypeError, ValueError):
            raise bad_argument("weights", weights, "two numbers (w_pred_to_gt, w_gt_to_pred)") from None
        if len(w) != 2 or not all(np.isfinite(v) and v >= 0 for v in w) or sum(w) == 0:
            raise bad_argument("weights", weights, "two finite non-negative numbers, not both 0")
        opts["weights"] = tuple(w)
    if not (isinstance(batch_reduction, str) and batch_reduction == _FROM_PRESET):
        opts["batch_reduction"] = check_choice("batch_reduction", batch_reduction, ["mean", "sum", None])
    return opts


def _chamfer_from(ab, ba, opts) -> torch.Tensor:
    k = 1 if opts["squared"] else 0
    red = (lambda v: v.mean(-1)) if opts["point_reduction"] == "mean" else (lambda v: v.sum(-1))
    w1, w2 = opts["weights"]
    term = w1 * _per_item(ab[k], red) + w2 * _per_item(ba[k], red)
    if opts["direction_reduction"] == "mean":
        term = term / (w1 + w2)
    if opts["batch_reduction"] == "mean":
        return term.mean()
    if opts["batch_reduction"] == "sum":
        return term.sum()
    return term


def chamfer_distance(a, b, *, preset: str = "plain", squared: bool | None = None,
                     point_reduction: str | None = None, direction_reduction: str | None = None,
                     weights: Sequence[float] | None = None, batch_reduction: str | None = _FROM_PRESET,
                     backend: str = "auto", memory_budget: int = DEFAULT_MEMORY_BUDGET,
                     workers: int = -1) -> torch.Tensor:
    """Chamfer distance with every convention spelled out.

    With ``d_ab`` the (squared, if ``squared``) distance of each point of ``a`` to its nearest point of ``b``
    and ``d_ba`` the converse: ``r_ab = reduce_points(d_ab)``, ``r_ba = reduce_points(d_ba)``; then
    ``w1 r_ab + w2 r_ba`` (``direction_reduction="sum"``) or ``(w1 r_ab + w2 r_ba) / (w1 + w2)`` (``"mean"``);
    then the batch reduction.

    Presets (each option left at ``None`` / ``"preset"`` takes the preset's value; options given override it):

    * ``"pytorch3d"``: squared L2, mean over points each way, the two directions summed, mean over the batch
      (``pytorch3d.loss.chamfer_distance`` with its defaults) -> scalar.
    * ``"kaolin"``: squared, mean each way, ``w1 * mean + w2 * mean`` with ``w1 = w2 = 1``, no batch reduction
      (``kaolin.metrics.pointcloud.chamfer_distance``) -> ``(B,)``.
    * ``"plain"`` (default): plain Euclidean, mean each way, average of the two directions -> ``(B,)``.

    Args:
        a: ``(B, N, 3)`` or a list of ``(N_i, 3)`` clouds.
        b: ``(B, M, 3)`` or a list of ``(M_i, 3)`` clouds.
        preset: ``"plain"``, ``"pytorch3d"`` or ``"kaolin"``.
        squared: use squared Euclidean distances.
        point_reduction: ``"mean"`` or ``"sum"`` over the points of each direction.
        direction_reduction: ``"sum"`` or ``"mean"`` (weighted mean) of the two directions.
        weights: ``(w1, w2)`` weights of the ``a -> b`` and ``b -> a`` terms (kaolin's ``w1, w2``).
        batch_reduction: ``"mean"``, ``"sum"`` or ``None`` (one value per cloud pair).
        backend, memory_budget, workers: see :func:`nn_distances`.

    Returns:
        ``()`` scalar tensor with a batch reduction, else ``(B,)``; differentiable with respect to both clouds
        (through the distances; the neighbour choice is not differentiated).
    """
    opts = _chamfer_options(preset, squared, point_reduction, direction_reduction, weights, batch_reduction)
    ab, ba, _ = _both_directions(a, b, backend, memory_budget, workers, ("a", "b"))
    return _chamfer_from(ab, ba, opts)


def hausdorff_distance(a, b, *, one_sided: bool = False, backend: str = "auto",
                       memory_budget: int = DEFAULT_MEMORY_BUDGET, workers: int = -1) -> torch.Tensor:
    """Hausdorff distance (plain Euclidean).

    One-sided (directed) ``h(a, b) = max_{x in a} min_{y in b} ||x - y||``; symmetric
    ``H(a, b) = max(h(a, b), h(b, a))``.

    Args:
        a: ``(B, N, 3)`` or a list of ``(N_i, 3)`` clouds.
        b: ``(B, M, 3)`` or a list of ``(M_i, 3)`` clouds.
        one_sided: return the directed ``h(a, b)`` instead of the symmetric distance.
        backend, memory_budget, workers: see :func:`nn_distances`.

    Returns:
        ``(B,)`` float32 on the input's device.
    """
    if not isinstance(one_sided, (bool, np.bool_)):
        raise bad_argument("one_sided", one_sided, "True or False")
    _check_backend(backend, memory_budget, workers)
    ta, tb, la, lb = _pair(a, b)
    h_ab = _per_item(_nn_any(ta, tb, la, lb, backend, memory_budget, workers)[0], lambda v: v.amax(-1))
    if one_sided:
        return h_ab
    h_ba = _per_item(_nn_any(tb, ta, lb, la, backend, memory_budget, workers)[0], lambda v: v.amax(-1))
    return torch.maximum(h_ab, h_ba)


def compare_shapes(pred, gt, thresholds=DEFAULT_THRESHOLD, *, chamfer_preset: str = "plain",
                   backend: str = "auto", memory_budget: int = DEFAULT_MEMORY_BUDGET,
                   workers: int = -1) -> dict:
    """F-score, precision, recall, Chamfer and symmetric Hausdorff from ONE nearest-neighbour pass each way.

    Args:
        pred: ``(B, N, 3)`` or a list of ``(N_i, 3)`` predicted clouds.
        gt: ``(B, M, 3)`` or a list of ``(M_i, 3)`` ground-truth clouds.
        thresholds: F-score thresholds (see :func:`fscore`).
        chamfer_preset: preset of :func:`chamfer_distance` (its batch reduction is ignored: per-item values).
        backend, memory_budget, workers: see :func:`nn_distances`.

    Returns:
        dict with ``thresholds`` (list of ``T`` floats), ``fscore``, ``precision``, ``recall`` ``(B, T)``,
        ``chamfer`` ``(B,)``, ``hausdorff`` ``(B,)``, ``n_pred`` and ``n_gt`` ``(B,)`` long.
    """
    thr = _thresholds(thresholds)
    opts = _chamfer_options(chamfer_preset, None, None, None, None, None)
    ab, ba, ragged = _both_directions(pred, gt, backend, memory_budget, workers)
    f = _fscore_from(ab[0], ba[0], thr)
    h = torch.maximum(_per_item(ab[0], lambda v: v.amax(-1)), _per_item(ba[0], lambda v: v.amax(-1)))

    def count(d):
        return torch.tensor([v.shape[-1] for v in d] if ragged else [d.shape[-1]] * d.shape[0])

    return {
        "thresholds": thr,
        "fscore": f.fscore,
        "precision": f.precision,
        "recall": f.recall,
        "chamfer": _chamfer_from(ab, ba, opts),
        "hausdorff": h,
        "n_pred": count(ab[0]),
        "n_gt": count(ba[0]),
    }


# ----------------------------------------------------------------------------------------------------
# normalisation


def unit_cube_transform(points) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre and scale that map each cloud's axis-aligned bounding box into the unit cube ``[-0.5, 0.5]^3``.

    The box centre goes to the origin and the LONGEST side becomes 1 (aspect ratio kept).

    Args:
        points: ``(B, N, 3)`` (or ``(N, 3)``) or a list of ``(N_i, 3)`` clouds.

    Returns:
        ``(centre (B, 1, 3), scale (B, 1, 1))``; normalised points are ``(points - centre) / scale``. A cloud
        whose points all coincide gets ``scale = 1``.
    """
    t, lst = _as_clouds(points, "points")
    items = [c.unsqueeze(0) for c in lst] if lst is not None else [t]
    centres, scales = [], []
    for x in items:
        lo, hi = x.amin(1, keepdim=True), x.amax(1, keepdim=True)
        side = (hi - lo).amax(-1, keepdim=True)
        centres.append((hi + lo) / 2)
        scales.append(torch.where(side > 0, side, torch.ones_like(side)))
    return torch.cat(centres), torch.cat(scales)


def normalize_unit_cube(points, reference=None):
    """Normalise clouds into the unit cube ``[-0.5, 0.5]^3`` (bounding-box centre at 0, longest side 1).

    To compare a prediction with its ground truth, normalise BOTH with the ground truth's transform
    (``normalize_unit_cube(pred, reference=gt)`` and ``normalize_unit_cube(gt)``), so a badly scaled
    prediction is not rescued by its own normalisation. Then ``d = 0.01`` is 1% of the side.

    Args:
        points: ``(B, N, 3)`` (or ``(N, 3)``) or a list of ``(N_i, 3)`` clouds.
        reference: optional clouds (same batch size) whose transforms are used instead of ``points``' own.

    Returns:
        Normalised clouds of the same form as ``points`` (a ``(B, N, 3)`` tensor or a list).
    """
    t, lst = _as_clouds(points, "points")
    centre, scale = unit_cube_transform(points if reference is None else reference)
    nb = len(lst) if lst is not None else t.shape[0]
    if centre.shape[0] != nb:
        raise bad_argument("reference", f"{centre.shape[0]} clouds", f"{nb} clouds (one per cloud of points)")
    if lst is not None:
        return [(c - centre[i].to(c.device)) / scale[i].to(c.device) for i, c in enumerate(lst)]
    return (t - centre.to(t.device)) / scale.to(t.device)


# ----------------------------------------------------------------------------------------------------
# voxels


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
    t, lst = _as_clouds(points, "points")
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
    ta, tb, la, lb = _pair(pred, gt, ("pred", "gt"))
    ga = voxelize_points(la if la is not None else ta, resolution, bounds)
    gb = voxelize_points(lb if lb is not None else tb, resolution, bounds)
    return voxel_iou(ga, gb)
