"""Mask metrics of Stalder et al. (NeurIPS 2022; docs/methods.md §3) for per-class masks in ``[0, 1]``.

Per input, with ``s`` the mask of the PRESENT classes (the maximum over their per-class masks, as the
explainer's target mask ``m_t``) and ``m`` the ground truth of the present classes (bool):

* :func:`soft_accuracy` ``= [Σ m s + Σ (1 - m)(1 - s)] / #elements`` (higher is better);
* :func:`mask_mae` ``= mean |s - m|`` (lower is better);
* :func:`mean_iou`: binarise ``s`` and ``m`` with a strict ``> t`` for ``t = 0.1, ..., 0.9`` and average the
  IoU over ``t`` (higher is better; an empty union counts as IoU 1: both masks agree that nothing is there);
* :func:`saliency_metric` ``= log(max(mean(s), 0.05)) - log Σ_{c present} softmax(f(apply(x, s)))_c``
  (lower is better: a small mask that keeps the present classes' probability);
* :func:`class_specific`: for inputs with two or more present classes, class ``c``'s OWN mask applied alone
  must keep ``c`` rather than another present class ``c'``: the share of ordered pairs ``(c, c')`` with
  ``logit_c > logit_c'`` on ``apply(x, s_c)`` (comparing logits is comparing softmax or sigmoid
  probabilities). Same mask for every class gives 0.5 (one of each pair wins), a class-specific explainer
  approaches 1.

Inputs are point clouds ``(B, N, 3)`` with masks ``(B, C, N)``, or images ``(B, 3, H, W)`` with masks
``(B, C, H, W)``. Unless another ``apply`` is passed, masks are applied with point shifting to the centre,
``x' = c + s (x - c)`` (:func:`pointlens.ops.removal.apply_point_mask`), for clouds, and by multiplication,
``x' = s ⊙ x`` (:func:`apply_image_mask`, the paper's masking), for images.
:func:`trivial_masks` builds the rows every table shows beside the methods: all 0, all 0.5, all 1 and the ground
truth itself.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pointlens.errors import bad_argument
from pointlens.models.hooks import model_device
from pointlens.ops.removal import apply_point_mask

THRESHOLDS = tuple(round(0.1 * i, 1) for i in range(1, 10))
AREA_FLOOR = 0.05
METRIC_NAMES = ("accuracy", "mae", "miou", "saliency", "class_specific")
TRIVIAL = ("all-0", "all-0.5", "all-1", "ground-truth")


def _pair(s, m):
    s = torch.as_tensor(s, dtype=torch.float64)
    m = torch.as_tensor(m).to(s.device)
    if s.dim() == 1:
        s, m = s.unsqueeze(0), m.reshape(1, -1)
    if s.shape != m.shape:
        raise bad_argument("mask", f"shape {tuple(s.shape)}", f"the ground truth's shape {tuple(m.shape)}")
    if bool((s < 0).any()) or bool((s > 1).any()) or not bool(torch.isfinite(s).all()):
        raise bad_argument("mask", "values outside [0, 1]", "mask values in [0, 1]")
    return s.flatten(1), (m.flatten(1) > 0.5 if m.is_floating_point() else m.flatten(1).bool())


def soft_accuracy(mask, truth) -> torch.Tensor:
    """Soft accuracy per input. ``mask (B, ...)`` in [0, 1], ``truth (B, ...)`` bool -> ``(B,)`` float64."""
    s, m = _pair(mask, truth)
    mf = m.to(s.dtype)
    return ((mf * s).sum(1) + ((1 - mf) * (1 - s)).sum(1)) / s.shape[1]


def mask_mae(mask, truth) -> torch.Tensor:
    """Mean absolute error per input: ``mean |s - m|`` -> ``(B,)`` float64."""
    s, m = _pair(mask, truth)
    return (s - m.to(s.dtype)).abs().mean(1)


def mean_iou(mask, truth, thresholds=THRESHOLDS) -> torch.Tensor:
    """IoU of ``mask > t`` and ``truth > t`` averaged over the thresholds (strict ``>``) -> ``(B,)`` float64.

    An empty union (both binarised masks empty) counts as IoU 1.
    """
    s, m = _pair(mask, truth)
    mf = m.to(s.dtype)
    out = torch.zeros(s.shape[0], dtype=torch.float64, device=s.device)
    for t in thresholds:
        a, b = s > t, mf > t
        inter = (a & b).sum(1).to(torch.float64)
        union = (a | b).sum(1).to(torch.float64)
        out += torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))
    return out / len(thresholds)


def present_mask(masks, present) -> torch.Tensor:
    """The mask of the present classes: the maximum over them of the per-class masks.

    Args:
        masks: ``(B, C, N)`` (clouds) or ``(B, C, H, W)`` (images) per-class masks.
        present: ``(B, C)`` bool (at least one per input).

    Returns:
        ``(B, N)`` or ``(B, H, W)``.
    """
    masks = torch.as_tensor(masks)
    p = torch.as_tensor(present).bool().to(masks.device)
    if masks.dim() not in (3, 4) or tuple(p.shape) != tuple(masks.shape[:2]):
        raise bad_argument("masks/present", f"shapes {tuple(masks.shape)} and {tuple(p.shape)}",
                           "(B, C, N) or (B, C, H, W) and (B, C)")
    if not bool(p.any(1).all()):
        raise bad_argument("present", "an input without present classes", "at least one present class per input")
    return masks.masked_fill(~p.view(p.shape + (1,) * (masks.dim() - 2)), float("-inf")).amax(1)


def apply_image_mask(images: torch.Tensor, mask: torch.Tensor, background: torch.Tensor | None = None) -> torch.Tensor:
    """Images with a per-pixel mask applied: ``m ⊙ x`` (``background`` None) or ``m ⊙ x + (1 - m) ⊙ background``.

    Args:
        images: ``(B, 3, H, W)``.
        mask: ``(B, H, W)`` values in ``[0, 1]`` (1 keeps a pixel), broadcast over the channels.
        background: optional ``(B, 3, H, W)`` (or broadcastable) image a removed pixel blends towards.

    Returns:
        ``(B, 3, H, W)``; differentiable in ``mask``. Without a background an all-ones mask returns the images
        bit for bit and an all-zeros mask zeros.
    """
    if images.dim() != 4 or mask.dim() != 3 or tuple(mask.shape) != (images.shape[0], *images.shape[2:]):
        raise bad_argument("mask", f"shape {tuple(mask.shape)} for images {tuple(images.shape)}",
                           "(B, H, W) for (B, 3, H, W) images")
    m = mask.to(images.dtype).unsqueeze(1)
    if background is None:
        return images * m
    return torch.lerp(background.to(images.dtype), images, m)


def _apply_default(inputs, mask):
    if inputs.dim() == 4:  # images (B, 3, H, W)
        return apply_image_mask(inputs, mask)
    return apply_point_mask(inputs, mask, "median")


@torch.no_grad()
def _logits(model, x, batch_size):
    dev = model_device(model, x.device)
    return torch.cat([model(x[s:s + batch_size].to(dev)).detach().to(torch.float64).cpu()
                      for s in range(0, len(x), batch_size)])


def saliency_metric(model: nn.Module, points, mask, present, *, apply=None, batch_size: int = 64) -> torch.Tensor:
    """Saliency metric per input (lower is better).

    Args:
        model: the classifier (used as it is; call ``eval()`` first), ``(B, N, 3)`` or ``(B, 3, H, W)`` ->
            ``(B, C)``.
        points: ``(B, N, 3)`` clouds or ``(B, 3, H, W)`` images (clean inputs).
        mask: ``(B, N)`` or ``(B, H, W)`` mask of the present classes in [0, 1].
        present: ``(B, C)`` bool present classes.
        apply: ``apply(inputs, mask) -> masked inputs`` (default: shift to the median centre for clouds,
            ``m ⊙ x`` for images).
        batch_size: inputs per forward pass.

    Returns:
        ``(B,)`` float64 ``log(max(mean(s), 0.05)) - log Σ_{c present} softmax(f(apply(x, s)))_c``.
    """
    x = torch.as_tensor(points, dtype=torch.float32)
    s = torch.as_tensor(mask, dtype=torch.float32).to(x.device)
    p = torch.as_tensor(present).bool()
    masked = (apply or _apply_default)(x, s)
    prob = torch.softmax(_logits(model, masked, batch_size), 1)
    kept = (prob * p.to(prob.dtype)).sum(1).clamp_min(1e-300)
    area = s.to(torch.float64).flatten(1).mean(1).clamp_min(AREA_FLOOR).cpu()
    return torch.log(area) - torch.log(kept)


def class_specific(model: nn.Module, points, masks, present, *, apply=None, batch_size: int = 64) -> torch.Tensor:
    """Class-specific check per input: share of ordered present pairs ``(c, c')`` with ``logit_c > logit_c'``
    on the input masked by class ``c``'s own mask.

    Args:
        model: the classifier.
        points: ``(B, N, 3)`` clouds or ``(B, 3, H, W)`` images.
        masks: ``(B, C, N)`` or ``(B, C, H, W)`` per-class masks in [0, 1].
        present: ``(B, C)`` bool.
        apply: mask application (default: shift to the median centre / ``m ⊙ x``).
        batch_size: inputs per forward pass.

    Returns:
        ``(B,)`` float64 in [0, 1]; NaN for inputs with fewer than two present classes.
    """
    x = torch.as_tensor(points, dtype=torch.float32)
    m = torch.as_tensor(masks, dtype=torch.float32)
    p = torch.as_tensor(present).bool()
    out = torch.full((x.shape[0],), float("nan"), dtype=torch.float64)
    rows, cls = torch.nonzero(p[:, :] & (p.sum(1, keepdim=True) >= 2), as_tuple=True)
    if len(rows) == 0:
        return out
    masked = (apply or _apply_default)(x[rows], m[rows, cls].to(x.device))
    z = _logits(model, masked, batch_size)  # (R, C)
    wins = torch.zeros(x.shape[0], dtype=torch.float64)
    pairs = torch.zeros(x.shape[0], dtype=torch.float64)
    for r in range(len(rows)):
        b, c = int(rows[r]), int(cls[r])
        others = torch.nonzero(p[b], as_tuple=True)[0]
        others = others[others != c]
        wins[b] += float((z[r, c] > z[r, others]).sum())
        pairs[b] += len(others)
    ok = pairs > 0
    out[ok] = wins[ok] / pairs[ok]
    return out


def trivial_masks(truth) -> dict:
    """The anchor rows of every table: ``{"all-0", "all-0.5", "all-1", "ground-truth"}`` per-class masks.

    Args:
        truth: ``(B, C, N)`` or ``(B, C, H, W)`` bool per-class ground truth.

    Returns:
        ``{name: float32 masks of the truth's shape}``.
    """
    t = torch.as_tensor(truth).bool()
    return {"all-0": torch.zeros(t.shape), "all-0.5": torch.full(t.shape, 0.5), "all-1": torch.ones(t.shape),
            "ground-truth": t.float()}


def mask_metrics(model: nn.Module, points, masks, present, truth, *, apply=None, batch_size: int = 64) -> dict:
    """Every mask metric for one method, as means over the inputs.

    Args:
        model: the classifier (eval mode).
        points: ``(B, N, 3)`` clouds or ``(B, 3, H, W)`` images.
        masks: ``(B, C, N)`` / ``(B, C, H, W)`` per-class masks in [0, 1] (only the present classes' are read).
        present: ``(B, C)`` bool present classes.
        truth: per-class ground truth of the masks' shape, bool (the present classes' union is compared).
        apply: mask application (default: shift to the median centre / ``m ⊙ x``).
        batch_size: inputs per forward pass.

    Returns:
        ``{"accuracy", "mae", "miou", "saliency", "class_specific"}`` floats (``class_specific`` over inputs
        with two or more present classes; NaN if none), plus ``"per_input"``: the ``(B,)`` arrays.
    """
    m = torch.as_tensor(masks, dtype=torch.float32)
    p = torch.as_tensor(present).bool()
    s = present_mask(m, p)
    g = present_mask(torch.as_tensor(truth).float(), p) > 0.5
    per = {"accuracy": soft_accuracy(s, g), "mae": mask_mae(s, g), "miou": mean_iou(s, g),
           "saliency": saliency_metric(model, points, s, p, apply=apply, batch_size=batch_size),
           "class_specific": class_specific(model, points, m, p, apply=apply, batch_size=batch_size)}
    out = {k: float(np.nanmean(v.numpy())) if bool(torch.isfinite(v).any()) else float("nan")
           for k, v in per.items()}
    out["per_input"] = {k: v.numpy() for k, v in per.items()}
    return out
