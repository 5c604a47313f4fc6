"""Localisation metrics: does an explanation put its relevance on the ground-truth points?

Every metric compares per-point scores ``(B, N)`` (higher = more important) with a ground-truth mask
``(B, N)`` bool (True = the points that really explain the class, e.g. ShapeParts' ``gt_mask``) and returns
one value per cloud, a ``(B,)`` float64 tensor. Names and definitions follow Quantus' "Localisation" category
(Hedström et al., JMLR 2023). Undefined cases (an empty or full mask where the metric needs both kinds of
points, no positive relevance) give NaN; average with ``torch.nanmean``.

This module also holds the batched statistics the other explanation metrics share (written in torch, checked
against ``scipy.stats`` in the tests): :func:`rankdata`, :func:`pearson`, :func:`spearman`, :func:`auroc`,
:func:`topk_mask`, the per-cloud summary :func:`bootstrap_mean_ci`, plus the input checks :func:`as_scores`
and :func:`as_mask`.

===================================  ===============================================  ======  ====
metric                               definition                                       range   best
===================================  ===============================================  ======  ====
:func:`pointing_game`                top-scored point inside the mask                 [0, 1]  1
:func:`relevance_mass_accuracy`      positive relevance inside / all positive         [0, 1]  1
:func:`relevance_rank_accuracy`      share of the top-K points inside, K = |mask|     [0, 1]  1
:func:`topk_intersection`            share of the top-k points inside the mask        [0, 1]  1
:func:`auroc`                        P(score inside > score outside), ties = 1/2      [0, 1]  1
===================================  ===============================================  ======  ====
"""

from __future__ import annotations

import numpy as np
import torch

from pointlens.errors import bad_argument
from pointlens.utils.validate import check_float, check_int

__all__ = [
    "as_scores",
    "as_mask",
    "rankdata",
    "pearson",
    "spearman",
    "topk_mask",
    "pointing_game",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "topk_intersection",
    "auroc",
    "localisation_metrics",
    "bootstrap_mean_ci",
]


# --------------------------------------------------------------------------------------------- input checks
def as_scores(scores, name: str = "scores", *, like: torch.Tensor | None = None) -> torch.Tensor:
    """Check and convert per-point scores to a float64 tensor ``(B, N)``.

    Args:
        scores: array-like ``(B, N)`` (``(N,)`` is given a batch dimension); finite numbers.
        name: the argument's name, used in error messages.
        like: when given, the result must have this tensor's shape ``(B, N)``.

    Returns:
        ``torch.Tensor`` float64 ``(B, N)`` (float64 so sums and ranks are exact enough for large N).

    Raises:
        InvalidArgumentError: wrong type, rank, shape, or non-finite values.
    """
    if isinstance(scores, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(scores))
    elif isinstance(scores, torch.Tensor):
        t = scores.detach()
    else:
        try:
            t = torch.as_tensor(np.asarray(scores, dtype=np.float64))
        except Exception:
            raise bad_argument(name, type(scores).__name__, "a tensor or array of shape (B, N)") from None
    if t.dtype == torch.bool:
        t = t.to(torch.float64)
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64, torch.int16, torch.uint8)):
        raise bad_argument(name, f"dtype {t.dtype}", "real-valued scores")
    if t.dim() == 1:
        t = t.unsqueeze(0)
    if t.dim() != 2 or t.shape[1] == 0:
        raise bad_argument(name, f"a tensor of shape {tuple(t.shape)}",
                           "per-point scores of shape (B, N), N >= 1")
    if like is not None and tuple(t.shape) != tuple(like.shape):
        raise bad_argument(name, f"shape {tuple(t.shape)}",
                           f"shape {tuple(like.shape)} (one score per point)")
    t = t.to(torch.float64)
    if not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).sum())
        raise bad_argument(name, f"{bad} NaN or infinite value(s)", "finite scores")
    return t


def as_mask(mask, like: torch.Tensor, name: str = "mask") -> torch.Tensor:
    """Check and convert a ground-truth mask to a bool tensor with the shape of ``like`` ``(B, N)``.

    Args:
        mask: bool or 0/1 array-like ``(B, N)`` (``(N,)`` is given a batch dimension).
        like: the scores ``(B, N)`` the mask belongs to.
        name: the argument's name, used in error messages.

    Returns:
        ``torch.Tensor`` bool ``(B, N)`` on ``like``'s device.

    Raises:
        InvalidArgumentError: wrong shape, or values other than 0/1.
    """
    t = mask.detach() if isinstance(mask, torch.Tensor) else torch.as_tensor(np.asarray(mask))
    if t.dim() == 1:
        t = t.unsqueeze(0)
    if tuple(t.shape) != tuple(like.shape):
        raise bad_argument(name, f"shape {tuple(t.shape)}",
                           f"a bool mask of shape {tuple(like.shape)} like the scores")
    if t.dtype != torch.bool:
        if t.is_complex() or not bool(((t == 0) | (t == 1)).all()):
            raise bad_argument(name, "values other than 0/1", "a bool mask (or 0/1 values)")
        t = t != 0
    return t.to(like.device)


