"""The in-memory image dataset: what the image readers and generators return (``digitscenes``, ``voc``).

The image counterpart of :class:`pointlens.data.dataset.PointCloudDataset`. Both types share the attributes
the modality-independent code uses — ``inputs``, ``labels``, ``class_names``, ``num_classes``, ``multilabel``,
``names``, ``split``, ``meta``, ``modality``, ``subset`` and ``tensors`` — so training, the explainer and the
mask metrics read either without asking which one they hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from pointlens.errors import bad_argument


@dataclass
class ImageDataset:
    """A set of RGB images of equal size with (multi-hot) labels and optional per-class pixel masks.

    Attributes:
        images: ``(M, 3, H, W)`` float32, values in ``[0, 1]``, channel-first (the layout of the models).
        labels: ``(M, C)`` float32 multi-hot targets, or ``(M,)`` int64 class indices.
        class_names: ``C`` names.
        masks: optional ``(M, C, H, W)`` bool: the pixels of each class (all False for an absent class).
        names: optional ``M`` identifiers (file stems, generator ids).
        split: optional ``(M,)`` array of ``'train'``/``'test'`` strings.
        groups: optional ``(M, K)`` int64 source ids a split must not share (digitscenes: the indices of the
            scikit-learn digit scans pasted into each image; -1 = unused slot).
        meta: free-form provenance (source spec, generator parameters).
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    masks: np.ndarray | None = None
    names: np.ndarray | None = None
    split: np.ndarray | None = None
    groups: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    #: which explainer modality, attribution family and figures apply
    modality = "image"

    def __post_init__(self):
        v = np.asarray(self.images)
        if v.dtype.kind not in "iuf":
            raise bad_argument("images", f"dtype {v.dtype}", "numbers (float32 in [0, 1])")
        self.images = np.ascontiguousarray(v, dtype=np.float32)
        if self.images.ndim != 4 or self.images.shape[1] != 3:
            raise bad_argument("images", f"shape {self.images.shape}", "(M, 3, H, W) channel-first RGB")
        m, _, h, w = self.images.shape
        if isinstance(self.class_names, (str, bytes)) or not hasattr(self.class_names, "__len__"):
            raise bad_argument("class_names", self.class_names, "a list of class names (not one string)")
        self.class_names = list(self.class_names)
        c = len(self.class_names)
        self.labels = np.asarray(self.labels)
        if self.labels.ndim == 1:
            if self.labels.dtype.kind not in "iu" or len(self.labels) != m:
                raise bad_argument("labels", f"shape {self.labels.shape} dtype {self.labels.dtype}",
                                   f"({m},) integer class indices or ({m}, {c}) multi-hot targets")
            if self.labels.size and (self.labels.min() < 0 or self.labels.max() >= c):
                raise bad_argument("labels", f"values in [{self.labels.min()}, {self.labels.max()}]",
                                   f"0 <= label < {c}")
        elif self.labels.ndim != 2 or self.labels.shape != (m, c):
            raise bad_argument("labels", f"shape {self.labels.shape}", f"({m}, {c}) multi-hot targets")
        else:
            self.labels = np.ascontiguousarray(self.labels, dtype=np.float32)
        if self.masks is not None:
            self.masks = np.asarray(self.masks, dtype=bool)
            if self.masks.shape != (m, c, h, w):
                raise bad_argument("masks", f"shape {self.masks.shape}", f"({m}, {c}, {h}, {w}): one per class")
        for name in ("names", "split", "groups"):
            val = getattr(self, name)
            if val is not None and len(val) != m:
                raise bad_argument(name, f"{len(val)} rows", f"{m} (one per image)")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def inputs(self) -> np.ndarray:
        """The model inputs, ``(M, 3, H, W)`` (the images)."""
        return self.images

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> tuple[int, int]:
        """``(H, W)``."""
        return int(self.images.shape[2]), int(self.images.shape[3])

    @property
    def multilabel(self) -> bool:
        return self.labels.ndim == 2

    def subset(self, index) -> "ImageDataset":
        """A new dataset with the images selected by ``index`` (bool mask, slice or integer array)."""
        def take(v):
            return None if v is None else v[index]
        return replace(self, images=self.images[index], labels=self.labels[index], masks=take(self.masks),
                       names=take(self.names), split=take(self.split), groups=take(self.groups),
                       meta=dict(self.meta))

    def tensors(self, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """``(images (M, 3, H, W) float32, labels)`` as torch tensors on ``device``."""
        return torch.from_numpy(self.images).to(device), torch.from_numpy(self.labels).to(device)
