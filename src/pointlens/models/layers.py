"""Building blocks shared by the point-cloud models: conv/BN/activation MLPs, heads and pooling modules.

Every block is a small ``nn.Module`` with named children (``conv``, ``bn``, ``act``, ``linear``, ``drop``) so
that layers can be addressed by dotted names in hooks (:mod:`pointlens.models.hooks`) and checkpoints map onto
stable keys.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pointlens.errors import bad_argument
from pointlens.models.hooks import is_observed
from pointlens.utils.validate import as_points, check_choice, check_float, check_int

ACTIVATIONS = ("relu", "leaky_relu")


def make_activation(name: str, negative_slope: float = 0.2) -> nn.Module:
    """Return a fresh activation module: ``"relu"`` or ``"leaky_relu"`` (with ``negative_slope``)."""
    check_choice("activation", name, ACTIVATIONS)
    if name == "relu":
        return nn.ReLU()
    return nn.LeakyReLU(negative_slope)


def check_channels(name: str, channels, *, allow_empty: bool = False) -> tuple[int, ...]:
    """Validate a sequence of layer widths (positive ints) and return it as a tuple."""
    if isinstance(channels, (str, bytes)) or not isinstance(channels, Sequence):
        raise bad_argument(name, channels, "a list of positive integers (layer widths)")
    out = tuple(check_int(f"{name}[{i}]", c, minimum=1) for i, c in enumerate(channels))
    if not out and not allow_empty:
        raise bad_argument(name, list(channels), "at least one layer width")
    return out


class ConvBNAct(nn.Module):
    """Shared (per-point) layer: 1x1 convolution, batch norm, activation.

    Args:
        in_channels: input channels ``C_in``.
        out_channels: output channels ``C_out``.
        dim: 1 for ``(B, C, N)`` inputs (``Conv1d``/``BatchNorm1d``), 2 for ``(B, C, M, K)`` grouped inputs.
        activation: ``"relu"`` or ``"leaky_relu"``.
        negative_slope: slope of the leaky ReLU.
        bias: give the convolution a bias (redundant before batch norm, kept for checkpoint compatibility).

    Shapes:
        ``(B, C_in, N)`` -> ``(B, C_out, N)`` (``dim=1``);
        ``(B, C_in, M, K)`` -> ``(B, C_out, M, K)`` (``dim=2``).

    Two ways to compute the same output:

    * reference: ``act(bn(conv(x)))`` as written (training, batch norm without running statistics, or a hook on
      ``conv``, ``bn`` or ``act``, so hooks see what they expect);
    * folded (``fused=True`` and batch norm in eval mode with running statistics, the case of every explanation
      and of activation maximisation): eval-mode batch norm is ``a z + b`` per channel, so it is folded into the
      1x1 convolution's weight and bias and the layer is one matrix product plus the activation. Same numbers up
      to round-off (tested against the reference in float64, values and gradients of the input and of every
      parameter); it skips the batch-norm pass over the ``(B, C_out, N)`` activations in the forward and the
      backward, which is what costs most once a batch of activations no longer fits in the CPU caches.

    Attributes:
        fused: allow the folded path (default True); set False to force the reference path.
    """

    fused = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        dim: int = 1,
        activation: str = "relu",
        negative_slope: float = 0.2,
        bias: bool = True,
    ):
        super().__init__()
        check_choice("dim", dim, (1, 2))
        conv = nn.Conv1d if dim == 1 else nn.Conv2d
        norm = nn.BatchNorm1d if dim == 1 else nn.BatchNorm2d
        self.conv = conv(in_channels, out_channels, kernel_size=1, bias=bias)
        self.bn = norm(out_channels)
        self.act = make_activation(activation, negative_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._can_fold(x):
            return self._folded(x)
        return self.act(self.bn(self.conv(x)))

    def _can_fold(self, x: torch.Tensor) -> bool:
        conv, bn = self.conv, self.bn
        return (self.fused and not bn.training and bn.running_mean is not None and bn.running_var is not None
                and conv.groups == 1 and x.dim() == len(conv.kernel_size) + 2
                and not is_observed(conv, bn, self.act))

    def eval_affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The convolution's bias and the eval-mode batch norm as one per-channel map ``z -> scale z + shift`` of
        the bias-free convolution output ``z = W x``. Shapes: ``((C_out,), (C_out,))``; needs running statistics."""
        conv, bn = self.conv, self.bn
        scale = torch.rsqrt(bn.running_var + bn.eps)
        shift = -bn.running_mean * scale
        if bn.affine:
            scale = bn.weight * scale
            shift = bn.weight * shift + bn.bias
        if conv.bias is not None:
            shift = shift + scale * conv.bias
        return scale, shift

    def _folded(self, x: torch.Tensor) -> torch.Tensor:
        scale, shift = self.eval_affine()
        z = torch.matmul(self.conv.weight.flatten(1) * scale[:, None], x.flatten(2)) + shift[:, None]
        return self.act(z.view(x.shape[0], z.shape[1], *x.shape[2:]))


