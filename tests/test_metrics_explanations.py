"""Statistics, localisation and complexity metrics of explanations: hand-computed values, scipy references,
best/worst cases and invariances."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from pointlens.errors import InvalidArgumentError
from pointlens.metrics.complexity import entropy_complexity, sparseness
from pointlens.metrics.localisation import (
    auroc,
    localisation_metrics,
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    topk_intersection,
)
from pointlens.stats import bootstrap_mean_ci, pearson, rankdata, spearman, topk_mask


# --------------------------------------------------------------------------------------------- statistics
def _tied_data(seed=0, b=5, n=40):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 6, size=(b, n)).astype(np.float64)        # many ties
    y = x * 0.5 + rng.integers(0, 4, size=(b, n))
    return x, y


def test_bootstrap_interval_closed_forms_and_edge_cases():
    # a constant sample: every resample has the same mean
    assert bootstrap_mean_ci([0.3] * 7) == (pytest.approx(0.3), pytest.approx(0.3), pytest.approx(0.3), 7)
    # NaN clouds are left out; one value has no interval; none has no mean
    mean, low, high, n = bootstrap_mean_ci([1.0, float("nan"), 3.0])
    assert (mean, n) == (2.0, 2) and 1.0 <= low <= high <= 3.0
    one = bootstrap_mean_ci([float("nan"), 5.0])
    assert one[0] == 5.0 and math.isnan(one[1]) and math.isnan(one[2]) and one[3] == 1
    assert bootstrap_mean_ci([float("nan")])[3] == 0 and math.isnan(bootstrap_mean_ci([])[0])
    # two values a < b: the resample means are a, (a+b)/2, b with probabilities 1/4, 1/2, 1/4, so the 95 %
    # interval is [a, b] and the 40 % interval is the midpoint
    assert bootstrap_mean_ci([1.0, 3.0], n_boot=4000)[1:3] == (1.0, 3.0)
    assert bootstrap_mean_ci([1.0, 3.0], level=0.4, n_boot=4000)[1:3] == (2.0, 2.0)
    # a large normal sample: the percentile interval approaches mean +- 1.96 s / sqrt(n)
    v = np.random.default_rng(0).normal(2.0, 3.0, 400)
    mean, low, high, n = bootstrap_mean_ci(v, n_boot=4000, seed=1)
    half = 1.959964 * v.std(ddof=1) / math.sqrt(n)
    assert mean == pytest.approx(v.mean())
    assert (high - low) / 2 == pytest.approx(half, rel=0.08)
    assert (low + high) / 2 == pytest.approx(mean, abs=0.1 * half)
    # deterministic for a seed; a wider level gives a wider interval
    assert bootstrap_mean_ci(v, seed=3) == bootstrap_mean_ci(v, seed=3)
    narrow = bootstrap_mean_ci(v, level=0.5, seed=3)
    assert low < narrow[1] < narrow[2] < high
    for bad in (dict(level=1.0), dict(level=0.0), dict(n_boot=0)):
        with pytest.raises(InvalidArgumentError):
            bootstrap_mean_ci(v, **bad)


def test_rankdata_matches_scipy_with_ties():
    x, _ = _tied_data()
    ours = rankdata(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, stats.rankdata(x, method="average", axis=1), rtol=0, atol=1e-12)


def test_pearson_and_spearman_match_scipy():
    x, y = _tied_data(1)
    r = pearson(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    rho = spearman(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    for i in range(x.shape[0]):
        assert r[i] == pytest.approx(stats.pearsonr(x[i], y[i])[0], abs=1e-12)
        assert rho[i] == pytest.approx(stats.spearmanr(x[i], y[i])[0], abs=1e-12)


def test_correlations_hand_values_and_constant_rows():
    a = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0]])
    b = torch.tensor([[10.0, 20.0, 40.0, 1000.0], [1.0, 2.0, 3.0, 4.0]])
    rho = spearman(a, b)
    assert rho[0].item() == pytest.approx(1.0)              # monotone, non-linear
    assert math.isnan(rho[1].item())                          # constant row: undefined
    assert pearson(a[:1], -a[:1]).item() == pytest.approx(-1.0)
    # d = ranks differ by [0, 1, -1]: rho = 1 - 6 * 2 / (3 * 8) = 0.5
    rho = spearman(torch.tensor([[1.0, 3.0, 2.0]]), torch.tensor([[1.0, 2.0, 3.0]]))
    assert rho.item() == pytest.approx(0.5)


def test_auroc_matches_mann_whitney_with_ties():
    x, _ = _tied_data(2)
    rng = np.random.default_rng(3)
    m = rng.random(x.shape) < 0.3
    ours = auroc(torch.from_numpy(x), torch.from_numpy(m)).numpy()
    for i in range(x.shape[0]):
        u = stats.mannwhitneyu(x[i][m[i]], x[i][~m[i]]).statistic
        assert ours[i] == pytest.approx(u / (m[i].sum() * (~m[i]).sum()), abs=1e-12)


def test_topk_mask_is_deterministic_on_ties():
    s = torch.tensor([[1.0, 3.0, 3.0, 3.0, 0.0]])
    assert topk_mask(s, 2).tolist() == [[False, True, True, False, False]]
    assert topk_mask(s, 0).sum() == 0


# --------------------------------------------------------------------------------------------- localisation
S = torch.tensor([[0.9, 0.8, 0.1, 0.5]])
M = torch.tensor([[True, False, True, False]])


def test_localisation_hand_values():
    assert pointing_game(S, M).item() == 1.0
    assert pointing_game(torch.tensor([[0.1, 0.9, 0.3, 0.2]]), M).item() == 0.0
    # positive relevance only: inside 3 + 0, total 3 + 1 -> 0.75
    assert relevance_mass_accuracy(torch.tensor([[3.0, 1.0, -2.0, 0.0]]), M).item() == pytest.approx(0.75)
    # K = 2: top-2 = points 0 and 1, one of them inside
    assert relevance_rank_accuracy(S, M).item() == pytest.approx(0.5)
    assert topk_intersection(S, M, 1).item() == 1.0
    assert topk_intersection(S, M, 3).item() == pytest.approx(1 / 3)
    # inside {0.9, 0.1} vs outside {0.8, 0.5}: 2 of 4 pairs ordered right
    assert auroc(S, M).item() == pytest.approx(0.5)


def test_pointing_game_ties_give_expected_hit():
    s = torch.tensor([[1.0, 1.0, 0.0, 1.0]])                      # three-way tie at the top, one inside
    assert pointing_game(s, M).item() == pytest.approx(1 / 3)
    assert pointing_game(torch.ones(1, 4), M).item() == pytest.approx(0.5)


def test_localisation_perfect_is_best_and_reversed_is_worst():
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(3, 50, generator=g) < 0.3
    best = localisation_metrics(mask.float(), mask, k=5)
    worst = localisation_metrics((~mask).float(), mask, k=5)
    for name in best:
        assert torch.all(best[name] == 1.0), name
        assert torch.all(worst[name] == 0.0), name
    noisy = mask.float() + 0.01 * torch.rand(3, 50, generator=g)  # still a perfect ranking
    assert torch.all(auroc(noisy, mask) == 1.0)


def test_localisation_is_invariant_to_monotone_rescaling_and_permutation():
    g = torch.Generator().manual_seed(1)
    s = torch.rand(2, 30, generator=g)
    mask = torch.rand(2, 30, generator=g) < 0.4
    perm = torch.randperm(30, generator=g)
    for fn in (relevance_rank_accuracy, auroc, pointing_game):
        torch.testing.assert_close(fn(s, mask), fn(3 * s + 1, mask))
        torch.testing.assert_close(fn(s, mask), fn(s[:, perm], mask[:, perm]))


def test_localisation_undefined_cases_are_nan():
    empty = torch.zeros(1, 4, dtype=torch.bool)
    assert math.isnan(auroc(S, empty).item())
    assert math.isnan(auroc(S, ~empty).item())
    assert math.isnan(relevance_rank_accuracy(S, empty).item())
    assert math.isnan(relevance_mass_accuracy(-S, M).item())


def test_localisation_rejects_bad_input():
    with pytest.raises(InvalidArgumentError, match="mask"):
        auroc(S, torch.ones(1, 5, dtype=torch.bool))
    with pytest.raises(InvalidArgumentError, match="mask"):
        auroc(S, torch.tensor([[0.0, 0.5, 1.0, 1.0]]))
    with pytest.raises(InvalidArgumentError, match="scores"):
        auroc(torch.tensor([[0.1, float("nan"), 0.2, 0.3]]), M)
    with pytest.raises(InvalidArgumentError, match="k"):
        topk_intersection(S, M, 5)


# --------------------------------------------------------------------------------------------- complexity
def test_complexity_hand_values():
    a = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    # Gini: (-3*0 - 1*1 + 1*2 + 3*3) / (4 * 6) = 10 / 24
    assert sparseness(a).item() == pytest.approx(10 / 24)
    p = np.array([1, 2, 3]) / 6
    assert entropy_complexity(a).item() == pytest.approx(-(p * np.log(p)).sum())


def test_sparseness_equals_mean_absolute_difference_gini():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(4, 25, generator=g, dtype=torch.float64)
    x = a.abs()
    ref = (x.unsqueeze(2) - x.unsqueeze(1)).abs().sum((1, 2)) / (2 * 25 * x.sum(1))
    torch.testing.assert_close(sparseness(a), ref)


def test_complexity_extremes_and_invariances():
    n = 16
    one_hot = torch.zeros(2, n)
    one_hot[0, 3] = 5.0
    one_hot[1, 0] = -0.2                                          # sign does not matter
    uniform = torch.full((1, n), 0.7)
    torch.testing.assert_close(sparseness(one_hot), torch.full((2,), (n - 1) / n, dtype=torch.float64))
    torch.testing.assert_close(sparseness(one_hot, normalise=True), torch.ones(2, dtype=torch.float64))
    assert entropy_complexity(one_hot).abs().max().item() == 0.0
    assert sparseness(uniform).item() == pytest.approx(0.0, abs=1e-12)
    assert entropy_complexity(uniform).item() == pytest.approx(math.log(n))
    assert entropy_complexity(uniform, normalise=True).item() == pytest.approx(1.0)
    g = torch.Generator().manual_seed(3)
    s = torch.randn(3, n, generator=g)
    for fn in (sparseness, entropy_complexity):
        torch.testing.assert_close(fn(s), fn(-4.0 * s))           # scale and sign invariant
        between = fn(s)
        assert torch.all((between >= 0) & (between <= max(fn(one_hot).max(), fn(uniform).max())))
    assert math.isnan(sparseness(torch.zeros(1, 4)).item())
    assert math.isnan(entropy_complexity(torch.zeros(1, 4)).item())


def test_moved_statistics_still_import_from_old_paths_with_a_warning():
    import pointlens.metrics.localisation as loc
    import pointlens.recon as recon
    import pointlens.recon.stats as recon_stats
    from pointlens import stats
    from pointlens.utils import validate

    for name, home in [("pearson", stats), ("bootstrap_mean_ci", stats), ("as_scores", validate)]:
        with pytest.warns(DeprecationWarning, match=f"moved to {home.__name__}.{name}"):
            assert getattr(loc, name) is getattr(home, name)
    with pytest.warns(DeprecationWarning, match="spearman_test"):
        assert recon_stats.spearman is stats.spearman_test
    with pytest.warns(DeprecationWarning, match="spearman_test"):
        assert recon.spearman is stats.spearman_test
    with pytest.raises(AttributeError):
        loc.not_a_name  # noqa: B018
