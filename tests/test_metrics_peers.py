"""Where pointlens' explanation metrics coincide with Quantus 0.6 and where they differ, pinned WITHOUT importing
Quantus (``make test`` does not install the ``peers`` extra): each ``_q_*`` function below is Quantus 0.6.0's
batch formula, copied from its source (``quantus/metrics/...::evaluate_batch``) as numpy. The measured agreement
with the real library is ``benchmarks/bench_peers.py``; the differences are explained in
docs/metrics_explanations.md ("pointlens vs Quantus")."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from pointlens.metrics import (
    entropy_complexity,
    model_randomisation,
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    sparseness,
)
from pointlens.metrics.sanity import randomise_layers_


# ------------------------------------------------------------------ Quantus 0.6.0 formulas (numpy, verbatim logic)
def _q_rma(a, s):                      # RelevanceMassAccuracy.evaluate_batch
    return (a * s).sum(-1) / a.sum(-1)


def _q_rra(a, s):                      # RelevanceRankAccuracy.evaluate_batch
    b, n = a.shape
    k = s.sum(-1)
    order = np.argsort(-a, axis=-1)
    s_mask = np.array([[True] * kk + [False] * (n - kk) for kk in k])
    return (s[np.arange(b)[:, None], order] * s_mask).sum(-1) / s_mask.sum(-1)


def _q_pointing(a, s):                 # PointingGame.evaluate_batch (weighted=False)
    return np.any(s & (a == a.max(-1, keepdims=True)), axis=-1).astype(float)


def _q_normalise_by_max(a):            # functions.normalise_func.normalise_by_max, default axes = ALL (batch too)
    return a / np.abs(a).max()


def _q_sparseness(a):                  # Sparseness (abs=True, normalise=True) -> evaluate_batch
    a = np.abs(_q_normalise_by_max(a)) + 1e-7
    n = a.shape[1]
    a = np.sort(a, axis=-1)
    k = np.arange(1, n + 1)[None, :]
    return ((2 * k - n - 1) * a).sum(-1) / (n * a.sum(-1))


def _q_complexity(a):                  # Complexity (abs=True, normalise=True) -> evaluate_batch
    a = np.abs(_q_normalise_by_max(a))
    a = a / np.abs(a).sum(-1, keepdims=True)
    return -(a * np.log(a + 1e-12)).sum(-1)


def _data(b=6, n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(b, n, generator=g, dtype=torch.float64)
    mask = torch.rand(b, n, generator=g) < 0.25
    mask[:, 0] = True
    return scores, mask


# ------------------------------------------------------------------ localisation
def test_relevance_mass_equals_quantus_on_the_positive_part_and_differs_on_negative_scores():
    s, m = _data()
    ours = relevance_mass_accuracy(s, m).numpy()
    q_pos = _q_rma(s.clamp_min(0).numpy(), m.numpy())
    np.testing.assert_allclose(ours, q_pos, rtol=0, atol=1e-12)
    # Quantus divides by the SIGNED total: with negative scores the two are different numbers (not a ratio in
    # [0, 1] any more for Quantus)
    q_raw = _q_rma(s.numpy(), m.numpy())
    assert np.abs(ours - q_raw).max() > 0.05
    # non-negative scores: identical
    np.testing.assert_allclose(relevance_mass_accuracy(s.abs(), m).numpy(), _q_rma(s.abs().numpy(), m.numpy()),
                               rtol=0, atol=1e-12)


def test_relevance_rank_equals_quantus_without_ties_and_with_stable_rank_scores():
    s, m = _data()
    np.testing.assert_allclose(relevance_rank_accuracy(s, m).numpy(), _q_rra(s.numpy(), m.numpy()), atol=1e-12)
    # ties: pointlens breaks them towards the lower point index (stable sort); Quantus' argsort (quicksort) does
    # not promise an order. Handing Quantus distinct scores with pointlens' order reproduces pointlens exactly.
    tied = torch.round(s)
    order = torch.sort(tied, dim=1, descending=True, stable=True).indices
    n = s.shape[1]
    distinct = torch.empty_like(tied).scatter_(1, order, torch.arange(n, 0, -1, dtype=torch.float64).expand_as(tied)
                                               .contiguous())
    np.testing.assert_allclose(relevance_rank_accuracy(tied, m).numpy(), _q_rra(distinct.numpy(), m.numpy()),
                               atol=1e-12)


def test_pointing_game_equals_quantus_unless_the_maximum_is_tied():
    s, m = _data()
    np.testing.assert_array_equal(pointing_game(s, m).numpy(), _q_pointing(s.numpy(), m.numpy()))
    # two tied maxima, one inside the mask: Quantus counts a hit (1), pointlens the expected hit (1/2)
    a = torch.tensor([[1.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    mk = torch.tensor([[True, False, False, False]])
    assert float(pointing_game(a, mk)) == 0.5
    assert float(_q_pointing(a.numpy(), mk.numpy())[0]) == 1.0


# ------------------------------------------------------------------ complexity
def test_sparseness_differs_from_quantus_only_by_its_epsilon():
    s, _ = _data()
    a = s.numpy()
    q = _q_sparseness(a)
    # exact: pointlens' Gini of Quantus' preprocessed magnitudes |a| / max|a| + 1e-7
    np.testing.assert_allclose(sparseness(torch.as_tensor(np.abs(a) / np.abs(a).max() + 1e-7)).numpy(), q,
                               rtol=0, atol=1e-13)
    # closed form: adding eps to every magnitude leaves the numerator and multiplies G by S / (S + N eps)
    mags = np.abs(a) / np.abs(a).max()
    big_s, n = mags.sum(1), a.shape[1]
    np.testing.assert_allclose(sparseness(s).numpy() * big_s / (big_s + n * 1e-7), q, rtol=0, atol=1e-13)


def test_sparseness_epsilon_matters_for_a_very_sparse_explanation():
    a = torch.zeros(1, 1024, dtype=torch.float64)
    a[0, 0] = 1.0                                                    # one-hot: Gini (N - 1) / N
    ours = float(sparseness(a))
    assert ours == pytest.approx(1023 / 1024, abs=1e-15)
    assert ours - float(_q_sparseness(a.numpy())[0]) > 1e-5          # Quantus: S = 1 + 1024e-7, G shrinks by 1e-4


def test_entropy_complexity_equals_quantus():
    s, _ = _data()
    s[0, :10] = 0.0                                                  # zeros: 0 ln 0 = 0 vs Quantus' log(0 + 1e-12)
    np.testing.assert_allclose(entropy_complexity(s).numpy(), _q_complexity(s.numpy()), rtol=0, atol=1e-9)


# ------------------------------------------------------------------ randomisation
class _Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 8, 1)
        self.bn = nn.BatchNorm1d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x.transpose(1, 2)))).max(-1).values)


def test_one_module_reinitialisation_is_quantus_mprt_reinitialisation():
    # Quantus' MPRT (pytorch_model.get_random_layer_generator): torch.manual_seed(seed + 1); module.reset_parameters()
    torch.manual_seed(3)
    model = _Toy()
    for name in ("conv", "bn", "fc"):
        ours = randomise_layers_(copy.deepcopy(model), [name], seed=42 + 1)
        theirs = copy.deepcopy(model)
        torch.manual_seed(42 + 1)
        dict(theirs.named_modules())[name].reset_parameters()
        for (k, v), (_, w) in zip(ours.state_dict().items(), theirs.state_dict().items()):
            assert torch.equal(v, w), (name, k)


def test_independent_mprt_one_module_matches_a_quantus_style_reference():
    torch.manual_seed(0)
    model = _Toy().eval()
    pts = torch.randn(3, 32, 3)
    target = torch.tensor([0, 1, 2])

    def explain(m, x, t):
        x = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(m(x).gather(1, t[:, None]).sum(), x)
        return g.norm(dim=-1)

    from scipy import stats

    for name in ("conv", "fc"):
        res = model_randomisation(model, pts, explain, target, mode="independent", layers=[name], seed=42)
        ref = copy.deepcopy(model)
        torch.manual_seed(42 + 1)
        dict(ref.named_modules())[name].reset_parameters()
        a, b = explain(model, pts, target).detach().numpy(), explain(ref, pts, target).detach().numpy()
        expected = [stats.spearmanr(np.abs(a[i]), np.abs(b[i])).statistic for i in range(3)]
        np.testing.assert_allclose(res.steps[0].spearman_abs.numpy(), expected, atol=1e-12)


def test_random_logit_class_mapping_equals_quantus_filtered_classes():
    # Quantus: y_filtered_classes = every class but y, then [draw]; pointlens: draw + (draw >= y)
    c = 7
    for y in range(c):
        for draw in range(c - 1):
            filtered = [k for k in range(c) if k != y]
            assert filtered[draw] == draw + int(draw >= y)
