"""Deletion / insertion curves and faithfulness correlation on toy models whose logit is a known function of
specific points (closed-form expected values)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pointlens.errors import InvalidArgumentError
from pointlens.metrics.faithfulness import deletion_curve, faithfulness_correlation, insertion_curve
from pointlens.ops.removal import cloud_centre

N, K = 20, 4                       # points per cloud, "important" points per cloud


class CountModel(nn.Module):
    """logit_1 = Σ_i relu(x_i - 0.5) (one unit per important point at x = 1.5), logit_0 = 0."""

    def forward(self, pts):
        l1 = torch.relu(pts[..., 0] - 0.5).sum(1)
        return torch.stack([torch.zeros_like(l1), l1], 1)


def _clouds(b=2, seed=0):
    """Important points at x = 1.5 (random positions in the cloud), the rest with x in [-1, 0]."""
    g = torch.Generator().manual_seed(seed)
    pts = torch.rand(b, N, 3, generator=g) - 1.0
    important = torch.zeros(b, N, dtype=torch.bool)
    for i in range(b):
        important[i, torch.randperm(N, generator=g)[:K]] = True
    pts[..., 0] = torch.where(important, torch.full_like(pts[..., 0], 1.5), pts[..., 0])
    # perfect scores: every important point above every other one, no ties
    scores = important.float() * 10 + torch.rand(b, N, generator=g)
    return pts, scores, important


def _sig(v):
    return 1.0 / (1.0 + np.exp(-np.asarray(v, dtype=np.float64)))


def _auc(x, y):
    return np.trapezoid(y, x) / (x[-1] - x[0])


@pytest.mark.parametrize("removal", ["delete", "shift"])
def test_deletion_curve_closed_form(removal):
    pts, scores, _ = _clouds()
    model = CountModel()
    counts = np.round(np.linspace(0, 1, 11) * N).astype(int)
    if removal == "delete":
        counts = np.minimum(counts, N - 1)
    for sign, left in ((1, lambda k: np.maximum(K - k, 0)),       # important points go first
                       (-1, lambda k: np.minimum(K, N - k))):      # important points go last
        curve = deletion_curve(model, pts, sign * scores, steps=10, removal=removal)
        expected = _sig(left(counts))
        assert curve.counts.tolist() == counts.tolist()
        np.testing.assert_allclose(curve.probabilities.numpy(), np.tile(expected, (2, 1)), atol=1e-6)
        np.testing.assert_allclose(curve.auc.numpy(), _auc(counts / N, expected), atol=1e-6)
        assert curve.target.tolist() == [1, 1]
    best = deletion_curve(model, pts, scores, removal=removal).auc
    worst = deletion_curve(model, pts, -scores, removal=removal).auc
    assert torch.all(best < worst)


@pytest.mark.parametrize("removal", ["shift", "keep"])
def test_insertion_curve_closed_form(removal):
    pts, scores, _ = _clouds(seed=1)
    model = CountModel()
    counts = np.round(np.linspace(0, 1, 11) * N).astype(int)
    if removal == "keep":
        counts = np.maximum(counts, 1)
    perfect = insertion_curve(model, pts, scores, steps=10, removal=removal)
    reverse = insertion_curve(model, pts, -scores, steps=10, removal=removal)
    np.testing.assert_allclose(perfect.probabilities.numpy(), np.tile(_sig(np.minimum(counts, K)), (2, 1)),
                               atol=1e-6)
    np.testing.assert_allclose(reverse.probabilities.numpy(),
                               np.tile(_sig(np.maximum(counts - (N - K), 0)), (2, 1)), atol=1e-6)
    assert torch.all(perfect.auc > reverse.auc)
    np.testing.assert_allclose(perfect.auc.numpy(), _auc(counts / N, _sig(np.minimum(counts, K))), atol=1e-6)


def test_curve_target_and_fractions_options():
    pts, scores, _ = _clouds(seed=2)
    model = CountModel()
    c1 = deletion_curve(model, pts, scores, fractions=[0.0, 0.1, 0.2])
    c0 = deletion_curve(model, pts, scores, target=0, fractions=[0.0, 0.1, 0.2])
    torch.testing.assert_close(c0.probabilities, 1 - c1.probabilities)
    assert c1.counts.tolist() == [0, 2, 4]
    assert c1.to_dict()["counts"] == [0, 2, 4]
    with pytest.raises(InvalidArgumentError, match="fractions"):
        deletion_curve(model, pts, scores, fractions=[0.5, 0.2])
    with pytest.raises(InvalidArgumentError, match="scores"):
        deletion_curve(model, pts, scores[:, :5])
    with pytest.raises(InvalidArgumentError, match="removal"):
        insertion_curve(model, pts, scores, removal="delete")


class IndexLinearModel(nn.Module):
    """logit_1 = Σ_i w_i · x_i (weights per point index), logit_0 = -logit_1."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, pts):
        l1 = (pts * self.w).sum((1, 2))
        return torch.stack([-l1, l1], 1)


