"""Image attributions (issue 13's baselines): Captum equalities, brute-force references, known answers, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pointlens.attribution import (
    Attribution,
    ImageAttribution,
    check_method,
    create_attribution,
    is_stochastic,
    list_attributions,
    method_options,
)
from pointlens.attribution.image import BlurPyramid, SmoothMaskGenerator, gaussian_blur
from pointlens.errors import InvalidArgumentError

IMAGE_NAMES = ["gradcam", "rise", "gradient", "ig", "extremal", "igos++"]
FAST = {"rise": dict(n_masks=24), "ig": dict(steps=6), "extremal": dict(iterations=20),
        "igos++": dict(iterations=2, ig_steps=4)}


class TinyCNN(nn.Module):
    """Two conv layers on small images; ``conv2`` (stride 2) is the Grad-CAM layer."""

    gradcam_layer = "conv2"

    def __init__(self, classes: int = 4, seed: int = 0, act=F.relu):
        super().__init__()
        torch.manual_seed(seed)
        self.act = act
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1, stride=2)
        self.head = nn.Linear(8, classes)

    def forward(self, x):
        h = self.act(self.conv2(self.act(self.conv1(x))))
        return self.head(h.mean(dim=(2, 3)))


class BandNet(nn.Module):
    """Class 0's logit is the high-frequency energy inside the region R (rows 0-7, columns 4-11 of a 16 x 16
    image; symmetric under a left-right flip), class 1's is 0: only R matters, and blurring or blacking out R
    removes the evidence."""

    def __init__(self, scale: float = 1.0, gain: float = 4.0):
        super().__init__()
        self.gain = gain
        lap = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]])
        self.register_buffer("lap", lap.view(1, 1, 3, 3).repeat(3, 1, 1, 1))
        self.scale = scale

    def forward(self, x):
        e = F.conv2d(x, self.lap, padding=1, groups=3).pow(2).sum(1)
        r = e[:, 0:8, 4:12].mean(dim=(1, 2))
        logit = self.gain * (r / self.scale - 0.5)
        return torch.stack([logit, torch.zeros_like(logit)], dim=1)


REGION = np.zeros((16, 16), dtype=bool)
REGION[0:8, 4:12] = True


def images(b=2, size=16, seed=0, dtype=torch.float32):
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def band_model_and_image(gain: float = 4.0):
    """BandNet scaled so that the image's logit is ``gain / 2`` and a fully blurred R's is about ``-gain / 2``."""
    x = images(1, seed=5)
    scale = float(F.conv2d(x, BandNet().lap, padding=1, groups=3).pow(2).sum(1)[:, 0:8, 4:12].mean())
    return BandNet(scale, gain).eval(), x


# ---------------------------------------------------------------- registry


def test_registry_lists_the_image_methods_and_keeps_the_point_ones():
    assert list_attributions("image") == IMAGE_NAMES
    assert "extremal" not in list_attributions() and list_attributions()[0] == "pointshift"
    net = TinyCNN()
    for name in IMAGE_NAMES:
        m = create_attribution(name, net, modality="image", **FAST.get(name, {}))
        assert isinstance(m, ImageAttribution) and isinstance(m, Attribution) and m.name == name
    assert type(create_attribution("gradcam", net, modality="image")).__name__ == "ImageGradCAM"
    assert {"areas", "iterations", "step", "sigma", "batch_size"} <= method_options("extremal", "image")
    assert is_stochastic("rise", "image") and is_stochastic("igos++", "image")
    assert not is_stochastic("gradcam", "image") and not is_stochastic("extremal", "image")
    assert check_method("ig", {"steps": 5}, modality="image") == "ig"


def test_unknown_names_options_and_modalities_are_one_clear_error():
    net = TinyCNN()
    with pytest.raises(InvalidArgumentError, match="did you mean gradcam"):
        create_attribution("gradcm", net, modality="image")
    with pytest.raises(InvalidArgumentError, match="modality='image'"):
        create_attribution("extremal", net)
    with pytest.raises(InvalidArgumentError, match="modality='points'"):
        create_attribution("pointshift", net, modality="image")
    with pytest.raises(InvalidArgumentError, match="modality"):
        list_attributions("voxels")
    with pytest.raises(InvalidArgumentError, match="did you mean areas"):
        check_method("extremal", {"area": 0.1}, modality="image")
    for name, options in [("extremal", {"areas": 1.5}), ("extremal", {"areas": ()}), ("rise", {"grid": 0}),
                          ("rise", {"p_keep": 0}), ("gradient", {"reduce": "mean"}), ("ig", {"steps": 0}),
                          ("ig", {"baseline": "ones"}), ("gradcam", {"layer": "conv9"}),
                          ("igos++", {"decay": 1.0}), ("extremal", {"variant": "both"}), ("rise", {"seed": 0.5})]:
        with pytest.raises(InvalidArgumentError):
            create_attribution(name, net, modality="image", **options)
    with pytest.raises(InvalidArgumentError, match="layer"):
        create_attribution("gradcam", nn.Sequential(nn.Flatten(), nn.Linear(768, 2)), modality="image")


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_bad_input_names_images(name):
    m = create_attribution(name, TinyCNN().eval(), modality="image", **FAST.get(name, {}))
    with pytest.raises(InvalidArgumentError, match=r"images.*point cloud"):
        m.attribute(torch.rand(2, 10, 3))
    with pytest.raises(InvalidArgumentError, match="permute"):
        m.attribute(torch.rand(2, 16, 16, 3))
    with pytest.raises(InvalidArgumentError, match="images"):
        m.attribute(torch.rand(2, 1, 16, 16))
    bad = images()
    bad[1, 0, 3, 3] = float("nan")
    with pytest.raises(InvalidArgumentError, match="NaN"):
        m.attribute(bad)
    for target in (4, [0, 1, 2], 0.5, -1):
        with pytest.raises(InvalidArgumentError, match="target"):
            m.attribute(images(), target=target)


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_shapes_dtypes_model_state_and_single_images(name):
    net = TinyCNN().train()
    net.conv1.weight.requires_grad_(True)
    net.head.weight.requires_grad_(False)
    m = create_attribution(name, net, modality="image", **FAST.get(name, {}))
    x = images(2, seed=1)
    s = m.attribute(x, target=[1, 2])
    assert s.shape == (2, 16, 16) and s.dtype == torch.float32 and bool(torch.isfinite(s).all())
    assert net.training and net.conv1.weight.requires_grad and not net.head.weight.requires_grad
    assert all(p.grad is None for p in net.parameters())
    one = m.attribute(x[1].numpy(), target=2)  # (3, H, W) array: batched
    np.testing.assert_allclose(one[0].numpy(), s[1].numpy(), rtol=1e-4, atol=1e-6)
    s2 = m.attribute(x, target=[1, 2])  # deterministic (seeded methods included)
    assert torch.equal(s, s2)


# ---------------------------------------------------------------- Grad-CAM


@pytest.mark.parametrize("relu", [True, False])
def test_gradcam_layer_map_equals_captum(relu):
    import captum.attr as captum_attr  # test-only dependency

    net = TinyCNN().eval()
    x = images(3, seed=2)
    target = [0, 3, 1]
    ref = captum_attr.LayerGradCam(net, net.conv2).attribute(x, target=target, relu_attributions=relu)[:, 0]
    ours = create_attribution("gradcam", net, modality="image", relu=relu).layer_map(x, target=target)
    assert ours.shape == (3, 8, 8)
    np.testing.assert_allclose(ours.numpy(), ref.detach().numpy(), atol=1e-5, rtol=0)
    plain = create_attribution("gradcam", net, modality="image", relu=relu, upsample=False).attribute(x, target)
    torch.testing.assert_close(plain, ours)


def test_gradcam_upsampling_is_bilinear_with_pixel_centres_and_default_layers():
    import captum.attr as captum_attr

    net = TinyCNN().eval()
    x = images(2, seed=3)
    m = create_attribution("gradcam", net, modality="image")
    small, up = m.layer_map(x), m.attribute(x)
    ref = captum_attr.LayerAttribution.interpolate(small.unsqueeze(1), (16, 16), "bilinear")[:, 0]
    np.testing.assert_allclose(up.numpy(), ref.numpy(), atol=1e-6)
    # by hand: output pixel i samples source coordinate (i + 0.5) / 2 - 0.5, clamped at the border
    s = small[0].double().numpy()

    def lerp_index(i, n):
        c = min(max((i + 0.5) / 2 - 0.5, 0.0), n - 1.0)
        lo = int(np.floor(c))
        hi = min(lo + 1, n - 1)
        return lo, hi, c - lo

    hand = np.zeros((16, 16))
    for i in range(16):
        i0, i1, a = lerp_index(i, 8)
        for j in range(16):
            j0, j1, b = lerp_index(j, 8)
            hand[i, j] = ((1 - a) * ((1 - b) * s[i0, j0] + b * s[i0, j1]) + a * ((1 - b) * s[i1, j0] + b * s[i1, j1]))
    np.testing.assert_allclose(up[0].numpy(), hand, atol=1e-6)
    nearest = create_attribution("gradcam", net, modality="image", interpolation="nearest").attribute(x)
    torch.testing.assert_close(nearest, small.repeat_interleave(2, 1).repeat_interleave(2, 2))
    # the default layer: gradcam_layer when declared, else the last Conv2d
    assert m.layer == "conv2"
    seq = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 2))
    assert create_attribution("gradcam", seq, modality="image").layer == "2"
    assert create_attribution("gradcam", net, modality="image", layer="conv1").layer_map(x).shape == (2, 16, 16)


# ---------------------------------------------------------------- gradient and IG


def test_gradient_equals_captum_saliency_with_each_channel_reduction():
    import captum.attr as captum_attr

    net = TinyCNN().eval()
    x = images(2, seed=4)
    sal = captum_attr.Saliency(net).attribute(x.clone().requires_grad_(True), target=[2, 0], abs=True).detach()
    for reduce, ref in (("max", sal.amax(1)), ("sum", sal.sum(1)), ("l2", sal.norm(dim=1))):
        ours = create_attribution("gradient", net, modality="image", reduce=reduce).attribute(x, target=[2, 0])
        np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=1e-7, rtol=1e-5)
    # a linear classifier's input gradient is its weight: the map is max_c |w_c|
    lin = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 3)).eval()
    ours = create_attribution("gradient", lin, modality="image").attribute(x, target=1)
    w = lin[1].weight.detach()[1].view(3, 16, 16).abs().amax(0)
    torch.testing.assert_close(ours, w.expand(2, 16, 16))


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_trapezoid", "riemann_left"])
def test_integrated_gradients_equal_captum(method):
    import captum.attr as captum_attr

    net = TinyCNN().eval()
    x = images(2, seed=6)
    ref = captum_attr.IntegratedGradients(net).attribute(x, baselines=torch.zeros_like(x), target=[1, 3],
                                                         n_steps=12, method=method).detach()
    ig = create_attribution("ig", net, modality="image", steps=12, method=method, batch_size=7)
    ours = ig.attribute_channels(x, target=[1, 3])
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=1e-5, rtol=0)
    torch.testing.assert_close(ig.attribute(x, target=[1, 3]), ours.sum(1))
    absolute = create_attribution("ig", net, modality="image", steps=12, method=method, reduce="abs")
    torch.testing.assert_close(absolute.attribute(x, target=[1, 3]), ours.abs().sum(1))


def test_integrated_gradients_completeness_and_constant_baseline():
    net = TinyCNN(act=torch.tanh).double().eval()  # smooth: Gauss-Legendre converges fast
    x = images(2, seed=7, dtype=torch.float64)
    for baseline in ("zeros", 0.5):
        s = create_attribution("ig", net, modality="image", steps=64, baseline=baseline).attribute(x, target=2)
        assert s.dtype == torch.float64
        x0 = torch.zeros_like(x) if baseline == "zeros" else torch.full_like(x, 0.5)
        with torch.no_grad():
            gap = net(x)[:, 2] - net(x0)[:, 2]
        np.testing.assert_allclose(s.sum(dim=(1, 2)).numpy(), gap.numpy(), rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------- RISE


def test_rise_equals_a_brute_force_sum_over_its_masks():
    net = TinyCNN().eval()
    x = images(2, seed=8)
    rise = create_attribution("rise", net, modality="image", n_masks=13, grid=3, p_keep=0.4, seed=3, batch_size=5)
    masks = rise.masks((16, 16))
    assert masks.shape == (13, 16, 16) and float(masks.min()) >= 0 and float(masks.max()) <= 1
    s = rise.attribute(x, target=[1, 2])
    for j, t in enumerate([1, 2]):
        ref = torch.zeros(16, 16)
        for m in masks:
            with torch.no_grad():
                ref += net((x[j] * m).unsqueeze(0)).softmax(-1)[0, t] * m
        np.testing.assert_allclose(s[j].numpy(), (ref / (13 * 0.4)).numpy(), rtol=1e-5, atol=1e-7)
    # p = 1 keeps everything: every mask is 1 and the map is the target probability everywhere
    full = create_attribution("rise", net, modality="image", n_masks=5, p_keep=1.0).attribute(x, target=0)
    with torch.no_grad():
        p0 = net(x).softmax(-1)[:, 0]
    torch.testing.assert_close(full, p0.view(2, 1, 1).expand(2, 16, 16))
    # logit and sigmoid outputs follow the same sum
    lg = create_attribution("rise", net, modality="image", n_masks=13, grid=3, p_keep=0.4, seed=3,
                            output="logit").attribute(x[:1], target=1)
    with torch.no_grad():
        ref = sum(net((x[0] * m).unsqueeze(0))[0, 1] * m for m in masks) / (13 * 0.4)
    np.testing.assert_allclose(lg[0].numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)


def test_rise_masks_are_seeded_smooth_and_keep_p_on_average():
    net = TinyCNN().eval()
    a = create_attribution("rise", net, modality="image", n_masks=3000, seed=1).masks((16, 16))
    b = create_attribution("rise", net, modality="image", n_masks=3000, seed=1).masks((16, 16))
    c = create_attribution("rise", net, modality="image", n_masks=3000, seed=2).masks((16, 16))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert abs(float(a.mean()) - 0.5) < 0.01
    # smooth: neighbouring pixels differ by at most one upsampled-cell slope (cell = ceil(16 / 7) = 3 px)
    assert float((a[:, :, 1:] - a[:, :, :-1]).abs().max()) <= 1 / 3 + 1e-6
    x = images(3, seed=9)
    rise = create_attribution("rise", net, modality="image", n_masks=40, seed=4)
    torch.testing.assert_close(rise.attribute(x)[2], rise.attribute(x[2:])[0])  # batch-independent


# ---------------------------------------------------------------- known answer: only the region R matters


def test_rise_gradcam_and_gradient_find_the_region_the_model_reads():
    net, x = band_model_and_image()
    for name, opts in (("rise", dict(n_masks=400)), ("gradient", {}), ("ig", dict(steps=16))):
        s = create_attribution(name, net, modality="image", **opts).attribute(x, target=0)[0].numpy()
        assert s[REGION].mean() > s[~REGION].mean() + 1e-6, name


def test_extremal_perturbation_keeps_its_area_and_finds_the_region():
    # logits of +-20 (a trained CNN's range): the reward must be able to compete with the area term
    net, x = band_model_and_image(gain=40.0)
    ep = create_attribution("extremal", net, modality="image", areas=(0.1, 0.2), iterations=300)
    masks = ep.attribute_masks(x, target=0)
    assert masks.shape == (1, 2, 16, 16)
    for k, (a, inside) in enumerate(((0.1, 0.75), (0.2, 0.55))):
        mk = masks[0, k]
        assert abs(float(mk.mean()) - a) < 0.045  # the area constraint holds
        assert float(mk[torch.from_numpy(REGION)].sum() / mk.sum()) > inside  # and the mask sits in R (25 %)
    torch.testing.assert_close(ep.attribute(x, target=0), masks.sum(1))
    # the preserved image keeps the evidence; the same mask moved out of R does not
    cfg = ep.settings((16, 16))
    pyr = BlurPyramid(x, ep.num_levels, cfg["max_blur"])
    kept = pyr.apply(masks[:, :1], torch.zeros(1, dtype=torch.long))
    moved = pyr.apply(masks[:, :1].flip(2), torch.zeros(1, dtype=torch.long))
    with torch.no_grad():
        assert float(net(kept)[0, 0]) > float(net(moved)[0, 0]) + 1.0


def test_extremal_batched_equals_one_at_a_time_and_smooth_mask_generator():
    net = TinyCNN().eval()
    x = images(3, seed=10)
    ep = create_attribution("extremal", net, modality="image", iterations=15, batch_size=2)
    both = ep.attribute(x, target=[0, 1, 2])
    for j in range(3):
        np.testing.assert_allclose(ep.attribute(x[j:j + 1], target=j)[0].numpy(), both[j].numpy(), atol=1e-5)
    gen = SmoothMaskGenerator((16, 16), step=2, sigma=3.0)
    ones = gen.generate(torch.ones(1, 1, *gen.shape_in))
    zeros = gen.generate(torch.zeros(1, 1, *gen.shape_in))
    assert ones.shape == (1, 1, 16, 16) and float(ones.min()) > 0.95 and float(zeros.max()) == 0.0
    one_bump = torch.zeros(1, 1, *gen.shape_in)
    one_bump[0, 0, 4, 4] = 1.0  # a node at pixel (8, 8): flat inside sigma / 2, decaying outside
    m = gen.generate(one_bump)[0, 0]
    assert float(m[8, 8]) > 0.999 and float(m[8, 9]) > 0.999 and float(m[0, 0]) < 0.01
    # the blur pyramid: level 0 is the strongest blur, mask 1 is the image itself
    pyr = BlurPyramid(x, 8, 2.0)
    torch.testing.assert_close(pyr.apply(torch.ones(3, 1, 16, 16), torch.arange(3)), x)
    torch.testing.assert_close(pyr.apply(torch.zeros(3, 1, 16, 16), torch.arange(3)), gaussian_blur(x, 2.0))


def test_gaussian_blur_is_a_normalised_separable_convolution():
    x = images(1, seed=11, dtype=torch.float64)
    y = gaussian_blur(x, 1.2, padding="reflect")
    # a constant image stays constant under the reflect border; the sum of interior pixels is preserved
    torch.testing.assert_close(gaussian_blur(torch.ones(1, 3, 9, 9), 1.2, padding="reflect"), torch.ones(1, 3, 9, 9))
    r = 5
    z = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-z ** 2 / (2 * 1.2 ** 2))
    k2 = (k[:, None] * k[None, :]) / k.sum() ** 2
    ref = F.conv2d(F.pad(x, (r, r, r, r), mode="reflect"), k2.expand(3, 1, -1, -1), groups=3)
    torch.testing.assert_close(y, ref)


# ---------------------------------------------------------------- iGOS++


def test_igos_finds_the_region_and_is_seeded():
    net, x = band_model_and_image(gain=10.0)
    ig = create_attribution("igos++", net, modality="image", iterations=6, ig_steps=8, size=8, seed=1)
    s = ig.attribute(x, target=0)
    assert s.shape == (1, 16, 16) and float(s.min()) >= 0 and float(s.max()) <= 1
    r = torch.from_numpy(REGION)
    inside, outside = float(s[0][r].mean()), float(s[0][~r].mean())
    assert inside > 0.05 and inside > 5 * outside
    assert torch.equal(s, ig.attribute(x, target=0))
    other = create_attribution("igos++", net, modality="image", iterations=6, ig_steps=8, size=8, seed=2)
    assert not torch.equal(s, other.attribute(x, target=0))
    assert ig.settings((64, 64))["size"] == (8, 8)
    assert create_attribution("igos++", net, modality="image").settings((224, 224))["size"] == (28, 28)