# --------------------------------------------------------------------------------------------- statistics
def rankdata(x: torch.Tensor) -> torch.Tensor:
    """Ranks along the last dimension, 1 = smallest, ties get the average of their ranks.

    The batched torch equivalent of ``scipy.stats.rankdata(x, method="average", axis=-1)``.

    Args:
        x: ``(B, N)`` real values.

    Returns:
        ``(B, N)`` float64 ranks in ``[1, N]``.
    """
    x = as_scores(x, "x")
    b, n = x.shape
    sorted_x, order = torch.sort(x, dim=1, stable=True)
    new_group = torch.ones_like(sorted_x, dtype=torch.bool)
    new_group[:, 1:] = sorted_x[:, 1:] != sorted_x[:, :-1]
    gid = torch.cumsum(new_group.long(), dim=1) - 1                      # (B, N) group id per sorted slot
    flat = gid + torch.arange(b, device=x.device).unsqueeze(1) * n          # unique ids across the batch
    pos = torch.arange(n, device=x.device, dtype=torch.float64).expand(b, n).reshape(-1)
    first = torch.full((b * n,), float(n), dtype=torch.float64, device=x.device)
    last = torch.full((b * n,), -1.0, dtype=torch.float64, device=x.device)
    first.scatter_reduce_(0, flat.reshape(-1), pos, reduce="amin")
    last.scatter_reduce_(0, flat.reshape(-1), pos, reduce="amax")
    avg = (first + last) / 2.0 + 1.0
    ranks_sorted = avg[flat.reshape(-1)].reshape(b, n)
    return torch.empty_like(ranks_sorted).scatter_(1, order, ranks_sorted)


def pearson(x, y) -> torch.Tensor:
    """Pearson correlation of each row of ``x`` with the same row of ``y``.

    ``r = Σ (x - x̄)(y - ȳ) / sqrt(Σ (x - x̄)² Σ (y - ȳ)²)``, as ``scipy.stats.pearsonr``.

    Args:
        x: ``(B, N)`` values.
        y: ``(B, N)`` values.

    Returns:
        ``(B,)`` float64 in ``[-1, 1]``; NaN for a row where ``x`` or ``y`` is constant (undefined).
    """
    x = as_scores(x, "x")
    y = as_scores(y, "y", like=x)
    xc = x - x.mean(1, keepdim=True)
    yc = y - y.mean(1, keepdim=True)
    # Scale each row first so the products cannot under/overflow.
    xs = xc.abs().amax(1, keepdim=True)
    ys = yc.abs().amax(1, keepdim=True)
    xc = xc / torch.where(xs > 0, xs, torch.ones_like(xs))
    yc = yc / torch.where(ys > 0, ys, torch.ones_like(ys))
    den = torch.sqrt((xc * xc).sum(1) * (yc * yc).sum(1))
    r = (xc * yc).sum(1) / den
    r = torch.where(den > 0, r, torch.full_like(r, float("nan")))
    return r.clamp(-1.0, 1.0)


def spearman(x, y) -> torch.Tensor:
    """Spearman rank correlation of each row: the Pearson correlation of average ranks (ties averaged).

    Same value as ``scipy.stats.spearmanr`` per row.

    Args:
        x: ``(B, N)`` values.
        y: ``(B, N)`` values.

    Returns:
        ``(B,)`` float64 in ``[-1, 1]``; NaN where a row is constant.
    """
    x = as_scores(x, "x")
    y = as_scores(y, "y", like=x)
    return pearson(rankdata(x), rankdata(y))


def topk_mask(scores, k: int) -> torch.Tensor:
    """Bool mask of the ``k`` highest scores of each row (ties broken towards the lower index, deterministic).

    Args:
        scores: ``(B, N)``.
        k: ``0 <= k <= N``.

    Returns:
        ``(B, N)`` bool with exactly ``k`` True per row.
    """
    s = as_scores(scores)
    k = check_int("k", k, minimum=0, maximum=s.shape[1])
    order = torch.sort(s, dim=1, descending=True, stable=True).indices[:, :k]
    return torch.zeros_like(s, dtype=torch.bool).scatter_(1, order, True)


