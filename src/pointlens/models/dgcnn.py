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

from pointlens.models.hooks import is_observed
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
from pointlens.ops import gather_points, knn_indices
from pointlens.utils.validate import check_choice, check_float, check_int


def edge_features(x: torch.Tensor, k: int) -> torch.Tensor:
    """EdgeConv input: for every point ``i`` and each of its ``k`` nearest neighbours ``j`` in feature space
    (the point itself included, as in the original code), ``[x_j - x_i, x_i]``.

    Shapes:
        ``(B, C, N)`` -> ``(B, 2C, N, k)``.
    """
    xt = x.transpose(1, 2)  # (B, N, C)
    nb = gather_points(xt, feature_knn(x, k))  # (B, N, k, C)
    centre = xt.unsqueeze(2).expand_as(nb)
    return torch.cat([nb - centre, centre], dim=-1).permute(0, 3, 1, 2)


def feature_knn(x: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` nearest neighbours of every point in feature space (itself included), unordered, no gradient.

    Shapes:
        ``(B, C, N)`` -> ``(B, N, k)`` long.
    """
    with torch.no_grad():
        d = x.detach().transpose(1, 2)
        return knn_indices(d, d, k)


class EdgeConv(nn.Module):
    """Dynamic-graph edge convolution. Shapes: ``(B, C_in, N)`` -> ``(B, C_out, N)``.

    Children: ``conv`` (1x1 Conv2d on ``2 * C_in`` edge channels, BN, LeakyReLU) and ``pool`` (max over
    ``k``).

    Two ways to compute the same output:

    * reference: the edge features ``(B, 2 C_in, N, k)`` are built (:func:`edge_features`) and go through
      ``conv`` and ``pool``, as written above (used in training, and whenever a hook sits on ``conv``,
      ``pool`` or inside them, so hooks see what they expect);
    * fused (``fused=True`` and batch norm in eval mode, the case of every explanation): the 1x1 conv on
      ``[x_j - x_i, x_i]`` is ``W1 x_j + (W2 - W1) x_i``, so it is applied to the ``N`` points rather than
      the ``N k`` edges; eval-mode batch norm is ``a z + b`` per channel and the activation is
      non-decreasing, so the max over the neighbours moves inside: it is taken of ``sign(a) W1 x_j``. Same
      numbers up to round-off (tested against the reference in float64, values and gradients), about 3x
      faster on CPU and without the ``(B, 2 C_in, N, k)`` tensor. Equal maxima share the gradient equally.

    Attributes:
        fused: allow the fused path (default True); set False to force the reference path.
    """

    fused = True

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
        if self._can_fuse():
            return self._fused(x)
        return self.pool(self.conv(edge_features(x, self.k)))

    def _can_fuse(self) -> bool:
        block = self.conv
        conv, bn, act = getattr(block, "conv", None), getattr(block, "bn", None), getattr(block, "act", None)
        return (self.fused and isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1) and conv.groups == 1
                and isinstance(bn, nn.BatchNorm2d) and not bn.training and bn.running_mean is not None
                and bn.running_var is not None and bn.affine
                and (isinstance(act, nn.ReLU) or (isinstance(act, nn.LeakyReLU) and act.negative_slope >= 0))
                and type(self.pool) is LocalMaxPool and not is_observed(self.conv, self.pool))

    def _fused(self, x: torch.Tensor) -> torch.Tensor:
        block = self.conv
        w = block.conv.weight.flatten(1)  # (C_out, 2 C_in)
        c_in = w.shape[1] // 2
        w1, w2 = w[:, :c_in], w[:, c_in:]
        a, b = block.eval_affine()
        sign = torch.sign(a).unsqueeze(1)  # (C_out, 1)
        nb = torch.matmul(w1 * sign, x).transpose(1, 2)  # (B, N, C_out): sign(a) W1 x_j
        best = gather_points(nb, feature_knn(x, self.k)).amax(dim=2).transpose(1, 2)  # (B, C_out, N)
        centre = torch.matmul(w2 - w1, x)
        return block.act(a.unsqueeze(1) * (best * sign + centre) + b.unsqueeze(1))


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
