"""Localisation metrics: does an explanation put its relevance on the ground-truth points?

Every metric compares per-point scores ``(B, N)`` (higher = more important) with a ground-truth mask
``(B, N)`` bool (True = the points that really explain the class, e.g. ShapeParts' ``gt_mask``) and returns
one value per cloud, a ``(B,)`` float64 tensor. Names and definitions follow Quantus' "Localisation" category
(Hedström et al., JMLR 2023). Undefined cases (an empty or full mask where the metric needs both kinds of
points, no positive relevance) give NaN; average with ``torch.nanmean``.

The statistics this module once held (``rankdata``, ``pearson``, ``spearman``, ``topk_mask``,
``bootstrap_mean_ci``) live in :mod:`pointlens.stats`, the input checks ``as_scores`` / ``as_mask`` in
:mod:`pointlens.utils.validate`; importing them from here still works for one release with a
``DeprecationWarning``.

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

import importlib
import warnings

import numpy as np
import torch

# Private aliases: the public names of these live in their own modules (see _MOVED below).
from pointlens.stats import rankdata as _rankdata
from pointlens.stats import sort_rows
from pointlens.utils.validate import as_mask as _as_mask
from pointlens.utils.validate import as_scores as _as_scores
from pointlens.utils.validate import check_int

__all__ = [
    "pointing_game",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "topk_intersection",
    "auroc",
    "localisation_metrics",
]

# Names that moved in 0.2 -> their new module; importing them from here warns (kept for one release).
_MOVED = {"rankdata": "pointlens.stats", "pearson": "pointlens.stats", "spearman": "pointlens.stats",
          "topk_mask": "pointlens.stats", "bootstrap_mean_ci": "pointlens.stats",
          "as_scores": "pointlens.utils.validate", "as_mask": "pointlens.utils.validate"}


def __getattr__(name: str):
    if name in _MOVED:
        warnings.warn(f"pointlens.metrics.localisation.{name} moved to {_MOVED[name]}.{name}; the old path goes "
                      "in the next release", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _host(t: torch.Tensor) -> np.ndarray:
    """The checked tensor as a numpy array (no copy on the CPU): the cheap metrics compute in numpy, whose
    per-operation cost on ``(B, N)`` rows is a fraction of torch's."""
    return t.detach().cpu().numpy()


def _result(values: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """``(B,)`` float64 tensor on ``like``'s device."""
    out = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64))
    return out if like.device.type == "cpu" else out.to(like.device)


def _ranked_share(s: np.ndarray, m: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Share of each row's top-``k[b]`` points (stable descending order) inside the mask; NaN for k = 0.

    Without ranking every point: with ``v`` the ``k``-th largest score of the row, the top ``k`` of the stable
    descending order are every point scored above ``v`` plus the lowest-indexed points scored exactly ``v``
    (as many as are missing); only the sorted VALUES are needed (:func:`pointlens.stats.sort_rows`).
    """
    b, n = s.shape
    kk = np.clip(k, 1, n)
    v = sort_rows(s)[np.arange(b), n - kk][:, None]                  # (B, 1) the k-th largest score
    above = s > v
    tied = s == v
    missing = kk - np.count_nonzero(above, axis=1)                     # >= 1 tied points to take
    top = above | (tied & (np.cumsum(tied, axis=1) <= missing[:, None]))
    hits = np.count_nonzero(top & m, axis=1)
    return np.where(k > 0, hits / np.maximum(k, 1), np.nan)


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
    s = _as_scores(scores)
    m = _as_mask(mask, s)
    a = _host(s)
    top = a == a.max(axis=1, keepdims=True)
    return _result(np.count_nonzero(top & _host(m), axis=1) / np.count_nonzero(top, axis=1), s)


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
    s = _as_scores(scores)
    m = _as_mask(mask, s)
    pos = np.maximum(_host(s), 0.0)
    with np.errstate(invalid="ignore"):                 # 0 / 0 = NaN: no positive score
        return _result((pos * _host(m)).sum(1) / pos.sum(1), s)


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
    s = _as_scores(scores)
    m = _host(_as_mask(mask, s))
    return _result(_ranked_share(_host(s), m, np.count_nonzero(m, axis=1)), s)


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
    s = _as_scores(scores)
    m = _as_mask(mask, s)
    k = check_int("k", k, minimum=1, maximum=s.shape[1])
    return _result(_ranked_share(_host(s), _host(m), np.full(s.shape[0], k)), s)


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
    s = _as_scores(scores)
    m = _as_mask(mask, s)
    r = _rankdata(s)
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
    s = _as_scores(scores)
    m = _as_mask(mask, s)
    k = max(1, s.shape[1] // 10) if k is None else k
    return {
        "pointing_game": pointing_game(s, m),
        "relevance_mass_accuracy": relevance_mass_accuracy(s, m),
        "relevance_rank_accuracy": relevance_rank_accuracy(s, m),
        "topk_intersection": topk_intersection(s, m, k),
        "auroc": auroc(s, m),
    }
