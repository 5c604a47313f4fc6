"""The explainer objective: every term against a hand-computed value, the point modality's masking and graph TV."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from pointlens.errors import InvalidArgumentError
from pointlens.explainer import (
    Modality,
    ObjectiveWeights,
    PointModality,
    RTISWeights,
    apply_point_mask,
    area_bounds,
    class_masks,
    classification_loss,
    knn_total_variation,
    negative_entropy,
    rtis_objective,
    stalder_objective,
)
from pointlens.ops.removal import cloud_centre


def logit(p):
    p = torch.as_tensor(p, dtype=torch.float64)
    return torch.log(p) - torch.log1p(-p)


class MeanLinear(nn.Module):
    """Logits = W · [mean of x, mean of |x|] + b: depends on where the points are (so masking matters)."""

    def __init__(self, c=3):
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.w = nn.Parameter(torch.randn(6, c, generator=g, dtype=torch.float64))
        self.b = nn.Parameter(torch.randn(c, generator=g, dtype=torch.float64))

    def forward(self, x):
        f = torch.cat([x.mean(1), x.abs().mean(1)], 1)
        return f @ self.w + self.b


def test_area_bounds_sorted_values_by_hand():
    # one cloud, 4 points, two classes; class 0 present with values 0.3, 0.9, 0.2, 0.4 (unsorted)
    v0 = [0.3, 0.9, 0.2, 0.4]
    v1 = [0.6, 0.7, 0.8, 0.1]
    s = logit([[v0, v1]])
    # a_min = 0.5 -> r_min = [1, 1, 0, 0]; a_max = 0.75 -> r_max = [1, 1, 1, 0]; sorted v0 = [.9, .4, .3, .2]
    # relu(r_min - v) = [.1, .6, 0, 0]; relu(v - r_max) = [0, 0, 0, .2] -> mean = .9 / 4
    a = area_bounds(s, [[True, False]], a_min=0.5, a_max=0.75)
    assert float(a) == pytest.approx(0.225, abs=1e-12)
    # class 1 present too: sorted [.8, .7, .6, .1]: relu(r_min - v) = [.2, .3, 0, 0]; relu(v - r_max) = [0, 0, 0, .1]
    a2 = area_bounds(s, [[True, True]], a_min=0.5, a_max=0.75)
    assert float(a2) == pytest.approx(0.225 + 0.6 / 4, abs=1e-12)  # summed over present classes
    # batch of the two clouds: averaged over the batch
    sb = torch.cat([s, s])
    a3 = area_bounds(sb, [[True, False], [True, True]], a_min=0.5, a_max=0.75)
    assert float(a3) == pytest.approx((0.225 + 0.375) / 2, abs=1e-12)
    # floor(a * N): a_min = 0.3 of 4 points -> 1 entry, a_max = 0.6 -> 2 entries
    # sorted v0 [.9, .4, .3, .2]: relu([1,0,0,0] - v) = [.1, 0, 0, 0]; relu(v - [1,1,0,0]) = [0, 0, .3, .2]
    a4 = area_bounds(s, [[True, False]], a_min=0.3, a_max=0.6)
    assert float(a4) == pytest.approx(0.6 / 4, abs=1e-12)


def test_negative_entropy_by_hand():
    z = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]], dtype=torch.float64)
    # softmax rows: [.25, .75] and [.5, .5]; mean over the 4 elements of p log p
    want = (0.25 * math.log(0.25) + 0.75 * math.log(0.75) + 2 * 0.5 * math.log(0.5)) / 4
    assert float(negative_entropy(z)) == pytest.approx(want, abs=1e-12)
    # a one-hot distribution: p log p with p clamped: 0 (not NaN)
    assert float(negative_entropy(torch.tensor([[0.0, -1e4]], dtype=torch.float64))) == pytest.approx(0, abs=1e-12)


def test_classification_loss_by_hand():
    z = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64)
    y = torch.tensor([[True, False, True]])
    sig = 1 / (1 + np.exp(-z.numpy()[0]))
    want = -(np.log(sig[0]) + np.log(1 - sig[1]) + np.log(sig[2])) / 3
    assert float(classification_loss(z, y, multilabel=True)) == pytest.approx(want, abs=1e-12)
    y1 = torch.tensor([[False, False, True]])
    e = np.exp(z.numpy()[0])
    assert float(classification_loss(z, y1, multilabel=False)) == pytest.approx(-np.log(e[2] / e.sum()), abs=1e-12)
    with pytest.raises(InvalidArgumentError):
        classification_loss(z, y, multilabel=False)


def test_class_masks_max_over_present_and_absent():
    s = torch.tensor([[[0.0, 2.0], [1.0, -1.0], [-3.0, 4.0]]], dtype=torch.float64)  # (1, 3, 2)
    m_t, m_nt = class_masks(s, [[True, True, False]])
    assert torch.allclose(m_t, torch.sigmoid(torch.tensor([[1.0, 2.0]], dtype=torch.float64)))
    assert torch.allclose(m_nt, torch.sigmoid(torch.tensor([[-3.0, 4.0]], dtype=torch.float64)))
    _, m_nt_all = class_masks(s, [[True, True, True]])
    assert torch.equal(m_nt_all, torch.zeros_like(m_nt_all))  # nothing absent: no non-target mask
    with pytest.raises(InvalidArgumentError):
        class_masks(s, [[False, False, False]])


def test_knn_total_variation_by_hand():
    # points on a line at x = 0, 1, 3, 6: nearest neighbours (self excluded) 0->1, 1->0, 3->1, 6->3
    pts = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [3, 0, 0], [6, 0, 0]]])
    st = PointModality(k=1).prepare(pts)
    assert st.neighbours[0, :, 0].tolist() == [1, 0, 1, 2]
    m = torch.tensor([[0.0, 1.0, 0.5, 0.25]])
    # |0-1| + |1-0| + |0.5-1| + |0.25-0.5| = 2.75, mean over 4 edges
    assert float(PointModality(k=1).smoothness(m, st)) == pytest.approx(0.6875)
    # constant masks have no variation; (B, C, N) masks average over the C masks
    assert float(knn_total_variation(torch.full((1, 4), 0.3), st.neighbours)) == 0.0
    both = knn_total_variation(torch.stack([m, torch.zeros_like(m)], 1), st.neighbours)
    assert float(both) == pytest.approx(0.6875 / 2)


def test_all_ones_changes_nothing_all_zeros_collapses_to_centre():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 17, 3, generator=g)
    ones = apply_point_mask(x, torch.ones(3, 17), "median")
    assert torch.equal(ones, x)  # bit for bit
    zeros = apply_point_mask(x, torch.zeros(3, 17), "median")
    c = cloud_centre(x, "median")
    assert torch.equal(zeros, c.expand_as(x))
    # a half mask puts every point half way to the centre
    half = apply_point_mask(x, torch.full((3, 17), 0.5), "median")
    assert torch.allclose(half, c + 0.5 * (x - c), atol=1e-6)
    mod = PointModality(k=4, centre="mean")
    st = mod.prepare(x)
    assert torch.equal(mod.apply(x, torch.zeros(3, 17), st), x.mean(1, keepdim=True).expand_as(x))
    assert isinstance(mod, Modality)


def _numpy_objective(model, x, s, present, w, k):
    """The objective recomputed term by term with numpy / plain torch ops, independent of the module."""
    xn = x.numpy()
    sn = s.detach().numpy()
    pn = np.asarray(present)
    b, c, n = sn.shape
    sig = 1 / (1 + np.exp(-sn))
    m_t = np.array([sig[i][pn[i]].max(0) for i in range(b)])
    m_nt = np.array([sig[i][~pn[i]].max(0) if (~pn[i]).any() else np.zeros(n) for i in range(b)])
    cen = np.median(xn, axis=1, keepdims=True)
    x_t = cen + m_t[..., None] * (xn - cen)
    x_bg = cen + (1 - m_t[..., None]) * (xn - cen)
    with torch.no_grad():
        z_t = model(torch.from_numpy(x_t)).numpy()
        z_bg = model(torch.from_numpy(x_bg)).numpy()
    sg = 1 / (1 + np.exp(-z_t))
    lc = -np.mean(pn * np.log(sg) + (1 - pn) * np.log(1 - sg))
    pb = np.exp(z_bg) / np.exp(z_bg).sum(1, keepdims=True)
    le = np.mean(pb * np.log(pb))
    area = 0.0
    for i in range(b):
        for j in range(c):
            if pn[i, j]:
                v = np.sort(sig[i, j])[::-1]
                rmin = (np.arange(n) < np.floor(w.a_min * n)).astype(float)
                rmax = (np.arange(n) < np.floor(w.a_max * n)).astype(float)
                area += np.mean(np.maximum(rmin - v, 0) + np.maximum(v - rmax, 0))
    area /= b
    tv = 0.0
    for i in range(b):
        d = ((xn[i][:, None] - xn[i][None]) ** 2).sum(-1)
        np.fill_diagonal(d, np.inf)
        nb = np.argsort(d, 1)[:, :k]
        tv += np.abs(m_t[i][nb] - m_t[i][:, None]).mean() + np.abs(m_nt[i][nb] - m_nt[i][:, None]).mean()
    tv /= b
    total = lc + w.entropy * le + w.area * area + w.tv * tv + w.target * m_t.mean() + w.non_target * m_nt.mean()
    return total, dict(classification=lc, entropy=le, area=area, tv=tv, target_area=m_t.mean(),
                       non_target_area=m_nt.mean())


def test_stalder_objective_matches_term_by_term_reference():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 9, 3, generator=g, dtype=torch.float64)
    s = torch.randn(2, 3, 9, generator=g, dtype=torch.float64)
    present = [[True, False, True], [False, True, False]]
    model = MeanLinear(3)
    w = ObjectiveWeights(entropy=0.7, tv=1.3, area=0.9, target=0.2, non_target=0.4, a_min=0.2, a_max=0.5)
    out = stalder_objective(model, PointModality(k=3), x, s, present, weights=w, multilabel=True)
    total, terms = _numpy_objective(model, x, s, present, w, 3)
    got = out.as_floats()
    for name, v in terms.items():
        assert got[name] == pytest.approx(v, abs=1e-9), name
    assert got["total"] == pytest.approx(total, abs=1e-9)


def test_objective_gradient_reaches_mask_logits():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 8, 3, generator=g, dtype=torch.float64)
    s = torch.randn(2, 3, 8, generator=g, dtype=torch.float64, requires_grad=True)
    model = MeanLinear(3)
    for p in model.parameters():
        p.requires_grad_(False)
    mod = PointModality(k=3)
    st = mod.prepare(x)

    def f(logits):
        return stalder_objective(model, mod, x, logits, [[True, False, False], [False, True, True]],
                                 state=st).total

    assert torch.autograd.gradcheck(f, (s,), eps=1e-6, atol=1e-5)


def test_single_label_uses_cross_entropy():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 6, 3, generator=g, dtype=torch.float64)
    s = torch.randn(2, 3, 6, generator=g, dtype=torch.float64)
    present = torch.tensor([[False, True, False], [True, False, False]])
    model = MeanLinear(3)
    mod = PointModality(k=2)
    out = stalder_objective(model, mod, x, s, present, multilabel=False)
    m_t, _ = class_masks(s, present)
    z = model(mod.apply(x, m_t, mod.prepare(x)))
    want = torch.nn.functional.cross_entropy(z, torch.tensor([1, 0]))
    assert float(out.terms["classification"].detach()) == pytest.approx(float(want.detach()), abs=1e-12)


def test_rtis_terms_by_hand():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 5, 3, generator=g, dtype=torch.float64)
    s = torch.randn(1, 2, 5, generator=g, dtype=torch.float64)
    present = [[True, False]]
    model = MeanLinear(2)
    mod = PointModality(k=2)
    w = RTISWeights(tv=0.1, area=2.0, area_power=0.5, preserve=0.7, destroy=1.5, destroy_power=2.0)
    out = rtis_objective(model, mod, x, s, present, weights=w, multilabel=False)
    st = mod.prepare(x)
    m = torch.sigmoid(s[:, 0])
    p_keep = torch.softmax(model(mod.apply(x, m, st)), 1)[0, 0]
    p_bg = torch.softmax(model(mod.apply(x, 1 - m, st)), 1)[0, 0]
    area = (m.mean() + 5e-4) ** 0.5
    tv = float(mod.smoothness(m, st))
    want = 0.1 * tv + 2.0 * area - 0.7 * torch.log(p_keep) + 1.5 * p_bg ** 2
    assert float(out.total.detach()) == pytest.approx(float(want.detach()), abs=1e-12)


def test_weights_presets_and_checks():
    assert ObjectiveWeights() == ObjectiveWeights.preset("vgg16")
    r = ObjectiveWeights.preset("resnet50")
    assert (r.entropy, r.tv, r.area, r.target, r.non_target) == (3.0, 1.0, 0.8, 0.01, 0.3)
    with pytest.raises(InvalidArgumentError):
        ObjectiveWeights(a_min=0.5, a_max=0.2).validate()
    with pytest.raises(InvalidArgumentError):
        ObjectiveWeights.preset("vit")
