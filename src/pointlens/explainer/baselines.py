"""Attribution methods turned into per-class masks, and the ground truth of each class, for the mask metrics.

Normalisation (the one used for every method): for each cloud and each present class ``c`` the method's scores
for target ``c`` are min-max scaled over the cloud's points, ``(s - min s) / (max s - min s)``, to ``[0, 1]``
(a constant score vector gives 0.5 everywhere). Masks of absent classes are 0. Scores keep their order (deletion
curves are unchanged) and the most important point of each cloud gets 1; how much of the cloud a method marks
depends on the shape of its score distribution, which is what the area-sensitive metrics then measure.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pointlens.errors import bad_argument
from pointlens.utils.progress import progress


def minmax_normalise(scores: torch.Tensor) -> torch.Tensor:
    """Per-row min-max scaling to ``[0, 1]``: ``(B, N) -> (B, N)``; constant rows become 0.5."""
    s = torch.as_tensor(scores, dtype=torch.float64)
    lo = s.amin(1, keepdim=True)
    hi = s.amax(1, keepdim=True)
    span = hi - lo
    return torch.where(span > 0, (s - lo) / span.clamp_min(1e-300), torch.full_like(s, 0.5)).float()


def attribution_masks(method: str, model: nn.Module, points, present, *, options: dict | None = None,
                      batch_size: int = 16, desc: str | None = None) -> torch.Tensor:
    """Per-class masks ``(B, C, N)`` of an attribution method of :mod:`pointlens.attribution`.

    Args:
        method: a name of :func:`pointlens.attribution.list_attributions` (``pointshift``, ``ig``,
            ``occlusion-knn``, ``rise``, ``gradcam``, ``random``, ...).
        model: the classifier.
        points: ``(B, N, 3)``.
        present: ``(B, C)`` bool present classes (each is explained as the target).
        options: the method's options.
        batch_size: clouds per ``attribute`` call.
        desc: progress-bar label.

    Returns:
        ``(B, C, N)`` float32 masks in ``[0, 1]`` (min-max normalised scores; 0 for absent classes).
    """
    from pointlens.attribution import create_attribution

    x = torch.as_tensor(points, dtype=torch.float32)
    p = torch.as_tensor(present).bool()
    if p.dim() != 2 or p.shape[0] != x.shape[0]:
        raise bad_argument("present", f"shape {tuple(p.shape)}", f"({x.shape[0]}, C)")
    method_obj = create_attribution(method, model, **(options or {}))
    masks = torch.zeros(x.shape[0], p.shape[1], x.shape[1])
    rows, cls = torch.nonzero(p, as_tuple=True)
    for s in progress(range(0, len(rows), batch_size), desc=desc or method):
        r, c = rows[s:s + batch_size], cls[s:s + batch_size]
        scores = method_obj.attribute(x[r], target=c)
        masks[r, c] = minmax_normalise(scores)
    return masks


def class_truth(dataset, present=None) -> np.ndarray | None:
    """Per-class ground-truth masks ``(M, C, N)`` bool, or None when the data has no ground truth.

    Scenes (``instance``/``instance_class``): the points of the objects of class ``c``. Single-label data with
    ``gt_mask``: the cloud's ground-truth points under its label (``present``'s class when given), other
    classes empty.
    """
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
