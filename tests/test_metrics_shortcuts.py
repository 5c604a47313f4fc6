"""The shortcuts that make the metrics fast give the numbers of the plain computations they replace."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pointlens.attribution import create_attribution
from pointlens.errors import InvalidArgumentError
from pointlens.metrics import (
    entropy_complexity,
    faithfulness_correlation,
    max_sensitivity,
    model_randomisation,
    random_logit_test,
    relevance_rank_accuracy,
    sparseness,
    topk_intersection,
)
from pointlens.models import create_model
from pointlens.stats import sort_rows
from pointlens.utils.validate import all_finite, as_points, as_scores


# ------------------------------------------------------------------ validation
def test_all_finite_is_exact_including_sums_that_overflow():
    assert all_finite(torch.zeros(0))
    assert all_finite(torch.tensor([1.0, -2.0]))
    for bad in (float("nan"), float("inf"), -float("inf")):
        assert not all_finite(torch.tensor([[1.0, bad], [0.0, 0.0]]))
        assert not all_finite(torch.tensor([1.0, bad], dtype=torch.float64))
    assert not all_finite(torch.tensor([float("inf"), -float("inf")]))        # sum NaN, still caught
    big = torch.tensor([1e308, 1e308], dtype=torch.float64)                    # finite values, sum overflows
    assert math.isinf(float(big.sum())) and all_finite(big)
    assert all_finite(torch.tensor([3e38, 3e38], dtype=torch.float32))
    assert all_finite(torch.tensor([1, 2, 3]))                                 # integers are finite
    assert all_finite(torch.tensor([1 + 2j]))
    assert not all_finite(torch.tensor([complex(1, float("nan"))]))
    # the checks that use it still refuse non-finite input and accept huge finite values
    with pytest.raises(InvalidArgumentError, match="scores"):
        as_scores(torch.tensor([[0.0, float("inf")]]))
    with pytest.raises(InvalidArgumentError, match="points"):
        as_points(torch.tensor([[[0.0, 0.0, float("nan")]]]))
    assert as_scores(big).shape == (1, 2)


# ------------------------------------------------------------------ sorting
@pytest.mark.parametrize("kind", ["float32 values", "float64 values", "negative", "signed zeros", "float32",
                                  "ties", "int"])
def test_sort_rows_equals_numpy_sort(kind):
    g = np.random.default_rng(0)
    x = {"float32 values": np.abs(g.standard_normal((5, 300))).astype(np.float32).astype(np.float64),
         "float64 values": np.abs(g.standard_normal((5, 300))),
         "negative": g.standard_normal((5, 300)).astype(np.float32).astype(np.float64),
         "signed zeros": np.array([[0.0, -0.0, 1.0, -0.0, 2.0], [-0.0, 3.0, 0.0, 0.0, 1e-45]]),
         "float32": g.standard_normal((5, 300)).astype(np.float32),
         "ties": np.round(g.standard_normal((5, 300))).astype(np.float64),
         "int": g.integers(-5, 5, (5, 300))}[kind]
    out = sort_rows(x)
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(out, np.sort(x, axis=1))
    # the float32 shortcut must not be taken for float64 values float32 cannot hold
    y = np.array([[1.0 + 2.0**-40, 1.0, 1.0 + 2.0**-41]])
    np.testing.assert_array_equal(sort_rows(y), np.sort(y, axis=1))


# ------------------------------------------------------------------ localisation / complexity
def _stable_topk_share(s: torch.Tensor, m: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The plain definition: rank every point by a stable descending sort, count the top k inside the mask."""
    order = torch.sort(s, dim=1, descending=True, stable=True).indices
    inside = torch.gather(m, 1, order).to(torch.float64)
    pos = torch.arange(s.shape[1]).unsqueeze(0)
    hits = (inside * (pos < k.unsqueeze(1))).sum(1)
    return torch.where(k > 0, hits / k.clamp_min(1).to(torch.float64), torch.full_like(hits, float("nan")))


@pytest.mark.parametrize("levels", [2, 5, 1000])
def test_rank_accuracy_threshold_shortcut_equals_a_stable_sort_on_ties(levels):
    g = torch.Generator().manual_seed(levels)
    s = torch.randint(0, levels, (40, 60), generator=g).to(torch.float64) / 7.0       # heavy ties when few levels
    m = torch.rand(40, 60, generator=g) < torch.rand(40, 1, generator=g)
    m[0] = False                                                                       # K = 0 -> NaN
    m[1] = True                                                                        # K = N
    got = relevance_rank_accuracy(s, m)
    ref = _stable_topk_share(s, m, m.sum(1))
    torch.testing.assert_close(got, ref, rtol=0, atol=0, equal_nan=True)
    assert math.isnan(float(got[0])) and float(got[1]) == 1.0
    for k in (1, 7, 30, 60):
        torch.testing.assert_close(topk_intersection(s, m, k), _stable_topk_share(s, m, torch.full((40,), k)),
                                   rtol=0, atol=0)


