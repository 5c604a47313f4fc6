"""Statistics of the reconstruction study: two-sample Kolmogorov–Smirnov tests between methods and the
Spearman correlation of per-class scores with training-set sizes (thin, validated wrappers over
``scipy.stats``)."""

from __future__ import annotations

from itertools import combinations
from typing import NamedTuple

import numpy as np
from scipy import stats as _stats

from pointlens.errors import bad_argument


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


def spearman(x, y) -> StatResult:
    """Spearman rank correlation of two paired samples.

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
