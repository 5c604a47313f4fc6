"""Max-sensitivity and resampling consistency: brute-force references, hand values, jitter distribution."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from pointlens.errors import InvalidArgumentError
from pointlens.metrics.robustness import (
    jitter_in_ball,
    max_sensitivity,
    resampling_consistency,
    transfer_scores,
)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, pts):
        return self.lin(pts).max(1).values


def coord_explain(model, pts, target):
    return pts[..., 0] + 2.0


def test_jitter_is_uniform_in_the_ball():
    pts = torch.zeros(1, 30000, 3)
    y = jitter_in_ball(pts, 0.05, torch.Generator().manual_seed(0))
    r = y.norm(dim=-1)
    assert r.max().item() <= 0.05 + 1e-7
    # uniform in a 3-D ball: E|r| = 3/4 R, E[r^3] = R^3 / 2 (a sphere surface or a cube would differ)
    assert r.mean().item() == pytest.approx(0.75 * 0.05, rel=0.01)
    assert (r ** 3).mean().item() == pytest.approx(0.5 * 0.05 ** 3, rel=0.02)
    assert y.mean(1).abs().max().item() < 1e-3


def test_max_sensitivity_matches_brute_force():
    model = Tiny().eval()
    pts = torch.randn(2, 16, 3, generator=torch.Generator().manual_seed(1))
    seen = []

    def recording(m, x, t):
        seen.append(x.clone())
        return coord_explain(m, x, t)

    value = max_sensitivity(model, pts, recording, radius=0.1, n_samples=6, seed=3)
    assert len(seen) == 7 and torch.equal(seen[0], pts)
    base = coord_explain(None, pts, None).double()
    diffs = torch.stack([(coord_explain(None, y, None).double() - base).norm(dim=1) for y in seen[1:]])
    torch.testing.assert_close(value, diffs.max(0).values / base.norm(dim=1))
    assert torch.all((seen[1] - pts).norm(dim=-1) <= 0.1 + 1e-6)
    # bound: each score moves by at most the radius
    assert torch.all(value <= 0.1 * math.sqrt(16) / base.norm(dim=1) + 1e-9)
    plain = max_sensitivity(model, pts, coord_explain, radius=0.1, n_samples=6, seed=3, normalise=False)
    torch.testing.assert_close(plain, diffs.max(0).values)
    assert torch.equal(value, max_sensitivity(model, pts, coord_explain, radius=0.1, n_samples=6, seed=3))
    assert not torch.equal(value, max_sensitivity(model, pts, coord_explain, radius=0.1, n_samples=6, seed=4))


def test_max_sensitivity_zero_cases():
    model = Tiny().eval()
    pts = torch.randn(2, 8, 3)
    const = max_sensitivity(model, pts, lambda m, x, t: torch.ones(x.shape[:2]), radius=0.5)
    assert torch.all(const == 0)
    assert torch.all(max_sensitivity(model, pts, coord_explain, radius=0.0) == 0)
    with pytest.raises(InvalidArgumentError, match="radius"):
        max_sensitivity(model, pts, coord_explain, radius=-1)


def test_resampling_consistency_hand_value():
    a = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0]]])
    sa = torch.tensor([[1.0, 2, 3, 4]])
    b = torch.tensor([[[0.1, 0, 0], [2.9, 0, 0], [1.6, 0, 0]]])
    sb = torch.tensor([[1.0, 2, 3]])
    assert transfer_scores(a, sa, b).tolist() == [[1.0, 4.0, 3.0]]
    # ranks [1, 3, 2] vs [1, 2, 3]: rho = 1 - 6 * 2 / (3 * 8) = 0.5
    assert resampling_consistency(a, sa, b, sb, symmetric=False).item() == pytest.approx(0.5)
    # b -> a: a takes [1, 3, 3, 2] vs [1, 2, 3, 4]
    back = torch.tensor([[1.0, 3, 3, 2]])
    from scipy.stats import spearmanr
    expected = 0.5 * (0.5 + spearmanr(back[0], sa[0])[0])
    assert resampling_consistency(a, sa, b, sb).item() == pytest.approx(expected)


def test_resampling_consistency_of_a_permuted_sampling():
    g = torch.Generator().manual_seed(2)
    pts = torch.randn(3, 50, 3, generator=g)
    s = torch.rand(3, 50, generator=g)
    perm = torch.randperm(50, generator=g)
    same = resampling_consistency(pts, s, pts[:, perm], s[:, perm])
    torch.testing.assert_close(same, torch.ones(3, dtype=torch.float64))
    flipped = resampling_consistency(pts, s, pts[:, perm], -s[:, perm])
    torch.testing.assert_close(flipped, -torch.ones(3, dtype=torch.float64))
    sub = resampling_consistency(pts, s, pts[:, ::2] + 1e-4, s[:, ::2], symmetric=False)  # M != N
    torch.testing.assert_close(sub, torch.ones(3, dtype=torch.float64))
    with pytest.raises(InvalidArgumentError, match="scores_b"):
        resampling_consistency(pts, s, pts, s[:, :10])