def test_complexity_metrics_equal_their_plain_torch_formulas():
    g = torch.Generator().manual_seed(4)
    s = torch.randn(6, 200, generator=g, dtype=torch.float64)
    s[0, :150] = 0.0                                               # many exact zeros, as point-shift gives
    s[1] = 0.0                                                     # all zero: NaN
    a = torch.sort(s.abs(), dim=1).values
    k = torch.arange(1, 201, dtype=torch.float64)
    gini = ((2 * k - 201) * a).sum(1) / (200 * a.sum(1))
    torch.testing.assert_close(sparseness(s), gini, rtol=0, atol=1e-15, equal_nan=True)
    p = s.abs() / s.abs().sum(1, keepdim=True)
    h = -torch.where(p > 0, p * torch.log(p), torch.zeros_like(p)).sum(1)
    h = torch.where(s.abs().sum(1) > 0, h, torch.full_like(h, float("nan")))
    torch.testing.assert_close(entropy_complexity(s), h, rtol=0, atol=1e-13, equal_nan=True)
    assert math.isnan(float(sparseness(s)[1])) and math.isnan(float(entropy_complexity(s)[1]))


# ------------------------------------------------------------------ model-bound metrics
@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return create_model("pointnet", 5, channels=(16, 32, 64), head=(16,)).eval()


@pytest.fixture(scope="module")
def clouds():
    return torch.randn(3, 40, 3, generator=torch.Generator().manual_seed(1))


def _explain(model, pts, t):
    return create_attribution("pointshift", model).attribute(pts, t)


@pytest.mark.parametrize("target", [None, [0, 3, 1]])
def test_precomputed_scores_give_the_same_sanity_and_robustness_results(net, clouds, target):
    t = net(clouds).argmax(1) if target is None else torch.tensor(target)
    given = _explain(net, clouds, t)
    a = random_logit_test(net, clouds, _explain, target, seed=3)
    b = random_logit_test(net, clouds, _explain, target, seed=3, scores=given)
    for key in ("target", "other", "scores_target", "scores_other", "spearman", "spearman_abs",
                "topk_intersection"):
        torch.testing.assert_close(getattr(b, key), getattr(a, key), rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(max_sensitivity(net, clouds, _explain, target, radius=0.05, n_samples=3, scores=given),
                               max_sensitivity(net, clouds, _explain, target, radius=0.05, n_samples=3),
                               rtol=0, atol=0)
    ra = model_randomisation(net, clouds, _explain, target, seed=2)
    rb = model_randomisation(net, clouds, _explain, target, seed=2, scores=given)
    torch.testing.assert_close(rb.original, ra.original, rtol=0, atol=0)
    assert rb.table() == ra.table() and len(ra.steps) >= 3
    with pytest.raises(InvalidArgumentError, match="scores"):
        random_logit_test(net, clouds, _explain, target, scores=given[:, :-1])


def test_a_given_target_is_checked_against_the_class_count_of_one_cloud(net, clouds):
    with pytest.raises(InvalidArgumentError, match="target"):
        random_logit_test(net, clouds, _explain, [0, 5, 1])
    with pytest.raises(InvalidArgumentError, match="target"):
        max_sensitivity(net, clouds, _explain, 7)


@pytest.mark.parametrize("removal", ["shift", "delete"])
@pytest.mark.parametrize("output", ["logit", "probability"])
def test_faithfulness_correlation_max_pool_shortcut_equals_classifying_every_cloud(net, clouds, removal, output):
    s = torch.randn(3, 40, generator=torch.Generator().manual_seed(2))
    kw = dict(n_subsets=12, subset_size=6, removal=removal, output=output, seed=4, batch_size=7)
    fast = faithfulness_correlation(net, clouds, s, **kw, fast=True)
    slow = faithfulness_correlation(net, clouds, s, **kw, fast=False)
    torch.testing.assert_close(fast.subsets, slow.subsets, rtol=0, atol=0)
    torch.testing.assert_close(fast.output_drops, slow.output_drops, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast.correlation, slow.correlation, rtol=0, atol=1e-4)
    assert slow.output_drops.abs().max() > 1e-3                     # the removals do change the output


def test_faithfulness_shortcut_is_refused_where_it_does_not_hold(clouds):
    torch.manual_seed(0)
    s = torch.randn(3, 40)
    tnet = create_model("pointnet", 5, channels=(16, 32), head=(8,), input_transform=True).eval()
    kw = dict(n_subsets=4, subset_size=3, seed=0)
    with pytest.raises(InvalidArgumentError, match="fast"):
        faithfulness_correlation(tnet, clouds, s, **kw, fast=True)
    torch.testing.assert_close(faithfulness_correlation(tnet, clouds, s, **kw).correlation,
                               faithfulness_correlation(tnet, clouds, s, **kw, fast=False).correlation,
                               rtol=0, atol=0, equal_nan=True)


# ------------------------------------------------------------------ gradients through the critical points
@pytest.mark.parametrize("method,opts", [("pointshift", {}), ("gradient", {}), ("gradxinput", {}),
                                         ("ig", {"steps": 4})])
def test_critical_point_gradients_equal_back_propagation_through_every_point(net, method, opts, monkeypatch):
    import pointlens.attribution.gradient as gradient

    x = torch.randn(3, 300, 3, generator=torch.Generator().manual_seed(5))      # more points than channels
    monkeypatch.setattr(gradient.GradientAttribution, "point_chunk", 64)    # several chunks of critical points
    fast = create_attribution(method, net, **opts).attribute(x)
    monkeypatch.setattr(gradient, "_pointwise_max_pool", lambda model: False)
    plain = create_attribution(method, net, **opts).attribute(x)
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-6)
    assert plain.abs().max() > 0
    if method != "ig":                                   # non-critical points get exactly 0
        assert (plain == 0).any() and torch.equal(fast == 0, plain == 0)
