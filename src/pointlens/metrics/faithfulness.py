"""Faithfulness metrics: does the model's output really depend on the points an explanation calls important?

* :func:`deletion_curve` / :func:`insertion_curve` — remove (or restore) points in decreasing score order and
  follow the probability of the target class (Petsiuk, Das, Saenko, "RISE", BMVC 2018; Samek et al. 2017 for
  region perturbation). Deletion: a faithful explanation makes the probability fall fast (LOW area is best).
  Insertion: starting from a cloud whose points all sit at its centre, restoring the top points first
  makes the probability rise fast (HIGH area is best).
* :func:`faithfulness_correlation` — Bhatt, Weller, Moura, "Evaluating and aggregating feature-based model
  explanations", IJCAI 2020: Pearson correlation, over random subsets ``S`` of points, between the summed
  attribution ``Σ_{i∈S} s_i`` and the drop of the target logit when ``S`` is removed (best 1).

Points are removed only through :mod:`pointlens.ops.removal`; every function says which removal it uses.
The model is used as it is (call ``model.eval()`` first); it is run under ``torch.no_grad()`` and its mode and
weights are never changed. Scores are ordered with a stable sort, so ties are broken towards the lower point
index and the same inputs always give the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from pointlens.errors import bad_argument
from pointlens.models.hooks import capture, min_points, model_device
from pointlens.ops.removal import cloud_centre, delete_points, keep_points, shift_to_centre
from pointlens.stats import pearson
from pointlens.utils.seed import generator
from pointlens.utils.validate import as_points, as_scores, as_target, check_choice, check_int

__all__ = [
    "PerturbationCurve",
    "FaithfulnessCorrelation",
    "model_outputs",
    "deletion_curve",
    "insertion_curve",
    "faithfulness_correlation",
]


# --------------------------------------------------------------------------------------------- helpers
def model_outputs(model: nn.Module, points: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """Logits of ``model`` on a batch of clouds, without gradients, in chunks of ``batch_size`` clouds.

    Args:
        model: maps ``(B, N, 3)`` to logits ``(B, C)``; used as it is (its mode is not changed).
        points: ``(B, N, 3)``.
        batch_size: clouds per forward pass.

    Returns:
        ``(B, C)`` float64 logits on the device of ``points``.

    Raises:
        InvalidArgumentError: when the model does not return ``(B, C)`` logits.
    """
    if not isinstance(model, nn.Module):
        raise bad_argument("model", type(model).__name__,
                           "a torch.nn.Module mapping (B, N, 3) to logits (B, C)")
    dev = model_device(model, points.device)
    outs = []
    with torch.no_grad():
        for s in range(0, points.shape[0], batch_size):
            chunk = points[s:s + batch_size]
            out = model(chunk.to(dev))
            if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != chunk.shape[0]:
                shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise bad_argument("model", f"an output of shape {shape} for {tuple(chunk.shape)} points",
                                   "a model returning logits of shape (B, C)")
            outs.append(out.detach().to(device=points.device, dtype=torch.float64))
    return torch.cat(outs, 0)


def _pool_parts(model: nn.Module):
    """``(pool layer name, head)`` of a model whose points meet only in one global max pool (the model says so
    with ``pointwise_until_pool = True``, as pointlens' PointNet without T-Nets does), in eval mode; else None."""
    if getattr(model, "pointwise_until_pool", False) is not True or model.training:
        return None
    name, head = getattr(model, "pool_layer", None), getattr(model, "head", None)
    if not isinstance(name, str) or not isinstance(head, nn.Module):
        return None
    return name, head


def _pooled_removal_logits(model: nn.Module, pts: torch.Tensor, parts, subsets: torch.Tensor,
                           centre: torch.Tensor | None, batch_size: int):
    """Logits of the clean clouds and of every cloud with each of its point subsets removed, for a model whose
    points meet only in one global max pool, running the per-point layers on the clean clouds only.

    The points that stay keep the features they have in the clean cloud, so a channel's pooled value after the
    removal is its clean maximum unless the point holding it was removed (about ``m / N`` of the channels); only
    those channels take the maximum over the points that stay. Points shifted to ``centre`` add the centre point's
    feature. The head then runs on every perturbed pooled vector: the same logits as classifying the perturbed
    clouds, up to float rounding.

    Shapes: ``pts (B, N, 3)``, ``subsets (B, S, m)``, ``centre (B, 1, 3)`` or None (points deleted) ->
    ``(clean (B, K), perturbed (B * S, K))`` float64 on ``pts``' device (row ``b * S + j`` = cloud ``b`` without
    subset ``j``), or None when the recorded layer is not the channel-wise max over points or ``head(pooled)`` is
    not the logits (the shortcut does not apply).
    """
    name, head = parts
    dev = model_device(model, pts.device)
    b, s_count, m = subsets.shape
    n = pts.shape[1]
    least = min_points(model)
    clean, perturbed = [], []
    with torch.no_grad():
        for s in range(0, b, batch_size):
            chunk = pts[s:s + batch_size].to(dev)
            bc = chunk.shape[0]
            with capture(model, name, detach=True) as rec:
                out = model(chunk)
            f, pooled = rec[name].input, rec[name].output
            if (not isinstance(out, torch.Tensor) or out.dim() != 2 or not isinstance(f, torch.Tensor)
                    or f.dim() != 3 or f.shape[0] != bc or f.shape[2] != n
                    or not isinstance(pooled, torch.Tensor) or pooled.shape != f.shape[:2]):
                return None
            best, where = f.max(dim=2)                                # (bc, C) clean maxima and their points
            again = head(pooled)
            if (not torch.equal(pooled, best) or again.shape != out.shape
                    or (again - out).abs().max() > 1e-4 * (1.0 + out.abs().max())):
                return None
            c = f.shape[1]
            gone = torch.zeros(bc, s_count, n, dtype=torch.bool, device=dev).scatter_(
                2, subsets[s:s + batch_size].to(dev), True)              # (bc, S, N) removed points
            lost = gone.gather(2, where.unsqueeze(1).expand(bc, s_count, c))   # (bc, S, C) maximum removed?
            res = best.unsqueeze(1).expand(bc, s_count, c).clone()
            cb, sj, ch = lost.nonzero(as_tuple=True)
            step = max(1, 2**22 // n)
            for p in range(0, cb.shape[0], step):
                i, j, k = cb[p:p + step], sj[p:p + step], ch[p:p + step]
                res[i, j, k] = f[i, k].masked_fill(gone[i, j], float("-inf")).amax(1)
            if centre is not None:                        # a cloud of the centre point alone (repeated if need be)
                with capture(model, name, detach=True) as rec:
                    model(centre[s:s + batch_size].expand(-1, least, -1).to(dev))
                res = torch.maximum(res, rec[name].input[:, :, :1].transpose(1, 2))
            clean.append(out.to(device=pts.device, dtype=torch.float64))
            perturbed.append(head(res.reshape(bc * s_count, c)).to(device=pts.device, dtype=torch.float64))
    return torch.cat(clean), torch.cat(perturbed)

def _target_prob(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)


def _fractions(fractions, steps: int) -> torch.Tensor:
    if fractions is None:
        steps = check_int("steps", steps, minimum=1)
        return torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    f = torch.as_tensor(fractions, dtype=torch.float64).reshape(-1)
    if f.numel() < 2 or not bool(torch.isfinite(f).all()) or f.min() < 0 or f.max() > 1 \
            or bool((f[1:] <= f[:-1]).any()):
        raise bad_argument("fractions", f.tolist()[:12], "at least 2 increasing numbers in [0, 1]")
    return f


def _auc(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Trapezoid area under y (B, F) over x (F,) divided by the x range (the curve's mean height)."""
    width = x[-1] - x[0]
    area = torch.trapezoid(y, x.to(y.device), dim=1)
    return area / width if float(width) > 0 else y.mean(1)


def _points_and_scores(points, scores) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated ``points (B, N, 3)`` and ``scores (B, N)`` on the points' device, one score per point."""
    pts = as_points(points)
    s = as_scores(scores).to(pts.device)
    if tuple(s.shape) != tuple(pts.shape[:2]):
        raise bad_argument("scores", f"shape {tuple(s.shape)}",
                           f"shape {tuple(pts.shape[:2])} (one per point)")
    return pts, s


def _prepare(model, points, scores, target, batch_size):
    pts, s = _points_and_scores(points, scores)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    logits = model_outputs(model, pts, batch_size=batch_size)
    t = as_target(target, pts.shape[0], logits.shape[1])
    t = logits.argmax(1) if t is None else t.to(pts.device)
    return pts, s, t, logits


@dataclass
class PerturbationCurve:
    """A deletion or insertion curve.

    Attributes:
        kind: ``"deletion"`` or ``"insertion"``.
        removal: how points were removed: ``"delete"`` / ``"keep"`` (the cloud changes size) or ``"shift"``
            (moved onto the cloud's median/mean centre, fixed size).
        fractions: ``(F,)`` float64 share of points removed (deletion) or restored (insertion) at each step,
            ``counts / N`` (the requested fractions rounded to whole points).
        counts: ``(F,)`` long number of points removed / restored.
        probabilities: ``(B, F)`` float64 softmax probability of the target class at each step.
        auc: ``(B,)`` float64 normalised area under the curve = trapezoid area / (last - first fraction), in
            ``[0, 1]``; deletion: lower is better; insertion: higher is better.
        target: ``(B,)`` long explained class.
    """

    kind: str
    removal: str
    fractions: torch.Tensor
    counts: torch.Tensor
    probabilities: torch.Tensor
    auc: torch.Tensor
    target: torch.Tensor

    def to_dict(self) -> dict:
        """JSON-friendly dict of python lists and numbers."""
        return {"kind": self.kind, "removal": self.removal, "fractions": self.fractions.tolist(),
                "counts": self.counts.tolist(), "probabilities": self.probabilities.tolist(),
                "auc": self.auc.tolist(), "target": self.target.tolist()}


def _curve(kind, model, points, scores, target, fractions, steps, removal, centre, batch_size):
    pts, s, t, logits0 = _prepare(model, points, scores, target, batch_size)
    b, n, _ = pts.shape
    f = _fractions(fractions, steps)
    counts = torch.round(f * n).long()
    least = min(n, min_points(model))             # e.g. DGCNN needs k points for its k-NN graph
    if removal == "delete":
        counts = counts.clamp_max(n - least)      # a cloud keeps at least the points the model needs
    if removal == "keep":
        counts = counts.clamp_min(least)
    order = torch.sort(s, dim=1, descending=True, stable=True).indices
    probs = torch.empty(b, len(counts), dtype=torch.float64, device=pts.device)
    centre_t = cloud_centre(pts, centre)
    cache: dict[int, torch.Tensor] = {}
    for j, k in enumerate(counts.tolist()):
        if k not in cache:
            top = order[:, :k]
            if kind == "deletion" and k == 0:
                out = logits0
            elif kind == "deletion" and removal == "delete":
                out = model_outputs(model, delete_points(pts, top), batch_size=batch_size)
            elif kind == "deletion":
                mask = torch.zeros(b, n, dtype=torch.bool, device=pts.device).scatter_(1, top, True)
                out = model_outputs(model, shift_to_centre(pts, mask, centre_t), batch_size=batch_size)
            elif removal == "keep":
                out = model_outputs(model, keep_points(pts, top), batch_size=batch_size)
            else:
                absent = torch.ones(b, n, dtype=torch.bool, device=pts.device).scatter_(1, top, False)
                out = model_outputs(model, shift_to_centre(pts, absent, centre_t), batch_size=batch_size)
            cache[k] = _target_prob(out, t)
        probs[:, j] = cache[k]
    x = counts.to(torch.float64) / n
    return PerturbationCurve(kind, removal, x, counts, probs, _auc(x, probs), t)


def deletion_curve(model: nn.Module, points, scores, target=None, *, fractions=None, steps: int = 10,
                   removal: str = "delete", centre: str = "median",
                   batch_size: int = 256) -> PerturbationCurve:
    """Deletion curve: remove the highest-scored points first and follow the target probability.

    At each fraction ``f`` the ``k = round(f N)`` highest-scored points are removed and the model's softmax
    probability ``p_t(x \\ top_k)`` of the target is recorded (Petsiuk et al., RISE, BMVC 2018, "deletion
    metric"). ``AUC = ∫ p_t df / (f_last - f_first)`` by the trapezoid rule.

    Removal: ``"delete"`` (default) deletes the points with :func:`pointlens.ops.removal.delete_points`,
    the cloud shrinks to ``N - k`` points (``k`` is capped at ``N - min_points(model)``: a cloud keeps at least
    one point, or as many as the model needs, see :func:`pointlens.models.hooks.min_points`);
    ``"shift"`` moves them onto the cloud's centre with :func:`~pointlens.ops.removal.shift_to_centre`
    (the centre of the ORIGINAL cloud, fixed size).

    Args:
        model: maps ``(B, N, 3)`` to logits ``(B, C)``.
        points: ``(B, N, 3)`` clouds.
        scores: ``(B, N)`` per-point scores, higher = more important.
        target: class per cloud (int or ``(B,)``); default the model's prediction on the clean clouds.
        fractions: increasing fractions in ``[0, 1]`` (at least 2); default ``linspace(0, 1, steps + 1)``.
        steps: number of intervals when ``fractions`` is None.
        removal: ``"delete"`` or ``"shift"``.
        centre: ``"median"`` or ``"mean"``: the centre used by ``"shift"``.
        batch_size: clouds per forward pass.

    Returns:
        :class:`PerturbationCurve` with ``probabilities (B, F)`` and ``auc (B,)`` in ``[0, 1]``; LOWER is
        better.

    Example:
        >>> curve = deletion_curve(model, points, scores, steps=10)
        >>> curve.auc          # (B,), e.g. tensor([0.21, 0.35])
    """
    check_choice("removal", removal, ("delete", "shift"))
    check_choice("centre", centre, ("median", "mean"))
    return _curve("deletion", model, points, scores, target, fractions, steps, removal, centre, batch_size)


def insertion_curve(model: nn.Module, points, scores, target=None, *, fractions=None, steps: int = 10,
                    removal: str = "shift", centre: str = "median",
                    batch_size: int = 256) -> PerturbationCurve:
    """Insertion curve: start from an "empty" cloud and restore the highest-scored points first.

    At each fraction ``f`` the ``k = round(f N)`` highest-scored points are at their true positions and the
    model's probability of the target is recorded (Petsiuk et al., RISE, BMVC 2018, "insertion metric").
    ``AUC = ∫ p_t df / (f_last - f_first)`` by the trapezoid rule.

    Removal: ``"shift"`` (default) starts from the cloud with EVERY point shifted onto its centre (the
    centre of the original cloud, :func:`pointlens.ops.removal.shift_to_centre`) and restores the top-k
    points, fixed size ``N``; ``"keep"`` feeds only the top-k points
    (:func:`~pointlens.ops.removal.keep_points`, the cloud grows from ``max(k, min_points(model))`` points,
    :func:`pointlens.models.hooks.min_points`).

    Args:
        model: maps ``(B, N, 3)`` to logits ``(B, C)``.
        points: ``(B, N, 3)`` clouds.
        scores: ``(B, N)`` per-point scores, higher = more important.
        target: class per cloud; default the model's prediction on the clean clouds.
        fractions: increasing fractions in ``[0, 1]`` (at least 2); default ``linspace(0, 1, steps + 1)``.
        steps: number of intervals when ``fractions`` is None.
        removal: ``"shift"`` or ``"keep"``.
        centre: ``"median"`` or ``"mean"``: the centre used by ``"shift"``.
        batch_size: clouds per forward pass.

    Returns:
        :class:`PerturbationCurve` with ``probabilities (B, F)`` and ``auc (B,)`` in ``[0, 1]``; HIGHER is
        better.
    """
    check_choice("removal", removal, ("shift", "keep"))
    check_choice("centre", centre, ("median", "mean"))
    return _curve("insertion", model, points, scores, target, fractions, steps, removal, centre, batch_size)


class FaithfulnessCorrelation(NamedTuple):
    """Result of :func:`faithfulness_correlation`.

    Attributes:
        correlation: ``(B,)`` float64 Pearson correlation in ``[-1, 1]`` (best 1; NaN when undefined).
        attribution_sums: ``(B, S)`` float64 ``Σ_{i∈S_j} s_i`` for each subset.
        output_drops: ``(B, S)`` float64 ``f_t(x) - f_t(x with S_j removed)`` for each subset.
        subsets: ``(B, S, m)`` long point indices of each subset.
        target: ``(B,)`` long explained class.
    """

    correlation: torch.Tensor
    attribution_sums: torch.Tensor
    output_drops: torch.Tensor
    subsets: torch.Tensor
    target: torch.Tensor


def faithfulness_correlation(model: nn.Module, points, scores, target=None, *, n_subsets: int = 100,
                             subset_size: int | None = None, removal: str = "shift", centre: str = "median",
                             output: str = "logit", seed: int = 0, batch_size: int = 256,
                             fast="auto") -> FaithfulnessCorrelation:
    """Faithfulness correlation μ_F (Bhatt, Weller, Moura, IJCAI 2020; Quantus ``FaithfulnessCorrelation``).

    ``μ_F = corr_{S ∈ random subsets, |S| = m} ( Σ_{i∈S} s_i ,  f_t(x) - f_t(x_{[S removed]}) )`` with the
    Pearson correlation over ``n_subsets`` subsets drawn uniformly without replacement, independently per
    cloud, from a generator seeded with ``seed`` (same seed -> same subsets).

    Removal: ``"shift"`` (default; Bhatt's baseline replacement) moves the subset onto the centre of the
    original cloud with :func:`pointlens.ops.removal.shift_to_centre` (fixed size); ``"delete"``
    deletes it with :func:`~pointlens.ops.removal.delete_points` (the cloud shrinks to ``N - m``).

    Args:
        model: maps ``(B, N, 3)`` to logits ``(B, C)``.
        points: ``(B, N, 3)`` clouds.
        scores: ``(B, N)`` per-point scores.
        target: class per cloud; default the model's prediction on the clean clouds.
        n_subsets: number of random subsets ``S`` (>= 2).
        subset_size: points per subset ``m``, ``1 <= m < N``; default ``max(1, round(0.1 N))``.
        removal: ``"shift"`` or ``"delete"``.
        centre: ``"median"`` or ``"mean"`` (for ``"shift"``).
        output: ``"logit"`` (the paper's ``f``: the target logit) or ``"probability"`` (softmax).
        seed: seed of the subset sampling.
        batch_size: clouds per forward pass.
        fast: ``"auto"`` (default): for a model whose points meet only in one global max pool
            (``pointwise_until_pool`` True, e.g. PointNet without T-Nets) in eval mode, classify the perturbed
            clouds without running the per-point layers again (the points that stay keep their features; only
            the pooled feature and the head are recomputed): the same numbers up to float rounding, one forward
            pass of the clean clouds instead of ``n_subsets``. ``True`` requires it, ``False`` classifies every
            perturbed cloud.

    Returns:
        :class:`FaithfulnessCorrelation`; ``.correlation (B,)`` in ``[-1, 1]``, HIGHER is better (1: the
        summed scores predict the output drop perfectly, linearly), 0 = unrelated.

    Example:
        >>> faithfulness_correlation(model, points, scores, n_subsets=50, subset_size=64).correlation
    """
    check_choice("removal", removal, ("shift", "delete"))
    check_choice("centre", centre, ("median", "mean"))
    check_choice("output", output, ("logit", "probability"))
    check_choice("fast", fast, ("auto", True, False))
    n_subsets = check_int("n_subsets", n_subsets, minimum=2)
    pts, s = _points_and_scores(points, scores)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if not isinstance(model, nn.Module):
        raise bad_argument("model", type(model).__name__,
                           "a torch.nn.Module mapping (B, N, 3) to logits (B, C)")
    b, n, _ = pts.shape
    if n < 2:
        raise bad_argument("points", f"clouds of {n} point", "at least 2 points per cloud")
    m = max(1, round(0.1 * n)) if subset_size is None else check_int("subset_size", subset_size, minimum=1,
                                                                        maximum=n - 1)
    least = min_points(model)
    if removal == "delete" and n - m < least:
        raise bad_argument("subset_size", m, f"at most {n - least}: removal='delete' must leave the {least} "
                                             "points per cloud the model needs")
    centre_t = cloud_centre(pts, centre)
    g = generator(seed)
    subsets = torch.rand(b, n_subsets, n, generator=g).argsort(dim=2)[:, :, :m].to(pts.device)
    parts = _pool_parts(model) if fast is not False else None
    pooled = None if parts is None else _pooled_removal_logits(
        model, pts, parts, subsets, centre_t if removal == "shift" else None, batch_size)
    if fast is True and pooled is None:
        raise bad_argument("fast", True, "a model in eval mode whose points meet only in one global max pool "
                           "(pointwise_until_pool=True, pool_layer, head), or fast='auto'/False")
    logits0 = pooled[0] if pooled is not None else model_outputs(model, pts, batch_size=batch_size)
    t = as_target(target, pts.shape[0], logits0.shape[1])
    t = logits0.argmax(1) if t is None else t.to(pts.device)
    sums = torch.gather(s.unsqueeze(1).expand(b, n_subsets, n), 2, subsets).sum(2)

    def value(logits, tgt):
        if output == "logit":
            return logits.gather(1, tgt.unsqueeze(1)).squeeze(1)
        return _target_prob(logits, tgt)

    flat = subsets.reshape(b * n_subsets, m)
    owner = torch.arange(b, device=pts.device).repeat_interleave(n_subsets)
    if pooled is not None:
        perturbed = value(pooled[1], t[owner])
    else:
        perturbed = torch.empty(b * n_subsets, dtype=torch.float64, device=pts.device)
        for start in range(0, b * n_subsets, batch_size):
            rows = owner[start:start + batch_size]
            idx = flat[start:start + batch_size]
            clouds = pts[rows]
            if removal == "delete":
                clouds = delete_points(clouds, idx)
            else:
                mask = torch.zeros(len(rows), n, dtype=torch.bool, device=pts.device).scatter_(1, idx, True)
                clouds = shift_to_centre(clouds, mask, centre_t[rows])
            out = model_outputs(model, clouds, batch_size=batch_size)
            perturbed[start:start + batch_size] = value(out, t[rows])
    drops = value(logits0, t).unsqueeze(1) - perturbed.view(b, n_subsets)
    return FaithfulnessCorrelation(pearson(sums, drops), sums, drops, subsets, t)
