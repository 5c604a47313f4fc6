"""Mask metrics (Stalder et al.) against direct numpy computations, and the trivial rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pointlens.errors import InvalidArgumentError
from pointlens.metrics.masks import (
    THRESHOLDS,
    class_specific,
    mask_mae,
    mask_metrics,
    mean_iou,
    present_mask,
    saliency_metric,
    soft_accuracy,
    trivial_masks,
)


def _random(b=4, n=50, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.random((b, n))
    s[:, :5] = [0.1, 0.5, 0.9, 0.3, 0.7]  # values exactly at thresholds: strict > must exclude them
    m = rng.random((b, n)) < 0.3
    return s, m


def test_soft_accuracy_and_mae_against_numpy():
    s, m = _random()
    acc = [(np.sum(m[i] * s[i]) + np.sum((1 - m[i]) * (1 - s[i]))) / s.shape[1] for i in range(len(s))]
    mae = [np.mean(np.abs(s[i] - m[i])) for i in range(len(s))]
    assert np.allclose(soft_accuracy(s, m).numpy(), acc, atol=1e-12)
    assert np.allclose(mask_mae(s, m).numpy(), mae, atol=1e-12)


def test_mean_iou_against_numpy_with_strict_thresholds():
    s, m = _random()
    want = []
    for i in range(len(s)):
        ious = []
        for t in [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]:
            a = s[i] > t
            b = m[i].astype(float) > t
            ious.append(np.sum(a & b) / np.sum(a | b))
        want.append(np.mean(ious))
    assert np.allclose(mean_iou(s, m).numpy(), want, atol=1e-12)
    assert THRESHOLDS == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    # strictness: a mask of exactly 0.5 on the ground truth counts only for t < 0.5 (4 of 9 thresholds)
    gt = np.array([[True, True, False, False]])
    assert float(mean_iou(np.where(gt, 0.5, 0.0), gt)) == pytest.approx(4 / 9)


def test_trivial_rows_score_as_they_must():
    _, m = _random(seed=1)
    frac = m.mean(1)
    t = trivial_masks(m[:, None, :])
    gt = t["ground-truth"][:, 0]
    assert np.allclose(mean_iou(gt, m).numpy(), 1.0) and np.allclose(mask_mae(gt, m).numpy(), 0.0)
    assert np.allclose(soft_accuracy(gt, m).numpy(), 1.0)
    z, h, o = t["all-0"][:, 0], t["all-0.5"][:, 0], t["all-1"][:, 0]
    assert np.allclose(soft_accuracy(z, m).numpy(), 1 - frac) and np.allclose(mask_mae(z, m).numpy(), frac)
    assert np.allclose(mean_iou(z, m).numpy(), 0.0)
    assert np.allclose(soft_accuracy(o, m).numpy(), frac) and np.allclose(mean_iou(o, m).numpy(), frac)
    assert np.allclose(mask_mae(h, m).numpy(), 0.5) and np.allclose(soft_accuracy(h, m).numpy(), 0.5)
    assert np.allclose(mean_iou(h, m).numpy(), 4 / 9 * frac)


class AxisModel(nn.Module):
    """Two classes: logit 0 = the largest x, logit 1 = minus the smallest x."""

    def forward(self, x):
        return torch.stack([x[..., 0].amax(1), -x[..., 0].amin(1)], 1)


def _line():
    return torch.tensor([[[-2.0, 0, 0], [-1, 0, 0], [1, 0, 0], [2, 0, 0], [0, 0, 0]]])  # median 0


def test_saliency_metric_against_direct_formula():
    x = _line()
    s = torch.tensor([[0.0, 0.0, 1.0, 1.0, 0.0]])  # keeps the positive points: logits [2, 0]
    got = float(saliency_metric(AxisModel(), x, s, torch.tensor([[True, False]])))
    p0 = np.exp(2) / (np.exp(2) + np.exp(0))
    assert got == pytest.approx(np.log(0.4) - np.log(p0), abs=1e-9)
    # area floored at 0.05: an empty mask collapses the cloud (logits [0, 0], p = 0.5)
    got0 = float(saliency_metric(AxisModel(), x, torch.zeros(1, 5), torch.tensor([[True, False]])))
    assert got0 == pytest.approx(np.log(0.05) - np.log(0.5), abs=1e-9)
    # both classes present: the probabilities are summed (to 1 here)
    got2 = float(saliency_metric(AxisModel(), x, s, torch.tensor([[True, True]])))
    assert got2 == pytest.approx(np.log(0.4), abs=1e-9)


def test_class_specific_check():
    x = _line()
    own = torch.tensor([[[0.0, 0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0, 0.0]]])  # class 0 right, class 1 left
    both = torch.tensor([[True, True]])
    assert float(class_specific(AxisModel(), x, own, both)) == 1.0
    assert float(class_specific(AxisModel(), x, own.flip(1), both)) == 0.0
    # the same mask for both classes: one of the two ordered pairs wins
    same = torch.tensor([[[1.0, 1.0, 1.0, 0.5, 0.0]] * 2])
    assert float(class_specific(AxisModel(), x, same, both)) == 0.5
    # a single present class: undefined
    assert np.isnan(float(class_specific(AxisModel(), x, own, torch.tensor([[True, False]]))))


def test_mask_metrics_present_union_and_errors():
    x = _line().repeat(2, 1, 1)
    truth = torch.tensor([[[0, 0, 1, 1, 0], [1, 1, 0, 0, 0]]] * 2).bool()
    present = torch.tensor([[True, True], [True, False]])
    masks = truth.float()
    out = mask_metrics(AxisModel(), x, masks, present, truth)
    assert out["miou"] == pytest.approx(1.0) and out["mae"] == pytest.approx(0.0)
    assert out["class_specific"] == 1.0  # only the first cloud has two present classes
    assert torch.equal(present_mask(masks, present)[1], masks[1, 0])
    with pytest.raises(InvalidArgumentError):
        soft_accuracy(np.full((1, 3), 1.5), np.ones((1, 3), bool))
    with pytest.raises(InvalidArgumentError):
        mask_mae(np.zeros((1, 3)), np.ones((1, 4), bool))
