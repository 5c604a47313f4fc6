"""PointNet classifier (Qi et al., CVPR 2017): shared per-point MLP, global max pool, MLP head.

Layer names (for :mod:`pointlens.models.hooks`):

- ``input_transform`` (optional 3x3 T-Net; output ``(B, 3, 3)``),
- ``features.0`` ... ``features.{L-1}``: the shared layers (each ``conv``, ``bn``, ``act``); output
  ``(B, C_i, N)``,
- ``feature_transform`` (optional T-Net applied after ``features.1``; output ``(B, C_1, C_1)``),
- ``pool``: :class:`~pointlens.models.layers.GlobalMaxPool`, input ``(B, C_L, N)``, output ``(B, C_L)``,
- ``head`` (``head.0``, ``head.1``: linear/bn/act/drop; ``head.2``: the final ``Linear``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pointlens.models.layers import (
    ClassifierHead,
    GlobalMaxPool,
    PointClassifier,
    SharedMLP,
    check_channels,
    check_dropout,
)
from pointlens.models.registry import register_model


class TNet(nn.Module):
    """Spatial/feature transformer network predicting a ``k x k`` matrix, initialised to the identity.

    Layers: ``mlp`` (shared 64, 128, 1024), ``pool`` (max), ``fc`` (512, 256 with BN + ReLU), ``out``
    (``Linear(256, k*k)`` with zero weights and bias, so the initial transform is the identity).

    Shapes:
        ``(B, k, N)`` -> ``(B, k, k)``.
    """

    def __init__(self, k: int):
        super().__init__()
        self.k = k
        self.mlp = SharedMLP(k, (64, 128, 1024))
        self.pool = GlobalMaxPool()
        self.fc = ClassifierHead(1024, (512, 256), k * k, dropout=0.0)
        nn.init.zeros_(self.fc[-1].weight)
        nn.init.zeros_(self.fc[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.fc(self.pool(self.mlp(x))).view(-1, self.k, self.k)
        return m + torch.eye(self.k, device=x.device, dtype=x.dtype)


def apply_transform(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Multiply every point's row vector by ``matrix``: ``y_n = x_n^T A``.

    Shapes: ``x (B, k, N)``, ``matrix (B, k, k)`` -> ``(B, k, N)``.
    """
    return torch.bmm(matrix.transpose(1, 2), x)


@register_model("pointnet")
class PointNet(PointClassifier):
    """PointNet classifier.

    Args:
        num_classes: number of logits ``C``.
        channels: widths of the shared per-point layers (1x1 conv + BatchNorm + ReLU each);
            default ``(64, 64, 64, 128, 1024)``.
        head: hidden widths of the head MLP (linear + BatchNorm + ReLU + dropout each);
            default ``(512, 256)``.
        dropout: dropout probability in the head (default 0.3; learning3d's checkpoint used 0.7).
        input_transform: add the 3x3 input T-Net.
        feature_transform: add the feature T-Net after the second shared layer (``C_1 x C_1``); its
            orthogonality loss is :meth:`regularization_loss`.
        conv_bias: biases in the shared convolutions (learning3d's checkpoint has them).

    Shapes:
        ``(B, N, 3)`` -> logits ``(B, C)``; any ``N >= 1``.

    Attributes:
        pointwise_until_pool: True when there is no T-Net (each point's pool input depends on that point
            only).
    """

    def __init__(
        self,
        num_classes: int,
        channels: Sequence[int] = (64, 64, 64, 128, 1024),
        head: Sequence[int] = (512, 256),
        dropout: float = 0.3,
        input_transform: bool = False,
        feature_transform: bool = False,
        conv_bias: bool = True,
    ):
        super().__init__()
        channels = check_channels("channels", channels)
        hidden = check_channels("head", head, allow_empty=True)
        dropout = check_dropout(dropout)
        self._set_config(
            "pointnet",
            num_classes,
            dict(
                channels=channels,
                head=hidden,
                dropout=dropout,
                input_transform=bool(input_transform),
                feature_transform=bool(feature_transform),
                conv_bias=bool(conv_bias),
            ),
        )
        self.input_transform = TNet(3) if input_transform else None
        self.features = SharedMLP(3, channels, bias=conv_bias)
        self.feature_transform_after = 1 if len(channels) >= 2 else 0
        self.feature_transform = TNet(channels[self.feature_transform_after]) if feature_transform else None
        self.pool = GlobalMaxPool()
        self.head = ClassifierHead(channels[-1], hidden, num_classes, dropout=dropout)
        self.pointwise_until_pool = not (input_transform or feature_transform)
        self._last_feature_matrix: torch.Tensor | None = None

    def forward_features(self, points: torch.Tensor) -> torch.Tensor:
        """Per-point features at the pool input. Shapes: ``(B, N, 3)`` -> ``(B, channels[-1], N)``."""
        x = points.transpose(1, 2)
        if self.input_transform is not None:
            x = apply_transform(x, self.input_transform(x))
        self._last_feature_matrix = None
        for i, block in enumerate(self.features):
            x = block(x)
            if self.feature_transform is not None and i == self.feature_transform_after:
                m = self.feature_transform(x)
                self._last_feature_matrix = m
                x = apply_transform(x, m)
        return x

    point_chunk = 8192
    """Inference without gradients on clouds of more points than this pools chunk by chunk (same logits)."""

    def chunkable(self) -> bool:
        """True when the per-point features may be computed over chunks of points: no T-Net, eval mode, and no
        hook on any layer (a hook expects the whole cloud's features)."""
        from torch.nn.modules import module as _module

        if not self.pointwise_until_pool or self.training:
            return False
        if _module._global_forward_hooks or _module._global_forward_pre_hooks:
            return False
        return not any(m._forward_hooks or m._forward_pre_hooks for m in self.modules())

    def forward(self, points) -> torch.Tensor:
        """Classify clouds. Shapes: ``(B, N, 3)`` -> logits ``(B, num_classes)``.

        Without gradients, in eval mode and without T-Nets, a cloud of more than :attr:`point_chunk` points is
        pooled chunk by chunk (the max of the chunks' maxima is the max): memory ``O(point_chunk * C)`` instead of
        ``O(N * C)``, the same logits.
        """
        x = self.check_input(points)
        if x.shape[1] <= self.point_chunk or torch.is_grad_enabled() or not self.chunkable():
            return self.forward_head(self.forward_features(x))
        pooled = None
        for s in range(0, x.shape[1], self.point_chunk):
            v = self.forward_features(x[:, s:s + self.point_chunk]).max(dim=2).values
            pooled = v if pooled is None else torch.maximum(pooled, v)
        return self.head(pooled)

    def regularization_loss(self) -> torch.Tensor:
        """Orthogonality loss of the last forward's feature transform ``A``: batch mean of
        ``||I - A A^T||_F^2`` (0 without a feature T-Net or before any forward). Shape: scalar.
        """
        m = self._last_feature_matrix
        if m is None:
            return super().regularization_loss()
        eye = torch.eye(m.shape[1], device=m.device, dtype=m.dtype)
        return ((eye - torch.bmm(m, m.transpose(1, 2))) ** 2).sum(dim=(1, 2)).mean()
