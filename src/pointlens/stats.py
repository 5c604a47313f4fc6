"""pointlens.stats: the statistics every package shares, defined once.

* Batched correlations over rows, in torch so they run on the model's device and keep float64 exactness:
  :func:`rankdata`, :func:`pearson`, :func:`spearman` (per-row values equal to ``scipy.stats.rankdata`` /
  ``pearsonr`` / ``spearmanr``, checked in the tests) and :func:`topk_mask`.
* Summaries of a per-item sample: :func:`bootstrap_mean_ci` (percentile bootstrap of the mean).
* Tests with p-values over 1-D samples, thin validated wrappers over ``scipy.stats``: :func:`ks_test`,
  :func:`pairwise_ks`, :func:`spearman_test` (returning :class:`StatResult`).

Why torch and not scipy for the batched ones: the explanation metrics call them on ``(B, N)`` tensors that
live on the model's device, thousands of rows at a time; ``scipy.stats`` loops in Python over rows and would
force a copy to the CPU. Where only a 1-D sample and a p-value are wanted, scipy is used directly.
"""

from __future__ import annotations

from itertools import combinations
from typing import NamedTuple

import numpy as np
import torch
from scipy import stats as _stats

from pointlens.errors import bad_argument
from pointlens.utils.validate import as_scores, check_float, check_int

__all__ = [
    "rankdata",
    "pearson",
    "spearman",
    "topk_mask",
    "sort_rows",
    "bootstrap_mean_ci",
    "StatResult",
    "ks_test",
    "pairwise_ks",
    "spearman_test",
]


# --------------------------------------------------------------------------------------------- batched rows
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


def sort_rows(x: np.ndarray) -> np.ndarray:
    """The values of every row sorted ascending: the numbers ``np.sort(x, axis=1)`` gives, faster.

    Sorted VALUES do not depend on how ties are ordered, so any sort gives them. When every value is a float32
    number (float32 attributions held as float64, the common case) the rows are sorted as float32, which orders
    the same values identically and is 5x faster with numpy's vectorised sort; non-negative float32 values are
    sorted by their bit patterns as int32 (IEEE order = integer order for x >= 0), faster still.

    Args:
        x: ``(B, N)`` float array without NaN.

    Returns:
        ``(B, N)`` array of ``x``'s dtype, each row sorted ascending.
    """
    x = np.asarray(x)
    if x.dtype not in (np.float64, np.float32) or x.size == 0:
        return np.sort(x, axis=1)
    narrow = x if x.dtype == np.float32 else x.astype(np.float32)
    if narrow is not x and not np.array_equal(narrow, x):        # some value is not a float32 number
        return np.sort(x, axis=1)
    if not np.signbit(narrow).any():               # x >= 0 and no -0.0: bit order = value order
        out = np.sort(narrow.view(np.int32), axis=1).view(np.float32)
    else:
        out = np.sort(narrow, axis=1)
    return out.astype(x.dtype, copy=False)


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


# --------------------------------------------------------------------------------------------- tests with p-values
class StatResult(NamedTuple):
    """A test statistic and its p-value (``nan`` when the test is undefined, e.g. constant input)."""

    statistic: float
    pvalue: float


def _sample(x, name: str, minimum: int = 1) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).reshape(-1) if np.ndim(x) <= 1 else None
    if a is None:
        raise bad_argument(name, f"an array of shape {np.shape(x)}", "a 1-D sample")
    if len(a) < minimum:
        raise bad_argument(name, f"{len(a)} value(s)", f"at least {minimum}")
    if not np.isfinite(a).all():
        raise bad_argument(name, "NaN or infinite values", "finite numbers")
    return a


def ks_test(a, b) -> StatResult:
    """Two-sample Kolmogorov–Smirnov test (two-sided, ``scipy.stats.ks_2samp`` with its default
    exact/asymptotic choice).

    Args:
        a: ``(n,)`` sample.
        b: ``(m,)`` sample.

    Returns:
        :class:`StatResult` ``(statistic = sup |F_a - F_b|, pvalue)``.
    """
    r = _stats.ks_2samp(_sample(a, "a"), _sample(b, "b"))
    return StatResult(float(r.statistic), float(r.pvalue))


def pairwise_ks(samples: dict) -> list[dict]:
    """KS tests between every pair of named samples.

    Args:
        samples: ``{name: (n_i,) sample}`` (e.g. per-class mean scores of each method).

    Returns:
        one dict per unordered pair, in insertion order: ``{"a", "b", "statistic", "pvalue"}``.
    """
    if not isinstance(samples, dict) or len(samples) < 2:
        raise bad_argument(
            "samples",
            type(samples).__name__ if not isinstance(samples, dict) else len(samples),
            "a dict of at least two named samples",
        )
    out = []
    for (na, a), (nb, b) in combinations(samples.items(), 2):
        t = ks_test(a, b)
        out.append({"a": na, "b": nb, "statistic": t.statistic, "pvalue": t.pvalue})
    return out


def spearman_test(x, y) -> StatResult:
    """Spearman rank correlation of two paired 1-D samples with its p-value (``scipy.stats.spearmanr``);
    for batched rows without p-values use :func:`spearman`.

    Args:
        x: ``(n,)`` values (e.g. training-set size per class).
        y: ``(n,)`` values (e.g. mean score per class).

    Returns:
        :class:`StatResult` ``(rho, pvalue)``; both ``nan`` when fewer than 3 pairs or either sample is
        constant (the correlation is undefined).
    """
    xa, ya = _sample(x, "x"), _sample(y, "y")
    if len(xa) != len(ya):
        raise bad_argument("x/y", f"{len(xa)} and {len(ya)} values", "paired samples of the same length")
    if len(xa) < 3 or np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return StatResult(float("nan"), float("nan"))
    r = _stats.spearmanr(xa, ya)
    return StatResult(float(r.statistic), float(r.pvalue))
