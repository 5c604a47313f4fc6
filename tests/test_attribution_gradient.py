"""Gradient attributions: finite differences, Captum agreement, IG completeness, SmoothGrad's definition."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pointlens.attribution import (
    Gradient,
    GradientXInput,
    IntegratedGradients,
    PointShift,
    SmoothGrad,
    create_attribution,
    integration_rule,
)
from pointlens.errors import InvalidArgumentError
from pointlens.ops.removal import cloud_centre
from test_attribution_nets import TinyDGCNN, TinyPointNet, cloud

TARGET = torch.tensor([1, 3])


@pytest.mark.parametrize("net_cls,alpha,centre", [
    (TinyPointNet, 1.0, "median"), (TinyPointNet, 2.5, "median"), (TinyPointNet, 1.0, "mean"),
    (TinyPointNet, 0.0, "mean"), (TinyDGCNN, 6.0, "median"),
])
def test_pointshift_equals_finite_difference_of_radial_loss(net_cls, alpha, centre):
    net = net_cls().eval()
    x = cloud(2, 16, seed=3)
    scores = PointShift(net, alpha=alpha, centre=centre).attribute(x, target=TARGET)
    c = cloud_centre(x, centre)  # held fixed while the point moves radially
    d = x - c
    r = d.norm(dim=-1)
    u = d / r.unsqueeze(-1)
    eps = 1e-6
    b, n, _ = x.shape
    clouds, tgt = [], []
    for j in range(b):
        for i in range(n):
            for sign in (1.0, -1.0):
                y = x[j].clone()
                y[i] += sign * eps * u[j, i]
                clouds.append(y)
                tgt.append(TARGET[j])
    with torch.no_grad():
        loss = F.cross_entropy(net(torch.stack(clouds)), torch.stack(tgt), reduction="none").view(b, n, 2)
    dl_dr = (loss[..., 0] - loss[..., 1]) / (2 * eps)
    expected = -(r ** (1 + alpha)) * dl_dr
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-7)
    assert scores.abs().max() > 1e-3  # the test compares something


def test_pointshift_default_target_is_the_predicted_class():
    net = TinyPointNet().eval()
    x = cloud(2, 16, seed=4)
    pred = net(x).argmax(-1)
    torch.testing.assert_close(PointShift(net).attribute(x), PointShift(net).attribute(x, target=pred))


def test_gradient_and_gradxinput_equal_captum():
    import captum.attr as captum_attr  # test-only dependency (pyproject [test]); CI installs it
    net = TinyPointNet().eval()
    x = cloud(2, 20, seed=5)
    sal = captum_attr.Saliency(net).attribute(x.clone().requires_grad_(True), target=TARGET, abs=True)
    torch.testing.assert_close(Gradient(net).attribute(x, target=TARGET), sal.norm(dim=-1), rtol=0, atol=1e-5)
    ixg = captum_attr.InputXGradient(net).attribute(x.clone().requires_grad_(True), target=TARGET)
    gxi = GradientXInput(net).attribute(x, target=TARGET)
    torch.testing.assert_close(gxi, ixg.sum(-1), rtol=0, atol=1e-5)
    gxi_abs = GradientXInput(net, absolute=True).attribute(x, target=TARGET)
    torch.testing.assert_close(gxi_abs, ixg.sum(-1).abs(), rtol=0, atol=1e-5)


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_left", "riemann_right", "riemann_middle",
                                    "riemann_trapezoid"])
@pytest.mark.parametrize("baseline", ["centre", "zeros"])
def test_integrated_gradients_equal_captum(method, baseline):
    import captum.attr as captum_attr  # test-only dependency (pyproject [test]); CI installs it
    net = TinyDGCNN().eval() if method == "gausslegendre" else TinyPointNet().eval()
    x = cloud(2, 16, seed=6)
    ig = IntegratedGradients(net, baseline=baseline, steps=12, method=method, batch_size=7)
    x0 = ig.baseline_for(x)
    ref = captum_attr.IntegratedGradients(net).attribute(x, baselines=x0, target=TARGET, n_steps=12,
                                                         method=method)
    torch.testing.assert_close(ig.attribute_coordinates(x, target=TARGET), ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(ig.attribute(x, target=TARGET), ref.sum(-1), rtol=0, atol=1e-5)


@pytest.mark.parametrize("baseline,method,steps", [
    ("centre", "gausslegendre", 64), ("zeros", "gausslegendre", 64), ("centre", "riemann_middle", 128)])
def test_integrated_gradients_completeness(baseline, method, steps):
    net = TinyPointNet().eval()
    x = cloud(2, 24, seed=7)
    ig = IntegratedGradients(net, baseline=baseline, method=method, steps=steps)
    total = ig.attribute_coordinates(x, target=TARGET).sum(dim=(1, 2))
    with torch.no_grad():
        tgt = TARGET.view(-1, 1)
        diff = net(x).gather(1, tgt)[:, 0] - net(ig.baseline_for(x)).gather(1, tgt)[:, 0]
    assert diff.abs().min() > 0.05  # a non-trivial integral
    assert ((total - diff).abs() <= 0.01 * diff.abs()).all(), (total, diff)


def test_integration_rules():
    for n in (1, 3, 8):  # Gauss-Legendre is exact up to degree 2n - 1
        a, w = integration_rule("gausslegendre", n)
        for k in range(2 * n):
            assert abs((w * a ** k).sum() - 1.0 / (k + 1)) < 1e-12
    a, w = integration_rule("riemann_middle", 10)  # exact for linear functions
    assert abs((w * (3 * a + 1)).sum() - 2.5) < 1e-12
    a, w = integration_rule("riemann_trapezoid", 5)  # Captum's convention
    np.testing.assert_allclose(a, np.linspace(0, 1, 5))
    np.testing.assert_allclose(w, [0.1, 0.2, 0.2, 0.2, 0.1])
    with pytest.raises(InvalidArgumentError):
        integration_rule("simpson", 5)
    with pytest.raises(InvalidArgumentError):
        integration_rule("riemann_left", 1)


def test_smoothgrad_is_the_mean_of_the_inner_method_over_its_noise():
    net = TinyPointNet().eval()
    x = cloud(2, 16, seed=8)
    sg = SmoothGrad(Gradient(net), n_samples=4, sigma=0.05, seed=3)
    noise = sg.noise(x)
    assert noise.shape == (4, 2, 16, 3)
    assert abs(float(noise.std()) - 0.05) < 0.02
    pred = net(x).argmax(-1)  # the target is resolved on the clean cloud
    ref = torch.stack([Gradient(net).attribute(x + noise[k], target=pred) for k in range(4)]).mean(0)
    torch.testing.assert_close(sg.attribute(x), ref, rtol=1e-10, atol=1e-12)
    # the three ways to build it agree; the seed matters
    a = SmoothGrad(Gradient, model=net, n_samples=4, sigma=0.05, seed=3).attribute(x)
    b = create_attribution("smoothgrad", net, method="gradient", n_samples=4, sigma=0.05, seed=3).attribute(x)
    torch.testing.assert_close(a, ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(b, ref, rtol=1e-10, atol=1e-12)
    other = SmoothGrad(Gradient(net), n_samples=4, sigma=0.05, seed=4).attribute(x)
    assert (other - ref).abs().max() > 1e-6
    # sigma = 0 gives back the wrapped method
    sg0 = SmoothGrad(PointShift(net), n_samples=2, sigma=0.0).attribute(x, target=TARGET)
    torch.testing.assert_close(sg0, PointShift(net).attribute(x, target=TARGET), rtol=1e-10, atol=1e-12)


def test_gradient_methods_work_under_no_grad_and_with_float32():
    net = TinyPointNet(dtype=torch.float32).eval()
    x = cloud(2, 16, seed=9, dtype=torch.float32)
    with torch.no_grad():
        s = Gradient(net).attribute(x)
    assert s.dtype == torch.float32 and s.shape == (2, 16) and not s.requires_grad and s.abs().max() > 0


def test_ig_baseline_broadcast_and_its_refusal():
    import torch

    from pointlens.attribution.base import broadcast_baseline
    from pointlens.errors import InvalidArgumentError

    x = torch.randn(2, 5, 3, dtype=torch.float64)
    b = broadcast_baseline([1.0, 2.0, 3.0], x)                 # one point broadcast to every point of every cloud
    assert b.shape == x.shape and b.dtype == x.dtype and torch.equal(b[1, 4], torch.tensor([1.0, 2.0, 3.0]).double())
    b[0, 0, 0] = 9.0                                           # a fresh tensor, not a view of the baseline
    assert broadcast_baseline([1.0, 2.0, 3.0], x)[0, 0, 0] == 1.0
    with pytest.raises(InvalidArgumentError, match="baseline"):
        broadcast_baseline(torch.zeros(4), x)
