"""DGCNN classifier (Wang et al., "Dynamic Graph CNN for Learning on Point Clouds", TOG 2019).

Four EdgeConv layers, each on a kNN graph recomputed from its own input features (the first on xyz); edge
features ``[x_j - x_i, x_i]`` -> 1x1 conv + BN + LeakyReLU(0.2) -> max over the ``k`` neighbours. The four
outputs are concatenated -> 1x1 conv to ``emb_dims`` -> global max pool and (by default) global average pool,
concatenated -> MLP head.

Layer names (for :mod:`pointlens.models.hooks`):

- ``edge_convs.0`` ... ``edge_convs.3``: EdgeConv layers, output ``(B, C_i, N)`` (inside: ``conv`` on the
  edge features ``(B, C_i, N, k)`` and ``pool``),
- ``embed``: the 1x1 conv block to ``emb_dims``, output ``(B, emb_dims, N)``,
- ``pool``: :class:`~pointlens.models.layers.GlobalMaxPool` (the model's ``pool_layer``), input
  ``(B, emb_dims, N)``, output ``(B, emb_dims)``,
- ``avg_pool``: the average pool (absent with ``pooling="max"``),
- ``head``: takes ``[max, avg]`` concatenated, ``(B, 2 * emb_dims)`` (``(B, emb_dims)`` with
  ``pooling="max"``); use :meth:`DGCNN.head_input` / :meth:`DGCNN.forward_head` to go from the pool input
  to logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pointlens.models.layers import (
    ClassifierHead,
    ConvBNAct,
    GlobalAvgPool,
    GlobalMaxPool,
    LocalMaxPool,
    PointClassifier,
    check_channels,
    check_dropout,
)
from pointlens.models.registry import register_model
from pointlens.ops import gather_points, knn
from pointlens.utils.validate import check_choice, check_float, check_int


def edge_features(x: torch.Tensor, k: int) -> torch.Tensor:
    """EdgeConv input: for every point ``i`` and each of its ``k`` nearest neighbours ``j`` in feature space
    (the point itself included, as in the original code), ``[x_j - x_i, x_i]``.

    Shapes:
        ``(B, C, N)`` -> ``(B, 2C, N, k)``.
    """
    xt = x.transpose(1, 2)  # (B, N, C)
    with torch.no_grad():
        d = xt.detach()
        idx = knn(d, d, k).idx  # (B, N, k)
    nb = gather_points(xt, idx)  # (B, N, k, C)
    centre = xt.unsqueeze(2).expand_as(nb)
    return torch.cat([nb - centre, centre], dim=-1).permute(0, 3, 1, 2)


class EdgeConv(nn.Module):
    """Dynamic-graph edge convolution. Shapes: ``(B, C_in, N)`` -> ``(B, C_out, N)``.

    Children: ``conv`` (1x1 Conv2d on ``2 * C_in`` edge channels, BN, LeakyReLU) and ``pool`` (max over
    ``k``).
    """

    def __init__(self, in_channels: int, out_channels: int, k: int, negative_slope: float = 0.2):
        super().__init__()
        self.k = k
        self.conv = ConvBNAct(
            2 * in_channels,
            out_channels,
            dim=2,
            activation="leaky_relu",
            negative_slope=negative_slope,
            bias=False,
        )
        self.pool = LocalMaxPool()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(edge_features(x, self.k)))


@register_model("dgcnn")
class DGCNN(PointClassifier):
    """DGCNN classifier.

    Args:
        num_classes: number of logits ``C``.
        k: neighbours per point in every EdgeConv (default 20, the point itself included); clouds need at
            least ``k`` points.
        emb_dims: width of the embedding before the global pool (default 1024).
        channels: widths of the EdgeConv layers (default ``(64, 64, 128, 256)``).
        head: hidden widths of the head (default ``(512, 256)``).
        dropout: head dropout (default 0.5).
        pooling: ``"max+avg"`` (the paper: max and average pools concatenated) or ``"max"``.
        negative_slope: LeakyReLU slope (default 0.2).

    Shapes:
        ``(B, N, 3)`` -> logits ``(B, C)``; ``N >= k``.
    """

    def __init__(
        self,
        num_classes: int,
        k: int = 20,
        emb_dims: int = 1024,
        channels: Sequence[int] = (64, 64, 128, 256),
        head: Sequence[int] = (512, 256),
        dropout: float = 0.5,
        pooling: str = "max+avg",
        negative_slope: float = 0.2,
    ):
        super().__init__()
        k = check_int("k", k, minimum=1)
        emb_dims = check_int("emb_dims", emb_dims, minimum=1)
        channels = check_channels("channels", channels)
        hidden = check_channels("head", head, allow_empty=True)
        dropout = check_dropout(dropout)
        check_choice("pooling", pooling, ("max+avg", "max"))
        negative_slope = check_float("negative_slope", negative_slope, minimum=0.0)
        self._set_config(
            "dgcnn",
            num_classes,
            dict(
                k=k,
                emb_dims=emb_dims,
                channels=channels,
                head=hidden,
                dropout=dropout,
                pooling=pooling,
                negative_slope=negative_slope,
            ),
        )
        self.k = k
        self.min_points = k
        self.min_points_reason = f"k={k} neighbours per point"
        convs = []
        c = 3
        for w in channels:
            convs.append(EdgeConv(c, w, k, negative_slope))
            c = w
        self.edge_convs = nn.ModuleList(convs)
        self.embed = ConvBNAct(
            sum(channels), emb_dims, dim=1, activation="leaky_relu", negative_slope=negative_slope, bias=False
        )
        self.pool = GlobalMaxPool()
        self.avg_pool = GlobalAvgPool() if pooling == "max+avg" else None
        width = emb_dims * (2 if self.avg_pool is not None else 1)
        self.head = ClassifierHead(
            width,
            hidden,
            num_classes,
            dropout=dropout,
            activation="leaky_relu",
            negative_slope=negative_slope,
            first_bias=False,
        )
        self.pointwise_until_pool = False

    def forward_features(self, points: torch.Tensor) -> torch.Tensor:
        """Per-point embedding at the pool input. Shapes: ``(B, N, 3)`` -> ``(B, emb_dims, N)``."""
        x = points.transpose(1, 2)
        outs = []
        for conv in self.edge_convs:
            x = conv(x)
            outs.append(x)
        return self.embed(torch.cat(outs, dim=1))

    def head_input(self, features: torch.Tensor) -> torch.Tensor:
        """``[max, avg]`` pooled features (just the max with ``pooling="max"``).

        Shapes: ``(B, emb_dims, N)`` -> ``(B, 2 * emb_dims)`` (``(B, emb_dims)``).
        """
        pooled = self.pool(features)
        if self.avg_pool is None:
            return pooled
        return torch.cat([pooled, self.avg_pool(features)], dim=1)
