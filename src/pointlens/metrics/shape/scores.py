"""F-score@d, Chamfer (with the PyTorch3D / kaolin / plain presets), Hausdorff, the all-in-one
:func:`compare_shapes`, and unit-cube normalisation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from pointlens.errors import bad_argument
from pointlens.metrics.shape.distances import (
    DEFAULT_MEMORY_BUDGET,
    as_clouds,
    both_directions,
    check_backend,
    nn_any,
    pair_clouds,
)
from pointlens.utils.validate import check_choice, check_float

DEFAULT_THRESHOLD = 0.01
"""F-score threshold: 1% of the side of the unit cube the shapes are normalised into."""

WHAT3D_THRESHOLDS = (1 / 200, 1 / 100, 1 / 50, 1 / 20, 1 / 10, 1 / 5)
"""The thresholds (fractions of the side) the what3d code reports besides the 1% headline."""

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


def _thresholds(thresholds) -> list[float]:
    vals = np.atleast_1d(np.asarray(thresholds, dtype=object)).ravel().tolist() if not isinstance(
        thresholds, torch.Tensor) else thresholds.reshape(-1).tolist()
    if len(vals) == 0:
        raise bad_argument("thresholds", "an empty list", "one or more positive distances")
    return [check_float("thresholds", v, minimum=0.0, strict_min=True) for v in vals]


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
    (d_pred, _, _), (d_gt, _, _), _ = both_directions(pred, gt, backend, memory_budget, workers)
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
    ab, ba, _ = both_directions(a, b, backend, memory_budget, workers, ("a", "b"))
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
    check_backend(backend, memory_budget, workers)
    ta, tb, la, lb = pair_clouds(a, b)
    h_ab = _per_item(nn_any(ta, tb, la, lb, backend, memory_budget, workers)[0], lambda v: v.amax(-1))
    if one_sided:
        return h_ab
    h_ba = _per_item(nn_any(tb, ta, lb, la, backend, memory_budget, workers)[0], lambda v: v.amax(-1))
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
    ab, ba, ragged = both_directions(pred, gt, backend, memory_budget, workers)
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


def unit_cube_transform(points) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre and scale that map each cloud's axis-aligned bounding box into the unit cube ``[-0.5, 0.5]^3``.

    The box centre goes to the origin and the LONGEST side becomes 1 (aspect ratio kept).

    Args:
        points: ``(B, N, 3)`` (or ``(N, 3)``) or a list of ``(N_i, 3)`` clouds.

    Returns:
        ``(centre (B, 1, 3), scale (B, 1, 1))``; normalised points are ``(points - centre) / scale``. A cloud
        whose points all coincide gets ``scale = 1``.
    """
    t, lst = as_clouds(points, "points")
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
    t, lst = as_clouds(points, "points")
    centre, scale = unit_cube_transform(points if reference is None else reference)
    nb = len(lst) if lst is not None else t.shape[0]
    if centre.shape[0] != nb:
        raise bad_argument("reference", f"{centre.shape[0]} clouds", f"{nb} clouds (one per cloud of points)")
    if lst is not None:
        return [(c - centre[i].to(c.device)) / scale[i].to(c.device) for i, c in enumerate(lst)]
    return (t - centre.to(t.device)) / scale.to(t.device)
