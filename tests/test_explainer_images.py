"""The image explainer: masking and grid TV against hand-computed values, the shared objective on images, the U-Net,
training with exact resume, save/load, masks of attributions, and the metric table on images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from image_helpers import TinyCNN, tiny_images
from pointlens.errors import InvalidArgumentError
from pointlens.explainer import (
    ExplainerConfig,
    ImageModality,
    Modality,
    ObjectiveWeights,
    attribution_masks,
    class_truth,
    create_explainer_network,
    evaluate_methods,
    explain_masks,
    grid_total_variation,
    load_explainer,
    stalder_objective,
    train_explainer,
)
from pointlens.metrics.masks import apply_image_mask, class_specific, saliency_metric


# ------------------------------------------------------------------------------------------------ modality by hand
def test_apply_by_hand_and_exact_ends():
    x = torch.tensor([[[[0.2, 0.4], [0.6, 0.8]], [[1.0, 0.5], [0.25, 0.0]], [[0.1, 0.2], [0.3, 0.4]]]])
    m = torch.tensor([[[1.0, 0.5], [0.0, 0.25]]])
    mod = ImageModality()
    out = mod.apply(x, m, mod.prepare(x))
    want = torch.tensor([[[[0.2, 0.2], [0.0, 0.2]], [[1.0, 0.25], [0.0, 0.0]], [[0.1, 0.1], [0.0, 0.1]]]])
    assert torch.allclose(out, want, atol=1e-7)  # m broadcast over the 3 channels
    assert torch.equal(mod.apply(x, torch.ones(1, 2, 2), None), x)  # bit for bit
    assert torch.equal(mod.apply(x, torch.zeros(1, 2, 2), None), torch.zeros_like(x))
    grey = ImageModality(fill="grey")
    g = grey.apply(x, m, grey.prepare(x))
    assert torch.allclose(g, m.unsqueeze(1) * x + (1 - m.unsqueeze(1)) * 0.5, atol=1e-7)
    blur = ImageModality(fill="blur", blur_sigma=1.0)
    const = torch.full((1, 3, 6, 5), 0.3)
    assert torch.allclose(blur.prepare(const).background, const, atol=1e-6)  # a constant image blurs to itself
    assert isinstance(mod, Modality)
    with pytest.raises(InvalidArgumentError):
        apply_image_mask(x, torch.ones(1, 3, 3))
    with pytest.raises(InvalidArgumentError):
        ImageModality(fill="noise")


def test_grid_total_variation_by_hand():
    m = torch.tensor([[[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]])
    # right differences (padded column 3 reflects column 1): row 0: 1, 1, 1; rows 1, 2: 0 -> 3 / 9
    # down differences (padded row 3 reflects row 1): column 0: 0, 1, 1; column 1: 1, 1, 1; column 2: 0, 1, 1 -> 7 / 9
    assert float(grid_total_variation(m)) == pytest.approx(10 / 9, abs=1e-7)
    assert float(ImageModality().smoothness(m, None)) == pytest.approx(10 / 9, abs=1e-7)
    # the authors' form: 3x3 difference filters, reflection padding 1, mean of |right| + |down| over the pixels
    g = torch.Generator().manual_seed(0)
    r = torch.rand(4, 5, 7, generator=g)
    convs = []
    for k in ([[0, 0, 0], [0, 1, -1], [0, 0, 0]], [[0, 0, 0], [0, 1, 0], [0, -1, 0]]):
        conv = nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect", bias=False)
        conv.weight.data = torch.tensor(k, dtype=torch.float32).view(1, 1, 3, 3)
        convs.append(conv)
    with torch.no_grad():
        ref = (convs[0](r.unsqueeze(1)).abs() + convs[1](r.unsqueeze(1)).abs()).mean((1, 2, 3))
    assert torch.allclose(grid_total_variation(r), ref, atol=1e-6)
    # constant masks have no variation; (B, C, H, W) masks average over C
    assert float(grid_total_variation(torch.full((1, 4, 4), 0.7))) == 0.0
    both = grid_total_variation(torch.stack([m, torch.zeros_like(m)], 1))
    assert float(both) == pytest.approx(5 / 9, abs=1e-7)
    with pytest.raises(InvalidArgumentError):
        grid_total_variation(torch.zeros(1, 1, 5))


# ------------------------------------------------------------------------------------- the objective on images
class PixelLinear(nn.Module):
    """Logits = W · flatten(x) + b (float64): every pixel matters, so masking changes the output."""

    def __init__(self, d, c=3):
        super().__init__()
        g = torch.Generator().manual_seed(7)
        self.w = nn.Parameter(torch.randn(d, c, generator=g, dtype=torch.float64) * 0.3)
        self.b = nn.Parameter(torch.randn(c, generator=g, dtype=torch.float64))

    def forward(self, x):
        return x.flatten(1) @ self.w + self.b


def _numpy_tv(m):
    h, w = m.shape
    p = np.pad(m, ((0, 1), (0, 1)), mode="reflect")
    return np.abs(p[:h, 1:] - m).mean() + np.abs(p[1:, :w] - m).mean()


def test_stalder_objective_on_images_term_by_term():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 4, 5, generator=g, dtype=torch.float64)
    s = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
    present = [[True, False, True], [False, True, False]]
    model = PixelLinear(60)
    w = ObjectiveWeights(entropy=0.7, tv=1.3, area=0.9, target=0.2, non_target=0.4, a_min=0.2, a_max=0.5)
    got = stalder_objective(model, ImageModality(), x, s, present, weights=w).as_floats()
    xn, sn, pn = x.numpy(), s.numpy(), np.asarray(present)
    sig = 1 / (1 + np.exp(-sn))
    m_t = np.stack([sig[i][pn[i]].max(0) for i in range(2)])
    m_nt = np.stack([sig[i][~pn[i]].max(0) for i in range(2)])
    with torch.no_grad():
        z_t = model(torch.from_numpy(xn * m_t[:, None])).numpy()
        z_bg = model(torch.from_numpy(xn * (1 - m_t[:, None]))).numpy()
    sg = 1 / (1 + np.exp(-z_t))
    lc = -np.mean(pn * np.log(sg) + (1 - pn) * np.log(1 - sg))
    pb = np.exp(z_bg) / np.exp(z_bg).sum(1, keepdims=True)
    le = np.mean(pb * np.log(pb))
    area = 0.0
    for i in range(2):
        for c in np.flatnonzero(pn[i]):
            v = np.sort(sig[i, c].ravel())[::-1]
            k = np.arange(20)
            area += np.mean(np.maximum((k < 4) - v, 0) + np.maximum(v - (k < 10), 0))  # floor(.2*20), floor(.5*20)
    area /= 2
    tv = np.mean([_numpy_tv(m_t[i]) + _numpy_tv(m_nt[i]) for i in range(2)])
    want = dict(classification=lc, entropy=le, area=area, tv=tv, target_area=m_t.mean(), non_target_area=m_nt.mean())
    for k, v in want.items():
        assert got[k] == pytest.approx(v, abs=1e-9), k
    total = lc + 0.7 * le + 0.9 * area + 1.3 * tv + 0.2 * m_t.mean() + 0.4 * m_nt.mean()
    assert got["total"] == pytest.approx(total, abs=1e-9)


def test_image_objective_gradient_reaches_mask_logits():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 3, 3, 4, generator=g, dtype=torch.float64)
    s = torch.randn(2, 3, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    model = PixelLinear(36)
    for p in model.parameters():
        p.requires_grad_(False)
    mod = ImageModality(fill="grey")

    def f(logits):
        return stalder_objective(model, mod, x, logits, [[True, False, False], [False, True, True]]).total

    assert torch.autograd.gradcheck(f, (s,), eps=1e-6, atol=1e-5)


# ----------------------------------------------------------------------------------------------------- the U-Net
def test_unet_shapes_and_size_check():
    net = create_explainer_network("unet", 4, width=4, depth=2).eval()
    for h, w in ((8, 12), (16, 16)):
        assert net(torch.rand(2, 3, h, w)).shape == (2, 4, h, w)
    with pytest.raises(InvalidArgumentError, match="divisible by 2\\^depth = 4"):
        net(torch.rand(1, 3, 10, 8))
    with pytest.raises(InvalidArgumentError):
        create_explainer_network("unet", 4, kernel=5)
    # the default size: small enough to train on a CPU (parameters counted)
    n = sum(p.numel() for p in create_explainer_network("unet", 10).parameters())
    assert 100_000 < n < 600_000


# ------------------------------------------------------------------------------ training, resume, save and load
@pytest.fixture(scope="module")
def images():
    return tiny_images(24, 16)


@pytest.fixture(scope="module")
def cnn():
    return TinyCNN(3).eval()


def _cfg(**kw):
    base = dict(network_kwargs={"width": 4, "depth": 2}, epochs=3, batch_size=4, patience=10, seed=3)
    base.update(kw)
    return ExplainerConfig(**base)


def test_image_training_resume_is_exact_and_round_trips(tmp_path, images, cnn):
    full = train_explainer(_cfg(), cnn, images, out_dir=tmp_path / "full")
    train_explainer(_cfg(), cnn, images, out_dir=tmp_path / "part", stop_after=1)
    resumed = train_explainer(_cfg(), cnn, images, out_dir=tmp_path / "part", resume=True)
    a, b = full.network.state_dict(), resumed.network.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["val"]["total"] for r in full.history] == [r["val"]["total"] for r in resumed.history]
    loaded = load_explainer(tmp_path / "full")
    assert loaded.modality == "image" and loaded.config.network == "unet" and loaded.meta["image_size"] == [16, 16]
    la = loaded.network.state_dict()
    assert all(torch.equal(a[k], la[k]) for k in a)
    m = explain_masks(loaded.network, images.images[:5])
    assert m.shape == (5, 3, 16, 16) and float(m.min()) >= 0 and float(m.max()) <= 1
    with pytest.raises(InvalidArgumentError):  # resuming with another fill is refused
        train_explainer(_cfg(fill="grey"), cnn, images, out_dir=tmp_path / "part", resume=True)


def test_image_config_checks(tmp_path, images, cnn):
    with pytest.raises(InvalidArgumentError, match="unet"):
        train_explainer(_cfg(network="pointnet-seg", network_kwargs={}), cnn, images)
    with pytest.raises(InvalidArgumentError, match="modality"):
        train_explainer(_cfg(modality="points"), cnn, images)
    with pytest.raises(InvalidArgumentError, match="divisible"):
        train_explainer(_cfg(network_kwargs={"width": 4, "depth": 5}), cnn, images)
    cfg = _cfg().resolved("image")
    assert (cfg.modality, cfg.network) == ("image", "unet")
    assert ExplainerConfig().resolved("points").network == "pointnet-seg"


# ------------------------------------------------------------------------------------ baselines, metrics, table
class _Brightness:
    """A fake image attribution: the pixel's brightness in the target's colour channel."""

    def __init__(self, model, **options):
        self.options = options

    def attribute(self, x, target=None):
        return x[torch.arange(len(x)), torch.as_tensor(target)]


def test_attribution_masks_of_images(monkeypatch, images, cnn):
    import pointlens.attribution as attribution

    seen = {}

    def fake_create(name, model, *, modality=None, **options):
        seen["modality"] = modality
        return _Brightness(model, **options)

    monkeypatch.setattr(attribution, "create_attribution", fake_create)
    present = torch.from_numpy(images.labels[:6] > 0.5)
    m = attribution_masks("fake", cnn, images.images[:6], present, batch_size=2)
    assert seen["modality"] == "image" and m.shape == (6, 3, 16, 16)
    assert torch.all(m[~present] == 0)
    x = torch.from_numpy(images.images[:6])
    for b, c in zip(*torch.nonzero(present, as_tuple=True)):
        s = x[b, c]
        assert torch.allclose(m[b, c], (s - s.min()) / (s.max() - s.min()), atol=1e-6)  # per-image min-max
        assert torch.all(m[b, c][torch.from_numpy(images.masks[b, c])] == 1)  # the square is the brightest


def test_image_mask_metrics_by_hand():
    x = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]], [[0.0, 0.0]]]])  # (1, 3, 1, 2)
    # logits = (red at pixel 0, green at pixel 1): class 0 lives in pixel 0, class 1 in pixel 1

    class TwoPixels(nn.Module):
        def forward(self, t):
            return torch.stack([t[:, 0, 0, 0], t[:, 1, 0, 1]], 1)

    model = TwoPixels()
    present = torch.tensor([[True, True]])
    s = torch.tensor([[[1.0, 0.0]]])
    # kept: softmax([1, 0]) summed over both present classes = 1; area 0.5
    assert float(saliency_metric(model, x, s, present)) == pytest.approx(np.log(0.5), abs=1e-9)
    own = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])  # each class's own pixel
    swapped = own.flip(1)
    assert float(class_specific(model, x, own, present)) == 1.0
    assert float(class_specific(model, x, swapped, present)) == 0.0


def test_evaluate_methods_on_images(images, cnn):
    net = create_explainer_network("unet", 3, width=4, depth=2).eval()
    sub = images.subset(slice(0, 6))
    truth = class_truth(sub)
    assert truth.shape == (6, 3, 16, 16) and np.array_equal(truth, sub.masks)
    table, masks = evaluate_methods(cnn, sub, ["explainer"], networks={"explainer": net})
    assert list(table) == ["all-0", "all-0.5", "all-1", "ground-truth", "explainer"]
    gt = table["ground-truth"]
    assert gt["miou"] == pytest.approx(1.0) and gt["mae"] == 0.0 and gt["accuracy"] == 1.0
    cover = float(np.mean([sub.masks[i][sub.labels[i] > 0.5].any(0).mean() for i in range(6)]))
    assert table["all-1"]["accuracy"] == pytest.approx(cover, abs=1e-9)  # all-1: right exactly on the objects
    assert table["all-0"]["mae"] == pytest.approx(cover, abs=1e-9)
    assert masks["explainer"].shape == (6, 3, 16, 16)
    # the modality's apply is what the saliency metric masks with: grey fill changes the all-0 row's saliency
    grey, _ = evaluate_methods(cnn, sub, [], modality=ImageModality(fill="grey"))
    assert grey["all-0"]["saliency"] != pytest.approx(table["all-0"]["saliency"])
