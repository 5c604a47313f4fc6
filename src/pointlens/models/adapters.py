"""Adapters that make foreign models follow pointlens' convention ``(B, N, 3) -> logits (B, C)``."""

from __future__ import annotations

import torch
from torch import nn

from pointlens.errors import bad_argument

# Attributes whose value is the dotted name of a sub-module: they gain the "module." prefix when forwarded.
LAYER_NAME_ATTRIBUTES = ("pool_layer",)


class ChannelsFirst(nn.Module):
    """Wrap a model that takes channels-first clouds ``(B, 3, N)`` so that it takes ``(B, N, 3)``.

    The wrapped model is stored as the sub-module ``module``; every layer of it is therefore addressed as
    ``"module.<its name>"`` (for :func:`pointlens.models.hooks.get_layer`, ``pool_layer=`` and ``layer=``
    options). Attribute access is forwarded to the wrapped model:

    * attributes naming a layer (``pool_layer``) are returned with the ``"module."`` prefix, so
      ``get_layer(wrapper, wrapper.pool_layer)`` is the same module as ``get_layer(inner, inner.pool_layer)``;
    * every other attribute (``head``, ``pointwise_until_pool``, ``config``, ...) is returned unchanged.

    The layouts of the wrapped model's internal activations are not changed (a max-pool input stays
    ``(B, C, N)``).

    Args:
        module: an ``nn.Module`` mapping ``(B, 3, N)`` (or ``(B, D, N)``) to logits ``(B, C)``.

    SHAPES:
        forward: ``(B, N, D) -> (B, C)``; the wrapped model receives ``points.transpose(1, 2)`` ``(B, D, N)``.

    Example:
        >>> model = ChannelsFirst(my_channels_first_pointnet)
        >>> logits = model(points)            # points (B, N, 3)
    """

    def __init__(self, module: nn.Module):
        if not isinstance(module, nn.Module):
            raise bad_argument("module", type(module).__name__, "a torch.nn.Module taking (B, 3, N)")
        super().__init__()
        self.module = module

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """Map ``(B, N, D)`` points to the wrapped model's output on ``(B, D, N)``."""
        if points.dim() != 3:
            raise bad_argument("points", f"shape {tuple(points.shape)}", "shape (B, N, 3)")
        return self.module(points.transpose(1, 2))

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module" or name.startswith("_"):
                raise
        inner = self._modules["module"]
        value = getattr(inner, name)
        if name in LAYER_NAME_ATTRIBUTES and isinstance(value, str):
            return f"module.{value}" if value else "module"
        return value