def _ranked_share(s: torch.Tensor, m: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Share of each row's top-``k[b]`` points (stable descending order) inside the mask; NaN for k = 0."""
    order = torch.sort(s, dim=1, descending=True, stable=True).indices
    in_mask = torch.gather(m, 1, order).to(torch.float64)
    pos = torch.arange(s.shape[1], device=s.device).unsqueeze(0)
    hits = (in_mask * (pos < k.unsqueeze(1))).sum(1)
    kf = k.to(torch.float64)
    return torch.where(k > 0, hits / kf.clamp_min(1.0), torch.full_like(kf, float("nan")))


# --------------------------------------------------------------------------------------------- metrics
def pointing_game(scores, mask) -> torch.Tensor:
    """Pointing game (Zhang et al., "Top-down neural attention by excitation backprop", ECCV 2016).

    A hit when the highest-scored point lies inside the ground-truth mask:
    ``hit = 1[argmax_i s_i ∈ mask]``. When several points share the maximum the value is the share of them
    inside the mask (the expected hit under a random tie-break), so a constant explanation is not rewarded by
    index order.

    Args:
        scores: ``(B, N)`` per-point scores, higher = more important.
        mask: ``(B, N)`` bool ground truth.

    Returns:
        ``(B,)`` float64 in ``[0, 1]``; best 1 (hit), worst 0.

    Example:
        >>> pointing_game(torch.tensor([[0.1, 0.9, 0.3]]), torch.tensor([[False, True, False]]))
        tensor([1.], dtype=torch.float64)
    """
    s = as_scores(scores)
    m = as_mask(mask, s)
    top = s == s.amax(1, keepdim=True)
    return (top & m).sum(1).to(torch.float64) / top.sum(1).to(torch.float64)


def relevance_mass_accuracy(scores, mask) -> torch.Tensor:
    """Relevance mass accuracy (Arras, Osman, Samek, "CLEVR-XAI", Information Fusion 2022).

    ``RMA = Σ_{i ∈ mask} max(s_i, 0) / Σ_i max(s_i, 0)``: the share of the POSITIVE relevance that falls
    inside the ground truth (negative scores are ignored, as in the paper).

    Args:
        scores: ``(B, N)`` per-point scores.
        mask: ``(B, N)`` bool ground truth.

    Returns:
        ``(B,)`` float64 in ``[0, 1]``; best 1 (all positive relevance inside); NaN when no score is positive.

    Example:
        >>> relevance_mass_accuracy(torch.tensor([[3.0, 1.0, -2.0]]), torch.tensor([[True, False, True]]))
        tensor([0.7500], dtype=torch.float64)
    """
    s = as_scores(scores)
    m = as_mask(mask, s)
    pos = s.clamp_min(0.0)
    total = pos.sum(1)
    inside = (pos * m).sum(1)
    return torch.where(total > 0, inside / torch.where(total > 0, total, torch.ones_like(total)),
                       torch.full_like(total, float("nan")))


def relevance_rank_accuracy(scores, mask) -> torch.Tensor:
    """Relevance rank accuracy (Arras, Osman, Samek, "CLEVR-XAI", Information Fusion 2022).

    With ``K = |mask|``: ``RRA = |top_K(s) ∩ mask| / K`` — the share of the K highest-scored points that
    lie in the ground truth. Ties in the ranking are broken towards the lower point index (deterministic).

    Args:
        scores: ``(B, N)`` per-point scores.
        mask: ``(B, N)`` bool ground truth.

    Returns:
        ``(B,)`` float64 in ``[0, 1]``; best 1; NaN for an empty mask.

    Example:
        >>> s, m = torch.tensor([[0.9, 0.8, 0.1, 0.5]]), torch.tensor([[True, False, True, False]])
        >>> relevance_rank_accuracy(s, m)     # top-2 = points 0, 1; only point 0 is inside
        tensor([0.5000], dtype=torch.float64)
    """
    s = as_scores(scores)
    m = as_mask(mask, s)
    return _ranked_share(s, m, m.sum(1))


def topk_intersection(scores, mask, k: int) -> torch.Tensor:
    """Top-k intersection (Theiner, Müller-Budack, Ewerth, "Interpretable semantic photo geolocation", 2022;
    Quantus ``TopKIntersection``).

    ``TKI = |top_k(s) ∩ mask| / k`` with a fixed ``k`` (ties broken towards the lower point index).

    Args:
        scores: ``(B, N)`` per-point scores.
        mask: ``(B, N)`` bool ground truth.
        k: number of top points, ``1 <= k <= N``.

    Returns:
        ``(B,)`` float64 in ``[0, min(1, |mask| / k)]``; best 1 (reachable when ``k <= |mask|``).

    Example:
        >>> s, m = torch.tensor([[0.9, 0.8, 0.1, 0.5]]), torch.tensor([[True, False, True, False]])
        >>> topk_intersection(s, m, 1)
        tensor([1.], dtype=torch.float64)
    """
    s = as_scores(scores)
    m = as_mask(mask, s)
    k = check_int("k", k, minimum=1, maximum=s.shape[1])
    return _ranked_share(s, m, torch.full((s.shape[0],), k, dtype=torch.long, device=s.device))


def auroc(scores, mask) -> torch.Tensor:
    """Area under the ROC curve of the scores as a detector of the mask (Quantus ``AUC``; Fawcett 2006).

    Rank-based (Mann–Whitney): with ``P = |mask|``, ``Q = N - P`` and ``R_i`` the average rank of ``s_i``
    (ties averaged), ``AUROC = (Σ_{i ∈ mask} R_i - P (P + 1) / 2) / (P Q)``
    ``= P(s_in > s_out) + ½ P(s_in = s_out)``.

    Args:
        scores: ``(B, N)`` per-point scores.
        mask: ``(B, N)`` bool ground truth.

    Returns:
        ``(B,)`` float64 in ``[0, 1]``; best 1, 0.5 = chance, worst 0 (perfectly reversed);
        NaN when the mask is empty or full.

    Example:
        >>> auroc(torch.tensor([[0.9, 0.8, 0.1, 0.5]]), torch.tensor([[True, False, True, False]]))
        tensor([0.5000], dtype=torch.float64)
    """
    s = as_scores(scores)
    m = as_mask(mask, s)
    r = rankdata(s)
    p = m.sum(1).to(torch.float64)
    q = s.shape[1] - p
    u = (r * m).sum(1) - p * (p + 1) / 2.0
    den = p * q
    return torch.where(den > 0, u / torch.where(den > 0, den, torch.ones_like(den)),
                       torch.full_like(den, float("nan")))


def localisation_metrics(scores, mask, *, k: int | None = None) -> dict[str, torch.Tensor]:
    """All localisation metrics at once.

    Args:
        scores: ``(B, N)`` per-point scores.
        mask: ``(B, N)`` bool ground truth.
        k: ``k`` of :func:`topk_intersection`; default ``max(1, N // 10)``.

    Returns:
        dict name -> ``(B,)`` float64: ``pointing_game``, ``relevance_mass_accuracy``,
        ``relevance_rank_accuracy``, ``topk_intersection``, ``auroc``.
    """
    s = as_scores(scores)
    m = as_mask(mask, s)
    k = max(1, s.shape[1] // 10) if k is None else k
    return {
        "pointing_game": pointing_game(s, m),
        "relevance_mass_accuracy": relevance_mass_accuracy(s, m),
        "relevance_rank_accuracy": relevance_rank_accuracy(s, m),
        "topk_intersection": topk_intersection(s, m, k),
        "auroc": auroc(s, m),
    }


# --------------------------------------------------------------------------------------------- summaries
def bootstrap_mean_ci(values, *, level: float = 0.95, n_boot: int = 2000, seed: int = 0
                      ) -> tuple[float, float, float, int]:
    """Mean of a per-cloud sample and its percentile-bootstrap confidence interval.

    ``n_boot`` resamples of the finite values (with replacement, same size) are drawn with a generator seeded
    by ``seed``; the interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of their means
    (Efron's percentile interval). Used by the benchmark to say whether a method beats the random reference
    (the sample is the per-cloud difference) and how sure a sanity verdict is.

    Args:
        values: array-like ``(M,)``; NaN entries (undefined clouds) are left out.
        level: coverage in (0, 1) (default 0.95).
        n_boot: number of bootstrap resamples (>= 1).
        seed: seed of the resampling.

    Returns:
        ``(mean, low, high, n)`` with ``n`` the number of finite values; ``(nan, nan, nan, 0)`` without any and
        ``(mean, nan, nan, 1)`` for one (an interval needs two).
    """
    level = check_float("level", level, minimum=0.0, maximum=1.0, strict_min=True)
    if level >= 1.0:
        raise bad_argument("level", level, "a coverage strictly between 0 and 1, e.g. 0.95")
    n_boot = check_int("n_boot", n_boot, minimum=1)
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    n = int(v.size)
    if n == 0:
        return float("nan"), float("nan"), float("nan"), 0
    mean = float(v.mean())
    if n == 1:
        return mean, float("nan"), float("nan"), 1
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    low, high = np.quantile(means, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return mean, float(low), float(high), n
