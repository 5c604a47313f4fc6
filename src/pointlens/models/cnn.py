"""A small VGG-style image classifier (``"cnn"``): the image counterpart of the point models, trained on
DigitScenes in minutes on a CPU and explained by Grad-CAM, RISE, the trained explainer, ...

Layer names (for :mod:`pointlens.models.hooks`):

- (``input_norm``) each image's channels are standardised first (no parameters);
- ``features.0`` ... ``features.{K-1}``: the conv blocks, each ``conv`` (3x3, padding 1), ``bn``, ``act``
  (ReLU) and ``pool`` (2x2 max pool; an identity in the last block); block ``i`` outputs
  ``(B, channels[i], H / 2^(i+1), W / 2^(i+1))`` (the last block ``(B, channels[-1], H / 2^(K-1), ...)``);
- ``pool``: global average pool ``(B, C, h, w)`` -> ``(B, C)``;
- ``drop``: dropout; ``head``: the final ``Linear(C, num_classes)``.

:attr:`CNN.gradcam_layer` names the last conv block (output ``(B, channels[-1], h, w)``, 8x8 for 64x64 inputs
with the default four blocks), the layer Grad-CAM reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pointlens.models.layers import check_channels, check_dropout, plain_config
from pointlens.models.registry import register_model
from pointlens.utils.validate import as_images, check_choice, check_int


class ConvBlock(nn.Module):
    """``depth`` x (3x3 conv, BatchNorm, ReLU), then an optional 2x2 max pool.

    Children: ``conv``, ``bn``, ``act`` (the first conv), ``conv2``/``bn2``/``act2`` ... for ``depth > 1``,
    ``pool`` (``MaxPool2d(2)`` or ``Identity``).

    Shapes: ``(B, C_in, H, W)`` -> ``(B, C_out, H/2, W/2)`` (``pool``) or ``(B, C_out, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, *, pool: bool, depth: int = 1):
        super().__init__()
        self.depth = depth
        c = in_channels
        for j in range(depth):
            sfx = "" if j == 0 else str(j + 1)
            setattr(self, "conv" + sfx, nn.Conv2d(c, out_channels, 3, padding=1, bias=False))
            setattr(self, "bn" + sfx, nn.BatchNorm2d(out_channels))
            setattr(self, "act" + sfx, nn.ReLU())
            c = out_channels
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for j in range(self.depth):
            sfx = "" if j == 0 else str(j + 1)
            x = getattr(self, "act" + sfx)(getattr(self, "bn" + sfx)(getattr(self, "conv" + sfx)(x)))
        return self.pool(x)


POOLINGS = ("max", "avg", "avgmax")


class GlobalPool2d(nn.Module):
    """Global pooling over the pixels: ``max``, ``avg`` or ``avgmax`` (the mean of both).

    Shapes: ``(B, C, H, W)`` -> ``(B, C)``.
    """

    def __init__(self, mode: str = "max"):
        super().__init__()
        self.mode = check_choice("pooling", mode, POOLINGS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "avg":
            return x.mean(dim=(2, 3))
        top = x.amax(dim=(2, 3))
        return top if self.mode == "max" else 0.5 * (top + x.mean(dim=(2, 3)))


@register_model("cnn")
class CNN(nn.Module):
    """Small VGG-style multi-label/multi-class image classifier.

    Args:
        num_classes: number of logits ``C``.
        channels: widths of the conv blocks (default ``(16, 32, 64, 128)``); every block but the last halves
            the resolution.
        depth: 3x3 convolutions per block (default 1).
        dropout: dropout before the final linear layer (default 0.1).
        input_norm: standardise each image's channels first (zero mean, unit sd; the sd floored by adding 0.05):
            the classifier then ignores an image's overall colour and contrast, and trains about twice as fast on
            DigitScenes (test mAP 0.90 after 4 epochs instead of 10; BENCHMARKS.md).

    Shapes:
        ``(B, 3, H, W)`` float images (values in [0, 1] as the image datasets give them) -> logits ``(B, C)``;
        any ``H, W >= 2^(K-1)`` (global average pooling), e.g. 8 with the default four blocks.

    Attributes:
        gradcam_layer: ``"features.3"`` (``features.{K-1}`` for K blocks): the last conv block, output
            ``(B, channels[-1], H / 2^(K-1), W / 2^(K-1))``.
        modality: ``"image"``.
        min_size: the smallest image side accepted.
        config: ``{"name": "cnn", "num_classes", "kwargs"}`` (rebuilds the model with ``create_model``).
    """

    gradcam_layer: str = "features.3"
    modality: str = "image"

    def __init__(self, num_classes: int, channels: Sequence[int] = (16, 32, 64, 128), depth: int = 2,
                 pooling: str = "avg", dropout: float = 0.1, input_norm: bool = True):
        super().__init__()
        channels = check_channels("channels", channels)
        depth = check_int("depth", depth, minimum=1, maximum=4)
        dropout = check_dropout(dropout)
        check_choice("pooling", pooling, POOLINGS)
        self.config = {"name": "cnn", "num_classes": int(num_classes),
                       "kwargs": plain_config(dict(channels=channels, depth=depth, pooling=pooling,
                                                   dropout=dropout, input_norm=bool(input_norm)))}
        self.input_norm = bool(input_norm)
        self.num_classes = int(num_classes)
        blocks, c = [], 3
        for i, w in enumerate(channels):
            blocks.append(ConvBlock(c, w, pool=i < len(channels) - 1, depth=depth))
            c = w
        self.features = nn.Sequential(*blocks)
        self.pool = GlobalPool2d(pooling)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(c, num_classes)
        self.gradcam_layer = f"features.{len(channels) - 1}"
        self.min_size = 2 ** (len(channels) - 1)

    def check_input(self, images) -> torch.Tensor:
        """Validate ``images`` (``(B, 3, H, W)``, ``H, W >= min_size``, finite) and return a float32 tensor."""
        return as_images(images, "images", min_size=self.min_size)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """The last conv block's maps. Shapes: ``(B, 3, H, W)`` -> ``(B, channels[-1], h, w)``."""
        if self.input_norm:  # per image and channel: zero mean, unit standard deviation
            mu = images.mean(dim=(2, 3), keepdim=True)
            sd = images.std(dim=(2, 3), keepdim=True)
            images = (images - mu) / (sd + 0.05)
        return self.features(images)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from the last block's maps. Shapes: ``(B, C', h, w)`` -> ``(B, num_classes)``."""
        return self.head(self.drop(self.pool(features)))

    def forward(self, images) -> torch.Tensor:
        """Classify images. Shapes: ``(B, 3, H, W)`` -> logits ``(B, num_classes)``."""
        return self.forward_head(self.forward_features(self.check_input(images)))

    def regularization_loss(self) -> torch.Tensor:
        """No extra training loss (0), as the point models without a feature transform."""
        p = next(self.parameters())
        return torch.zeros((), device=p.device, dtype=p.dtype)