class SharedMLP(nn.Sequential):
    """A stack of :class:`ConvBNAct` blocks named ``0, 1, ...`` (each with ``conv``, ``bn``, ``act``).

    Args:
        in_channels: input channels.
        channels: output width of each block.
        dim: 1 for ``(B, C, N)``, 2 for ``(B, C, M, K)``.
        activation, negative_slope, bias: as in :class:`ConvBNAct`.

    Shapes:
        ``(B, in_channels, N)`` -> ``(B, channels[-1], N)`` (or the 4-d grouped equivalent).
    """

    def __init__(
        self,
        in_channels: int,
        channels: Sequence[int],
        *,
        dim: int = 1,
        activation: str = "relu",
        negative_slope: float = 0.2,
        bias: bool = True,
    ):
        blocks = []
        c = in_channels
        for w in channels:
            blocks.append(
                ConvBNAct(c, w, dim=dim, activation=activation, negative_slope=negative_slope, bias=bias)
            )
            c = w
        super().__init__(*blocks)
        self.out_channels = c


class LinearBNAct(nn.Module):
    """Fully connected layer, batch norm, activation, dropout.

    Children: ``linear``, ``bn``, ``act``, ``drop``.

    Shapes:
        ``(B, in_features)`` -> ``(B, out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        dropout: float = 0.0,
        activation: str = "relu",
        negative_slope: float = 0.2,
        bias: bool = True,
    ):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.bn = nn.BatchNorm1d(out_features)
        self.act = make_activation(activation, negative_slope)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.act(self.bn(self.linear(x))))


class ClassifierHead(nn.Sequential):
    """MLP head from a global feature to logits: :class:`LinearBNAct` blocks ``0, 1, ...`` then a ``Linear``.

    Args:
        in_features: size of the global (pooled) feature.
        hidden: widths of the hidden layers, e.g. ``(512, 256)``.
        num_classes: number of logits ``C``.
        dropout: dropout probability after each hidden layer.
        activation, negative_slope: activation of the hidden layers.
        first_bias: bias of the first hidden linear layer (DGCNN uses none).

    Shapes:
        ``(B, in_features)`` -> ``(B, num_classes)``.
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        num_classes: int,
        *,
        dropout: float = 0.5,
        activation: str = "relu",
        negative_slope: float = 0.2,
        first_bias: bool = True,
    ):
        blocks = []
        c = in_features
        for i, w in enumerate(hidden):
            blocks.append(
                LinearBNAct(
                    c,
                    w,
                    dropout=dropout,
                    activation=activation,
                    negative_slope=negative_slope,
                    bias=first_bias or i > 0,
                )
            )
            c = w
        blocks.append(nn.Linear(c, num_classes))
        super().__init__(*blocks)


class GlobalMaxPool(nn.Module):
    """Symmetric max over points: the global feature of PointNet-style models.

    Its forward input is the per-point feature map, its output the pooled feature, so a forward hook on it
    (:func:`pointlens.models.hooks.capture`) sees both. Ties pass the gradient to one point (``torch.max``).

    Shapes:
        ``(B, C, N)`` -> ``(B, C)``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.max(dim=2).values


class GlobalAvgPool(nn.Module):
    """Mean over points. Shapes: ``(B, C, N)`` -> ``(B, C)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=2)


