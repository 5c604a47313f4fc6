"""Complexity metrics: is an explanation concentrated on few points (easy to read) or spread over many?

Both metrics read only the magnitudes ``|s|`` of per-point scores ``(B, N)`` and return one value per cloud
``(B,)`` float64. Names follow Quantus' "Complexity" category (Hedström et al., JMLR 2023).

=============================  ==============================  ===================  ====================
metric                         definition                      range                simplest
=============================  ==============================  ===================  ====================
:func:`sparseness`             Gini index of ``|s|``           [0, 1 - 1/N]         1 - 1/N (one-hot)
:func:`entropy_complexity`     entropy of ``|s| / Σ|s|``       [0, ln N]            0 (one-hot)
=============================  ==============================  ===================  ====================

A uniform explanation is the least sparse (Gini 0) and the most complex (entropy ln N).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from pointlens.stats import sort_rows
from pointlens.utils.validate import as_scores

__all__ = ["sparseness", "entropy_complexity"]


def sparseness(scores, *, normalise: bool = False) -> torch.Tensor:
    """Sparseness as the Gini index of the absolute scores (Chalasani, Chen, Chowdhury, Wu, Jha,
    "Concise explanations of neural networks using adversarial training", ICML 2020; Hurley & Rickard 2009).

    With ``a_(1) <= ... <= a_(N)`` the sorted ``|s_i|``::

        G = Σ_k (2k - N - 1) a_(k) / (N Σ_k a_(k))

    Args:
        scores: ``(B, N)`` per-point scores (only magnitudes count).
        normalise: divide by the maximum ``(N - 1) / N`` so a one-hot explanation scores exactly 1.

    Returns:
        ``(B,)`` float64 in ``[0, 1 - 1/N]`` (``[0, 1]`` when normalised); HIGHER = sparser = simpler;
        a one-hot explanation reaches the maximum, a uniform one 0. NaN when every score is 0 (undefined).
        For ``N = 1`` the value is 0 (and NaN when normalised).

    Example:
        >>> sparseness(torch.tensor([[0.0, 1.0, 2.0, 3.0]]))   # (-1 + 2 + 9) / (4 * 6)
        tensor([0.4167], dtype=torch.float64)
    """
    s = as_scores(scores)
    n = s.shape[1]
    a = sort_rows(np.abs(s.detach().cpu().numpy()))                 # numpy: a fraction of torch's cost per op
    w = np.arange(1 - n, n, 2, dtype=np.float64)                    # 2k - N - 1, k = 1..N
    with np.errstate(invalid="ignore"):
        g = torch.from_numpy((a @ w) / (n * a.sum(1))).to(s.device)  # NaN (0 / 0) exactly when every score is 0
    if normalise:
        g = g / ((n - 1) / n) if n > 1 else torch.full_like(g, float("nan"))
    return g


def entropy_complexity(scores, *, normalise: bool = False) -> torch.Tensor:
    """Complexity as the entropy of the fractional contributions (Bhatt, Weller, Moura, "Evaluating and
    aggregating feature-based model explanations", IJCAI 2020; Quantus ``Complexity``).

    ``p_i = |s_i| / Σ_j |s_j|``,  ``H = -Σ_i p_i ln p_i`` (natural log, ``0 ln 0 = 0``).

    Args:
        scores: ``(B, N)`` per-point scores (only magnitudes count).
        normalise: divide by ``ln N`` so the range is ``[0, 1]``.

    Returns:
        ``(B,)`` float64 in ``[0, ln N]`` (``[0, 1]`` when normalised); LOWER = simpler; a one-hot explanation
        gives 0, a uniform one ``ln N``. NaN when every score is 0 (undefined), and when normalising with
        ``N = 1``.

    Example:
        >>> entropy_complexity(torch.tensor([[1.0, 1.0, 0.0, 0.0]]))   # ln 2
        tensor([0.6931], dtype=torch.float64)
    """
    s = as_scores(scores)
    n = s.shape[1]
    a = np.abs(s.detach().cpu().numpy())                            # numpy: a fraction of torch's cost per op
    with np.errstate(invalid="ignore"):
        p = a / a.sum(1, keepdims=True)                             # NaN rows (0 / 0) when every score is 0
        h = np.maximum(-(p * np.log(np.where(p > 0, p, 1.0))).sum(1), 0.0)     # 0 ln 0 = 0; NaN stays NaN
    h = torch.from_numpy(h).to(s.device)
    if normalise:
        h = h / math.log(n) if n > 1 else torch.full_like(h, float("nan"))
    return h
