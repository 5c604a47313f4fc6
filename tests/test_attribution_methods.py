"""Critical points, Point Grad-CAM, RISE-3D, LIME-3D and the random baseline against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pointlens.attribution import LIME, RISE, CriticalPoints, PointGradCAM, RandomAttribution, kmeans_segments
from pointlens.errors import InvalidArgumentError
from pointlens.ops.removal import cloud_centre
from test_attribution_nets import TinyPointNet, cloud


def test_critical_point_counts_match_hand_computation():
    net = TinyPointNet(feat=32).eval()
    x = cloud(3, 20, seed=1)
    counts = CriticalPoints(net, batch_size=2).attribute(x)
    with torch.no_grad():
        feats = net.features(x.transpose(1, 2)).numpy()
    for b in range(3):
        ref = np.bincount(feats[b].argmax(axis=1), minlength=20)
        np.testing.assert_array_equal(counts[b].numpy(), ref)
    np.testing.assert_array_equal(counts.sum(1).numpy(), [32, 32, 32])
    assert counts.max() > 1  # some points win several channels
    torch.testing.assert_close(CriticalPoints(net, ties="first").attribute(x), counts, rtol=0, atol=0)


def test_critical_point_ties_are_split_or_given_to_the_first_point():
    net = TinyPointNet(feat=32).eval()
    x = cloud(1, 12, seed=2)
    x[0, 9] = x[0, 2]  # a duplicate: every channel won by point 2 is tied with point 9
    with torch.no_grad():
        feats = net.features(x.transpose(1, 2))[0].numpy()
    ref = np.zeros(12)
    for row in feats:
        winners = np.flatnonzero(row == row.max())
        ref[winners] += 1.0 / len(winners)
    split = CriticalPoints(net).attribute(x)[0]
    np.testing.assert_allclose(split.numpy(), ref, atol=1e-12)
    assert ref[2] > 0 and ref[2] == ref[9]
    first = CriticalPoints(net, ties="first").attribute(x)[0]
    assert first[9] == 0 and first[2] == 2 * split[2] and float(first.sum()) == 32


class PoolBNC(nn.Module):
    """A max-pool that takes (B, N, C)."""

    def forward(self, f):
        return f.max(dim=1).values


class NetBNC(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(2)
        self.w = nn.Parameter(torch.randn(3, 10, generator=g, dtype=torch.float64))
        self.pool = PoolBNC()
        self.head = nn.Linear(10, 4).double()

    def forward(self, x):
        return self.head(self.pool(torch.tanh(x @ self.w)))


def test_critical_points_layout_option():
    net = NetBNC()
    x = cloud(2, 15, seed=2)
    counts = CriticalPoints(net, pool_layer="pool", layout="BNC").attribute(x)
    arg = torch.tanh(x @ net.w).argmax(dim=1)
    for b in range(2):
        np.testing.assert_array_equal(counts[b].numpy(), np.bincount(arg[b].numpy(), minlength=15))
    with pytest.raises(InvalidArgumentError):
        CriticalPoints(net, pool_layer="pool").attribute(x)  # wrong layout is detected
    # no pool_layer attribute and none given: found by a probe forward (the pooling module, its input, BNC)
    auto = CriticalPoints(net)
    assert (auto.pool_layer, auto.use, auto.layout) == ("pool", "input", "BNC")
    torch.testing.assert_close(auto.attribute(x), counts)

    class AllFunctional(nn.Module):  # no module sees per-point activations: nothing to find, one clear error
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(3, 2)

        def forward(self, x):
            return self.head(x.amax(dim=1))

    with pytest.raises(InvalidArgumentError, match="per-point"):
        CriticalPoints(AllFunctional())


def test_point_gradcam_matches_hand_computation():
    net = TinyPointNet().eval()
    x = cloud(2, 18, seed=3)
    t = torch.tensor([2, 4])
    got = PointGradCAM(net).attribute(x, target=t)
    f = net.features(x.transpose(1, 2)).detach().requires_grad_(True)
    logits = net.head(f.max(dim=2).values)
    (g,) = torch.autograd.grad(logits.gather(1, t.view(-1, 1)).sum(), f)
    ref = (g.mean(dim=2, keepdim=True) * f.detach()).sum(1)
    torch.testing.assert_close(got, ref.clamp_min(0), rtol=1e-10, atol=1e-12)
    raw = PointGradCAM(net, relu=False).attribute(x, target=t)
    torch.testing.assert_close(raw, ref, rtol=1e-10, atol=1e-12)
    assert (raw < 0).any() and (raw > 0).any()
    # a layer's output with per-point activations (the first conv), grads taken there
    first = PointGradCAM(net, layer="features.0", use="output", relu=False).attribute(x, target=t)
    a = net.features[0](x.transpose(1, 2)).detach().requires_grad_(True)
    lg = net.head(net.pool(net.features[1:](a)))
    (ga,) = torch.autograd.grad(lg.gather(1, t.view(-1, 1)).sum(), a)
    torch.testing.assert_close(first, (ga.mean(2, keepdim=True) * a.detach()).sum(1), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("removal", ["delete", "shift"])
def test_rise_matches_hand_computation_with_its_masks(removal):
    net = TinyPointNet().eval()
    x = cloud(2, 16, seed=4)
    t = torch.tensor([1, 0])
    rise = RISE(net, n_masks=24, p_keep=0.4, removal=removal, seed=5, batch_size=7)
    got = rise.attribute(x, target=t)
    keep = rise.masks(x)
    assert keep.shape == (2, 24, 16)
    if removal == "delete":
        assert (keep.sum(-1) == round(0.4 * 16)).all()
        p = round(0.4 * 16) / 16
    else:
        p = 0.4
    ref = torch.zeros(2, 16, dtype=torch.float64)
    with torch.no_grad():
        for b in range(2):
            c = cloud_centre(x[b:b + 1])[0, 0]
            for m in range(24):
                k = keep[b, m]
                y = x[b, k] if removal == "delete" else torch.where(k.unsqueeze(-1), x[b], c)
                prob = net(y.unsqueeze(0)).softmax(-1)[0, t[b]]
                ref[b] += prob * k.double()
    torch.testing.assert_close(got, ref / (24 * p), rtol=1e-10, atol=1e-12)
    # deterministic for a seed, different for another seed
    torch.testing.assert_close(rise.attribute(x, target=t), got, rtol=0, atol=0)
    assert not torch.equal(RISE(net, n_masks=24, p_keep=0.4, removal=removal, seed=6).masks(x), keep)


@pytest.mark.parametrize("removal", ["delete", "shift"])
def test_rise_centred_estimator_by_hand_and_without_the_mask_count_term(removal):
    net = TinyPointNet().eval()
    x = cloud(2, 16, seed=4)
    t = torch.tensor([1, 0])
    kw = dict(n_masks=24, p_keep=0.4, removal=removal, seed=5, batch_size=7)
    plain, centred = RISE(net, **kw), RISE(net, estimator="centred", **kw)
    keep = plain.masks(x).double()
    p = round(0.4 * 16) / 16 if removal == "delete" else 0.4
    # RISE's scores minus the masks' mean output times each point's keep count
    fbar = torch.zeros(2, dtype=torch.float64)
    with torch.no_grad():
        for b in range(2):
            c = cloud_centre(x[b:b + 1])[0, 0]
            outs = []
            for m in range(24):
                k = keep[b, m].bool()
                y = x[b, k] if removal == "delete" else torch.where(k.unsqueeze(-1), x[b], c)
                outs.append(net(y.unsqueeze(0)).softmax(-1)[0, t[b]])
            fbar[b] = torch.stack(outs).mean()
    want = plain.attribute(x, target=t) - fbar[:, None] * keep.sum(1) / (24 * p)
    torch.testing.assert_close(centred.attribute(x, target=t), want, rtol=1e-10, atol=1e-12)
    if removal == "delete":  # every mask keeps the same number of points: the centred scores sum to 0
        torch.testing.assert_close(want.sum(1), torch.zeros(2, dtype=torch.float64), rtol=0, atol=1e-12)

    class Constant(nn.Module):  # an output that ignores the points: nothing to explain
        def forward(self, pts):
            return torch.tensor([[0.3, 1.2]], dtype=pts.dtype).expand(pts.shape[0], 2)

    flat = RISE(Constant(), **kw).attribute(x, target=t)
    # RISE's own estimator ranks the points by how often the seed's masks kept them ...
    torch.testing.assert_close(flat, Constant()(x).softmax(-1)[0, t][:, None] * keep.sum(1) / (24 * p),
                               rtol=1e-10, atol=1e-12)
    assert float(flat.std(1).min()) > 0
    # ... the centred one gives every point exactly 0
    assert float(RISE(Constant(), estimator="centred", **kw).attribute(x, target=t).abs().max()) < 1e-12


class SquaredRadius(nn.Module):
    """logit_c = a_c * sum_i ||x_i||^2: additive over points and 0 for a point at the origin."""

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64))

    def forward(self, x):
        return (x * x).sum(dim=(1, 2)).unsqueeze(1) * self.a


def test_lime_recovers_an_exactly_linear_model():
    half = cloud(1, 20, seed=6)
    x = torch.cat([half, -half], dim=1)  # symmetric: per-axis median is exactly the origin
    assert cloud_centre(x).abs().max() < 1e-15
    net = SquaredRadius()
    lime = LIME(net, n_segments=6, n_samples=40, output="logit", ridge=0.0, seed=1, batch_size=16)
    coef, intercept, seg = lime.surrogate(x, target=2)
    sq = (x[0] ** 2).sum(-1)
    want = torch.stack([2.0 * sq[seg[0] == s].sum() for s in range(6)])
    torch.testing.assert_close(coef[0], want, rtol=1e-8, atol=1e-9)
    assert abs(float(intercept[0])) < 1e-9
    torch.testing.assert_close(lime.attribute(x, target=2)[0], want[seg[0]], rtol=1e-8, atol=1e-9)
    # a ridge penalty shrinks the coefficients
    shrunk, _, _ = LIME(net, n_segments=6, n_samples=40, output="logit", ridge=10.0, seed=1).surrogate(x, 2)
    assert shrunk.norm() < coef.norm()


def test_kmeans_segments_are_a_lloyd_fixed_point():
    x = cloud(2, 60, seed=7)
    seg = kmeans_segments(x, 5, iters=100)
    for b in range(2):
        assert sorted(set(seg[b].tolist())) == list(range(5))
        centres = torch.stack([x[b, seg[b] == s].mean(0) for s in range(5)])
        nearest = (x[b].unsqueeze(1) - centres.unsqueeze(0)).norm(dim=-1).argmin(1)
        assert torch.equal(nearest, seg[b])


def test_random_baseline_is_uniform_seeded_and_ignores_the_model():
    x = cloud(2, 500, seed=8)
    r = RandomAttribution(TinyPointNet(), seed=3).attribute(x)
    assert r.shape == (2, 500) and r.min() >= 0 and r.max() < 1
    assert abs(float(r.mean()) - 0.5) < 0.05
    other_model = RandomAttribution(TinyPointNet(seed=9), seed=3).attribute(x)
    torch.testing.assert_close(other_model, r, rtol=0, atol=0)
    assert not torch.equal(RandomAttribution(TinyPointNet(), seed=4).attribute(x), r)
    with pytest.raises(InvalidArgumentError):
        RandomAttribution(TinyPointNet(), seed=3).attribute(x, target=5)  # 5 classes: 0..4