def test_faithfulness_correlation_exact_attribution_scores_one():
    g = torch.Generator().manual_seed(0)
    pts = torch.randn(3, 30, 3, generator=g, dtype=torch.float64).float()
    model = IndexLinearModel(torch.randn(30, 3, generator=g))
    # Shifting S to the centre c changes the logit by exactly Σ_{i∈S} w_i · (x_i - c)
    exact = ((pts - cloud_centre(pts, "median")) * model.w.detach()).sum(-1)
    model.eval()
    res = faithfulness_correlation(model, pts, exact, target=1, n_subsets=40, subset_size=5, seed=3)
    torch.testing.assert_close(res.correlation, torch.ones(3, dtype=torch.float64), atol=1e-5, rtol=0)
    anti = faithfulness_correlation(model, pts, -exact, target=1, n_subsets=40, subset_size=5, seed=3)
    torch.testing.assert_close(anti.correlation, -torch.ones(3, dtype=torch.float64), atol=1e-5, rtol=0)
    # brute force for the returned subsets
    for b in range(3):
        for j in range(40):
            sub = res.subsets[b, j]
            assert len(set(sub.tolist())) == 5
            assert res.attribution_sums[b, j].item() == pytest.approx(exact[b, sub].sum().item(), abs=1e-5)
            assert res.output_drops[b, j].item() == pytest.approx(exact[b, sub].sum().item(), abs=1e-4)
    np.testing.assert_allclose(res.correlation[0].item(),
                               np.corrcoef(res.attribution_sums[0], res.output_drops[0])[0, 1], atol=1e-9)


def test_faithfulness_correlation_is_seeded():
    pts, scores, _ = _clouds(seed=4)
    model = CountModel()
    a = faithfulness_correlation(model, pts, scores, n_subsets=30, subset_size=3, seed=7)
    b = faithfulness_correlation(model, pts, scores, n_subsets=30, subset_size=3, seed=7)
    c = faithfulness_correlation(model, pts, scores, n_subsets=30, subset_size=3, seed=8)
    assert torch.equal(a.subsets, b.subsets) and torch.equal(a.correlation, b.correlation)
    assert not torch.equal(a.subsets, c.subsets)
    # perfect scores on the counting model: the drop is the number of important points in S
    assert torch.all(a.correlation > 0.9)
    d = faithfulness_correlation(model, pts, scores, n_subsets=30, subset_size=3, removal="delete", seed=7)
    torch.testing.assert_close(d.output_drops, a.output_drops)   # deleting = shifting for this model
    with pytest.raises(InvalidArgumentError, match="subset_size"):
        faithfulness_correlation(model, pts, scores, subset_size=N)


class NeedsPoints(CountModel):
    """CountModel that, like DGCNN, declares the smallest cloud it accepts and refuses smaller ones."""

    min_points = 6

    def forward(self, pts):
        assert pts.shape[1] >= self.min_points, pts.shape
        return super().forward(pts)


@pytest.mark.parametrize("kind", ["deletion", "insertion"])
def test_curves_keep_the_points_the_model_needs(kind):
    pts, scores, _ = _clouds(seed=3)
    model = nn.Sequential(NeedsPoints())          # found inside wrappers too
    counts = np.round(np.linspace(0, 1, 11) * N).astype(int)
    if kind == "deletion":
        curve = deletion_curve(model, pts, scores, steps=10, removal="delete")
        expected = np.minimum(counts, N - NeedsPoints.min_points)
        probs = _sig(np.maximum(K - expected, 0))
    else:
        curve = insertion_curve(model, pts, scores, steps=10, removal="keep")
        expected = np.maximum(counts, NeedsPoints.min_points)
        probs = _sig(np.minimum(expected, K))
    assert curve.counts.tolist() == expected.tolist()
    np.testing.assert_allclose(curve.probabilities.numpy(), np.tile(probs, (2, 1)), atol=1e-6)
    np.testing.assert_allclose(curve.auc.numpy(), _auc(expected / N, probs), atol=1e-6)


def test_faithfulness_correlation_delete_respects_min_points():
    pts, scores, _ = _clouds(seed=4)
    with pytest.raises(InvalidArgumentError, match="subset_size"):
        faithfulness_correlation(NeedsPoints(), pts, scores, subset_size=N - 5, removal="delete")
    faithfulness_correlation(NeedsPoints(), pts, scores, subset_size=N - 6, removal="delete", n_subsets=4)