class LocalMaxPool(nn.Module):
    """Max over the last (neighbour) dimension. Shapes: ``(B, C, M, K)`` -> ``(B, C, M)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.max(dim=-1).values


def check_model_input(points, minimum: int, model_name: str, why: str = "") -> torch.Tensor:
    """Validate a model's input: a ``(B, N, 3)`` float32 tensor with at least ``minimum`` points per cloud.

    Args:
        points: array-like ``(B, N, 3)`` (``(N, 3)`` gets a batch dimension).
        minimum: the smallest ``N`` the model accepts.
        model_name: used in the error message.
        why: optional explanation of the minimum.

    Returns:
        ``(B, N, 3)`` float32 tensor (the same tensor when it already is one, so gradients flow).
    """
    pts = as_points(points)
    if pts.shape[1] < minimum:
        reason = f" ({why})" if why else ""
        raise bad_argument(
            "points",
            f"{pts.shape[1]} points per cloud (shape {tuple(pts.shape)})",
            f"at least {minimum} points per cloud for {model_name}{reason}",
        )
    return pts


def check_dropout(value) -> float:
    """Validate a dropout probability in ``[0, 1)``."""
    p = check_float("dropout", value, minimum=0.0)
    if p >= 1.0:
        raise bad_argument("dropout", value, "a probability in [0, 1)")
    return p


def plain_config(value):
    """Turn tuples into lists (recursively) so a model config holds only plain JSON/``weights_only`` types."""
    if isinstance(value, (list, tuple)):
        return [plain_config(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain_config(v) for k, v in value.items()}
    return value


class PointClassifier(nn.Module):
    """Base of the pointlens point-cloud classifiers (PointNet, PointNet++, DGCNN).

    Subclasses build ``self.pool`` (:class:`GlobalMaxPool`) and ``self.head`` and implement
    :meth:`forward_features`; ``forward = forward_head(forward_features(points))``.

    Attributes:
        config: ``{"name", "num_classes", "kwargs"}`` — enough to rebuild the model with
            :func:`pointlens.models.create_model` (plain types only).
        pool_layer: dotted name of the :class:`GlobalMaxPool` module (input ``(B, C, N')`` per-point features,
            output ``(B, C)``).
        pointwise_until_pool: True only when points interact nowhere before the pool (eval mode).
        head: module mapping the head input (see :meth:`head_input`) to logits ``(B, num_classes)``.
        min_points: the smallest number of points per cloud the model accepts.
    """

    pool_layer: str = "pool"
    pointwise_until_pool: bool = False
    min_points: int = 1
    min_points_reason: str = ""

    def _set_config(self, name: str, num_classes: int, kwargs: dict) -> None:
        self.config = {"name": name, "num_classes": int(num_classes), "kwargs": plain_config(kwargs)}
        self.num_classes = int(num_classes)

    def check_input(self, points) -> torch.Tensor:
        """Validate ``points`` (``(B, N, 3)``, ``N >= min_points``) and return a float32 tensor."""
        return check_model_input(points, self.min_points, self.config["name"], self.min_points_reason)

    def forward_features(self, points: torch.Tensor) -> torch.Tensor:
        """Per-point features at the input of the global pool. Shapes: ``(B, N, 3)`` -> ``(B, C, N')``."""
        raise NotImplementedError

    def head_input(self, features: torch.Tensor) -> torch.Tensor:
        """Global feature fed to :attr:`head`: the max pool of ``features`` (DGCNN also appends the mean).

        Shapes: ``(B, C, N')`` -> ``(B, C)`` (``(B, 2C)`` for DGCNN).
        """
        return self.pool(features)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from per-point features (pool + head). Shapes: ``(B, C, N')`` -> ``(B, num_classes)``.

        Fast leave-one-out uses it: drop a column of ``features`` and call this.
        """
        return self.head(self.head_input(features))

    def forward(self, points) -> torch.Tensor:
        """Classify clouds. Shapes: ``(B, N, 3)`` -> logits ``(B, num_classes)``."""
        return self.forward_head(self.forward_features(self.check_input(points)))

    def regularization_loss(self) -> torch.Tensor:
        """Extra training loss of the last forward pass (0 for models without one)."""
        p = next(self.parameters())
        return torch.zeros((), device=p.device, dtype=p.dtype)
