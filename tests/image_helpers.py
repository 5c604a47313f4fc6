"""Tiny image data and a tiny CNN for the image-explainer tests (no generator or model of the library needed)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pointlens.data.images import ImageDataset

COLOURS = np.array([[1.0, 0.1, 0.1], [0.1, 1.0, 0.1], [0.1, 0.1, 1.0]], dtype=np.float32)


def tiny_images(n: int = 24, size: int = 16, seed: int = 0) -> ImageDataset:
    """``n`` images ``(3, size, size)``: one or two coloured 5x5 squares (red, green, blue = classes 0, 1, 2) on
    dark noise; multi-hot labels and per-class pixel masks."""
    rng = np.random.default_rng(seed)
    imgs = rng.uniform(0, 0.15, (n, 3, size, size)).astype(np.float32)
    labels = np.zeros((n, 3), np.float32)
    masks = np.zeros((n, 3, size, size), bool)
    for i in range(n):
        classes = rng.choice(3, size=1 + i % 2, replace=False)
        for c in classes:
            y, x = rng.integers(0, size - 5, 2)
            masks[i, :, y:y + 5, x:x + 5] = False  # a later square covers an earlier one
            masks[i, c, y:y + 5, x:x + 5] = True
            imgs[i][:, masks[i, c]] = COLOURS[c][:, None]
            labels[i, c] = 1
    return ImageDataset(imgs, labels, ["red", "green", "blue"], masks=masks,
                        names=np.array([f"img{i}" for i in range(n)]))


class TinyCNN(nn.Module):
    """``(B, 3, H, W) -> (B, C)``: two 3x3 convolutions, global average pool, a linear layer."""

    def __init__(self, c: int = 3, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                                      nn.ReLU())
        self.fc = nn.Linear(8, c)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))
