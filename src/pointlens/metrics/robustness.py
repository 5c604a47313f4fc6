"""Robustness metrics: does an explanation stay the same when the input barely changes?

Quantus' "Robustness" category:

* :func:`max_sensitivity` — Yeh, Hsieh, Suggala, Inouye, Ravikumar, "On the (In)fidelity and Sensitivity of
  Explanations", NeurIPS 2019: the largest relative change of the explanation under small jitter of the
  points. LOWER is better.
* :func:`resampling_consistency` — the same shape sampled twice with different points should get the same
  explanation: scores of one sampling are carried to the other by nearest neighbour
  (:func:`pointlens.ops.knn`) and compared by Spearman rank correlation. HIGHER is better.

Explanations come from an ``explain(model, points (B, N, 3), target (B,)) -> (B, N)`` callable (see
:mod:`pointlens.metrics.sanity`) or, for :func:`resampling_consistency`, are passed in directly.
"""

from __future__ import annotations

import torch
from torch import nn

from pointlens.errors import bad_argument
from pointlens.metrics.sanity import ExplainFn, resolve_target, run_explain
from pointlens.ops.geometry import knn
from pointlens.stats import spearman
from pointlens.utils.seed import generator
from pointlens.utils.validate import as_points, as_scores, check_float, check_int

__all__ = ["jitter_in_ball", "max_sensitivity", "transfer_scores", "resampling_consistency"]


