"""The one in-memory dataset type every reader and generator returns."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from pointlens.errors import bad_argument


@dataclass
class PointCloudDataset:
    """A set of point clouds of equal size with labels and optional ground truth.

    Attributes:
        points: ``(M, N, 3)`` float32 xyz.
        labels: ``(M,)`` int64 class indices, or ``(M, C)`` float32 multi-hot targets (scene mode).
        class_names: ``C`` names.
        normals: optional ``(M, N, 3)`` float32.
        parts: optional ``(M, N)`` int64 per-point part labels (index into ``part_names``; -1 = clutter/none).
        part_names: names of the part labels.
        gt_mask: optional ``(M, N)`` bool: points that carry the class evidence (ShapeParts' discriminative
            parts), used by localisation metrics.
        instance: optional ``(M, N)`` int64 per-point object id in scenes (-1 = clutter), with
            ``instance_class`` ``(M, K)`` the class of each object (-1 = unused slot).
        names: optional ``M`` identifiers (file stems, generator ids).
        split: optional ``(M,)`` array of ``'train'``/``'test'`` strings.
        meta: free-form provenance (source spec, generator parameters, normalisation applied).
    """

    points: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    normals: np.ndarray | None = None
    parts: np.ndarray | None = None
    part_names: list[str] | None = None
    gt_mask: np.ndarray | None = None
    instance: np.ndarray | None = None
    instance_class: np.ndarray | None = None
    names: np.ndarray | None = None
    split: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in ("points", "normals"):
            v = getattr(self, name)
            if v is not None:
                v = np.asarray(v)
                if v.dtype.kind not in "iuf":
                    raise bad_argument(name, f"dtype {v.dtype}", "numbers (float32 coordinates)")
                setattr(self, name, np.ascontiguousarray(v, dtype=np.float32))
        if self.points.ndim != 3 or self.points.shape[-1] != 3:
            raise bad_argument("points", f"shape {self.points.shape}", "(M, N, 3)")
        m, n = self.points.shape[:2]
        if isinstance(self.class_names, (str, bytes)) or not hasattr(self.class_names, "__len__"):
            raise bad_argument("class_names", self.class_names, "a list of class names (not one string)")
        self.class_names = list(self.class_names)
        if not all(isinstance(c, str) for c in self.class_names):
            raise bad_argument("class_names", self.class_names, "a list of strings")
        self.labels = np.asarray(self.labels)
        if self.labels.ndim not in (1, 2) or len(self.labels) != m:
            raise bad_argument("labels", f"shape {self.labels.shape}", f"({m},) class indices or ({m}, C) targets")
        if self.labels.ndim == 1:
            if self.labels.dtype.kind not in "iu":
                raise bad_argument("labels", f"dtype {self.labels.dtype}", "integer class indices")
            if self.labels.size and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
                raise bad_argument("labels", f"values in [{self.labels.min()}, {self.labels.max()}]",
                                   f"0 <= label < {len(self.class_names)} (one of the class names)")
        elif self.labels.shape[1] != len(self.class_names) or self.labels.dtype.kind not in "biuf":
            raise bad_argument("labels", f"shape {self.labels.shape} dtype {self.labels.dtype}",
                               f"({m}, {len(self.class_names)}) multi-hot targets (one column per class name)")
        per_point = {"normals": (m, n, 3), "parts": (m, n), "gt_mask": (m, n), "instance": (m, n)}
        for name, shape in per_point.items():
            v = getattr(self, name)
            if v is not None and np.shape(v) != shape:
                raise bad_argument(name, f"shape {np.shape(v)}", f"{shape} (one entry per point)")
        for name in ("names", "split", "instance_class"):
            v = getattr(self, name)
            if v is not None and len(v) != m:
                raise bad_argument(name, f"{len(v)} rows", f"{m} (one per cloud)")

    #: which explainer modality, attribution family and figures apply (images: ``"image"``)
    modality = "points"

    def __len__(self) -> int:
        return len(self.points)

    @property
    def inputs(self) -> np.ndarray:
        """The model inputs, ``(M, N, 3)`` (the points); :class:`~pointlens.data.images.ImageDataset` has its images."""
        return self.points

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_points(self) -> int:
        return self.points.shape[1]

    @property
    def multilabel(self) -> bool:
        return self.labels.ndim == 2

    def subset(self, index) -> "PointCloudDataset":
        """A new dataset with the clouds selected by ``index`` (bool mask, slice or integer array)."""
        def take(v):
            return None if v is None else v[index]
        return replace(self, points=self.points[index], labels=self.labels[index], normals=take(self.normals),
                       parts=take(self.parts), gt_mask=take(self.gt_mask), instance=take(self.instance),
                       instance_class=take(self.instance_class), names=take(self.names),
                       split=take(self.split), meta=dict(self.meta))

    def select_points(self, idx: np.ndarray) -> "PointCloudDataset":
        """Keep per-cloud point subsets: ``idx (M, K)`` indices into ``N`` applied to every per-point array."""
        def take(v):
            return None if v is None else np.take_along_axis(v, idx if v.ndim == 2 else idx[..., None], axis=1)
        return replace(self, points=take(self.points), normals=take(self.normals), parts=take(self.parts),
                       gt_mask=take(self.gt_mask), instance=take(self.instance), meta=dict(self.meta))

    def tensors(self, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """``(points (M, N, 3) float32, labels)`` as torch tensors on ``device``."""
        return (torch.from_numpy(self.points).to(device), torch.from_numpy(self.labels).to(device))
