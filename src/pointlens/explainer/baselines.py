"""Attribution methods turned into per-class masks, and the ground truth of each class, for the mask metrics.

Normalisation (the one used for every method and both modalities): for each input and each present class ``c``
the method's scores for target ``c`` are min-max scaled over the input's points (or pixels),
``(s - min s) / (max s - min s)``, to ``[0, 1]`` (a constant score vector gives 0.5 everywhere). Masks of absent
classes are 0. Scores keep their order (deletion curves are unchanged) and the most important point (pixel) of
each input gets 1; how much of the input a method marks depends on the shape of its score distribution, which is
what the area-sensitive metrics then measure.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pointlens.errors import bad_argument
from pointlens.utils.progress import progress


def minmax_normalise(scores: torch.Tensor) -> torch.Tensor:
    """Per-input min-max scaling to ``[0, 1]``: ``(B, N) -> (B, N)`` or ``(B, H, W) -> (B, H, W)`` (over all
    of an input's pixels); constant inputs become 0.5."""
    s0 = torch.as_tensor(scores, dtype=torch.float64)
    s = s0.flatten(1)
    lo = s.amin(1, keepdim=True)
    hi = s.amax(1, keepdim=True)
    span = hi - lo
    out = torch.where(span > 0, (s - lo) / span.clamp_min(1e-300), torch.full_like(s, 0.5)).float()
    return out.view(s0.shape)


def attribution_masks(method: str, model: nn.Module, points, present, *, options: dict | None = None,
                      batch_size: int = 16, desc: str | None = None) -> torch.Tensor:
    """Per-class masks of an attribution method of :mod:`pointlens.attribution`, for clouds or images.

    Args:
        method: a name of the registry: for clouds ``pointshift``, ``ig``, ``occlusion-knn``, ``rise``,
            ``gradcam``, ``random``, ...; for images (built with ``modality="image"``) ``gradcam``, ``rise``,
            ``gradient``, ``ig``, ``extremal``, ``igos++``.
        model: the classifier.
        points: clouds ``(B, N, 3)`` or images ``(B, 3, H, W)``.
        present: ``(B, C)`` bool present classes (each is explained as the target).
        options: the method's options.
        batch_size: inputs per ``attribute`` call.
        desc: progress-bar label.

    Returns:
        ``(B, C, N)`` or ``(B, C, H, W)`` float32 masks in ``[0, 1]`` (min-max normalised scores; 0 for absent
        classes).
    """
    from pointlens.attribution import create_attribution

    x = torch.as_tensor(points, dtype=torch.float32)
    p = torch.as_tensor(present).bool()
    if p.dim() != 2 or p.shape[0] != x.shape[0]:
        raise bad_argument("present", f"shape {tuple(p.shape)}", f"({x.shape[0]}, C)")
    if x.dim() == 4:  # images (B, 3, H, W): the image family of the registry, scores (B, H, W)
        method_obj = create_attribution(method, model, modality="image", **(options or {}))
        masks = torch.zeros(x.shape[0], p.shape[1], x.shape[2], x.shape[3])
    else:
        method_obj = create_attribution(method, model, **(options or {}))
        masks = torch.zeros(x.shape[0], p.shape[1], x.shape[1])
    rows, cls = torch.nonzero(p, as_tuple=True)
    for s in progress(range(0, len(rows), batch_size), desc=desc or method):
        r, c = rows[s:s + batch_size], cls[s:s + batch_size]
        scores = torch.as_tensor(method_obj.attribute(x[r], target=c))
        if tuple(scores.shape) != (len(r), *masks.shape[2:]):
            raise bad_argument(f"{method} scores", f"shape {tuple(scores.shape)}",
                               f"{(len(r), *masks.shape[2:])} (one score per point or pixel)")
        masks[r, c] = minmax_normalise(scores.detach().cpu())
    return masks


def class_truth(dataset, present=None) -> np.ndarray | None:
    """Per-class ground-truth masks ``(M, C, N)`` (clouds) or ``(M, C, H, W)`` (images) bool, or None when the
    data has no ground truth.

    Images: the dataset's per-class pixel masks (``ImageDataset.masks``; absent classes are empty). Scenes
    (``instance``/``instance_class``): the points of the objects of class ``c``. Single-label clouds with
    ``gt_mask``: the cloud's ground-truth points under its label (``present``'s class when given), other
    classes empty.
    """
    if getattr(dataset, "modality", "points") == "image":
        return None if dataset.masks is None else np.asarray(dataset.masks, dtype=bool)
    m, n, c = len(dataset), dataset.num_points, dataset.num_classes
    if dataset.instance is not None and dataset.instance_class is not None:
        inst = np.asarray(dataset.instance)
        icls = np.asarray(dataset.instance_class)
        cls_of_point = np.where(inst >= 0, np.take_along_axis(icls, np.clip(inst, 0, None), 1), -1)
        return cls_of_point[:, None, :] == np.arange(c)[None, :, None]
    if dataset.gt_mask is None or dataset.multilabel:
        return None
    lab = np.asarray(dataset.labels, dtype=np.int64) if present is None else np.asarray(present).argmax(1)
    out = np.zeros((m, c, n), dtype=bool)
    out[np.arange(m), lab] = np.asarray(dataset.gt_mask, dtype=bool)
    return out