def jitter_in_ball(points: torch.Tensor, radius: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """Move every point by an independent offset drawn uniformly inside the ball of radius ``radius``.

    Args:
        points: ``(B, N, 3)``.
        radius: ball radius (>= 0), in the points' units.
        gen: optional CPU ``torch.Generator`` for reproducible draws.

    Returns:
        ``(B, N, 3)`` jittered copy; ``||y_i - x_i|| <= radius`` for every point.
    """
    shape = points.shape
    direction = torch.randn(shape, generator=gen, dtype=torch.float64)
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    length = radius * torch.rand(shape[:-1] + (1,), generator=gen, dtype=torch.float64) ** (1.0 / shape[-1])
    offset = (direction * length).to(device=points.device, dtype=points.dtype)
    return points + offset


def max_sensitivity(model: nn.Module, points, explain: ExplainFn, target=None, *, radius: float = 0.01,
                    n_samples: int = 10, normalise: bool = True, seed: int = 0, scores=None) -> torch.Tensor:
    """Max-sensitivity (Yeh et al., NeurIPS 2019, eq. "SENS_MAX"; Quantus ``MaxSensitivity``).

    ``SENS = max_{j=1..n} ||Φ(f, y_j, t) - Φ(f, x, t)||_2 / ||Φ(f, x, t)||_2`` where each ``y_j`` moves every
    point of ``x`` by an offset drawn uniformly in the ball of radius ``radius`` (:func:`jitter_in_ball`,
    seeded), the target ``t`` stays fixed and the points keep their order, so scores are compared point by
    point. The maximum over ``n`` samples is a Monte-Carlo lower bound of the supremum in the paper. Without
    ``normalise`` the denominator is dropped (the paper's plain form).

    Args:
        model: maps ``(B, N, 3)`` to logits ``(B, C)``; used as it is.
        points: ``(B, N, 3)`` clouds.
        explain: ``explain(model, points, target) -> (B, N)`` scores.
        target: class per cloud; default the model's prediction on the clean clouds.
        radius: jitter radius per point (>= 0; clouds are usually in the unit sphere, so 0.01 = 1 %).
        n_samples: number of perturbations ``n``.
        normalise: divide by ``||Φ(f, x, t)||_2``.
        seed: seed of the jitter.
        scores: ``Φ(f, x, t)`` when already computed ``(B, N)`` (as Quantus' ``a_batch``): used instead of
            explaining the clean clouds once more (the same result).

    Returns:
        ``(B,)`` float64 in ``[0, ∞)``; LOWER is better (0 = unchanged explanations); NaN when normalising an
        all-zero explanation.

    Example:
        >>> max_sensitivity(model, points, explain, radius=0.01, n_samples=10)   # tensor([0.12, 0.08], ...)
    """
    if not callable(explain):
        raise bad_argument("explain", type(explain).__name__, "a callable explain(model, points, target)")
    pts = as_points(points)
    radius = check_float("radius", radius, minimum=0.0)
    n_samples = check_int("n_samples", n_samples, minimum=1)
    given = None if scores is None else as_scores(scores)
    if given is not None and tuple(given.shape) != tuple(pts.shape[:2]):
        raise bad_argument("scores", f"shape {tuple(given.shape)}", f"shape {tuple(pts.shape[:2])} (one per point)")
    t, _ = resolve_target(model, pts, target)
    base = run_explain(explain, model, pts, t) if given is None else given.to(pts.device)
    gen = generator(seed)
    worst = torch.zeros(pts.shape[0], dtype=torch.float64, device=base.device)
    for _ in range(n_samples):
        scores = run_explain(explain, model, jitter_in_ball(pts, radius, gen), t)
        worst = torch.maximum(worst, (scores - base).norm(dim=1))
    if not normalise:
        return worst
    den = base.norm(dim=1)
    return torch.where(den > 0, worst / torch.where(den > 0, den, torch.ones_like(den)),
                       torch.full_like(den, float("nan")))


def transfer_scores(points_src, scores_src, points_dst) -> torch.Tensor:
    """Carry per-point scores to another sampling of the same shape: each destination point takes the score of
    its nearest source point (:func:`pointlens.ops.knn`, k = 1).

    Args:
        points_src: ``(B, N, 3)``.
        scores_src: ``(B, N)``.
        points_dst: ``(B, M, 3)`` (``M`` may differ from ``N``).

    Returns:
        ``(B, M)`` float64 scores.
    """
    src = as_points(points_src, "points_src")
    dst = as_points(points_dst, "points_dst").to(src.device)
    s = as_scores(scores_src, "scores_src").to(src.device)
    if tuple(s.shape) != tuple(src.shape[:2]):
        raise bad_argument("scores_src", f"shape {tuple(s.shape)}", f"shape {tuple(src.shape[:2])}")
    if dst.shape[0] != src.shape[0]:
        raise bad_argument("points_dst", f"{dst.shape[0]} clouds", f"{src.shape[0]} clouds like points_src")
    idx = knn(dst, src, 1).idx[..., 0]
    return torch.gather(s, 1, idx)


def resampling_consistency(points_a, scores_a, points_b, scores_b, *, symmetric: bool = True) -> torch.Tensor:
    """Consistency of explanations across two samplings of the same shapes.

    ``ρ_{a→b} = Spearman(transfer(a → b), s_b)``: every point of sampling ``b`` takes the score of its nearest
    neighbour in sampling ``a`` (:func:`transfer_scores`), and the ranking is compared with ``b``'s own
    explanation. With ``symmetric`` the result is ``(ρ_{a→b} + ρ_{b→a}) / 2``. The two samplings (e.g. two
    ``sampling="random"`` draws, or first 1024 vs. FPS 1024 points of the same mesh) are made by the caller.

    Args:
        points_a: ``(B, N, 3)`` first sampling (same normalisation as ``b``).
        scores_a: ``(B, N)`` explanation of ``points_a``.
        points_b: ``(B, M, 3)`` second sampling.
        scores_b: ``(B, M)`` explanation of ``points_b``.
        symmetric: average both directions.

    Returns:
        ``(B,)`` float64 in ``[-1, 1]``; HIGHER is better (1 = the same ranking on the shape); NaN when a
        compared score vector is constant.

    Example:
        >>> resampling_consistency(pa, explain(model, pa, t), pb, explain(model, pb, t))
    """
    pa = as_points(points_a, "points_a")
    pb = as_points(points_b, "points_b").to(pa.device)
    sb = as_scores(scores_b, "scores_b").to(pa.device)
    if tuple(sb.shape) != tuple(pb.shape[:2]):
        raise bad_argument("scores_b", f"shape {tuple(sb.shape)}", f"shape {tuple(pb.shape[:2])}")
    rho = spearman(transfer_scores(pa, scores_a, pb), sb)
    if symmetric:
        sa = as_scores(scores_a, "scores_a").to(pa.device)
        rho = 0.5 * (rho + spearman(transfer_scores(pb, sb, pa), sa))
    return rho
