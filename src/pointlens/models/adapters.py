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


INPUT_LAYOUTS = ("bnc", "bcn")
OUTPUT_KINDS = ("logits", "log_softmax", "probs")
# Plain (non-module) attributes of the wrapped model that ModelAdapter exposes as its own.
FORWARDED_ATTRIBUTES = ("pool_layer", "pointwise_until_pool", "min_points")


def describe_output(out) -> str:
    """A short description of a model's raw output for error messages: ``(2, 40)``, ``tuple[(2, 40), (2, 64, 64)]``."""
    if isinstance(out, torch.Tensor):
        return str(tuple(out.shape))
    if isinstance(out, (tuple, list)):
        inner = ", ".join(describe_output(o) for o in out[:6]) + (", ..." if len(out) > 6 else "")
        return f"{type(out).__name__}[{inner}]"
    if isinstance(out, dict):
        return "dict with keys " + ", ".join(map(str, list(out)[:6]))
    return type(out).__name__


class ModelAdapter(nn.Module):
    """Give any classifier pointlens' convention ``(B, N, 3) -> (B, C)`` WITHOUT renaming its layers.

    The adapter shares the wrapped model's parameters, buffers and sub-modules (the same dicts, not copies):
    ``named_modules()``, ``named_parameters()``, ``state_dict()`` and therefore every ``layer=`` /
    ``pool_layer=`` option and every error listing layer names use the model's OWN names (``"feat.conv3"``,
    never ``"module.feat.conv3"``). The adapter itself is the root module (name ``""``); the wrapped model is
    reachable as ``adapter.wrapped`` but is not a sub-module. ``train()``/``eval()``, ``.to()``, deep copies
    and hooks behave as on the wrapped model.

    Args:
        model: the user's ``nn.Module``.
        input_layout: ``"bnc"`` (the model takes ``(B, N, 3)``, default) or ``"bcn"`` (it takes ``(B, 3, N)``,
            like most public PointNet code).
        output_index: for a model returning a tuple/list (e.g. ``(log_probs, trans_feat)``), which element is
            the class output; ``None`` for a model returning one tensor.
        output: what that element is: ``"logits"`` (default), ``"log_softmax"`` (log-probabilities) or
            ``"probs"`` (probabilities). The adapter returns logits in pointlens' sense, i.e. numbers whose
            softmax is the model's class probabilities: logits and log-probabilities unchanged,
            probabilities as ``log(p)`` (clamped at the smallest positive float). So every metric that
            softmaxes gets the model's probabilities; methods that explain "the logit" explain the
            log-probability of the class for ``log_softmax``/``probs`` models (argmax unchanged).

    SHAPES:
        forward: ``(B, N, 3) -> (B, C)``.
    """

    def __init__(self, model: nn.Module, *, input_layout: str = "bnc", output_index: int | None = None,
                 output: str = "logits"):
        if not isinstance(model, nn.Module):
            raise bad_argument("model", type(model).__name__, "a torch.nn.Module")
        if input_layout not in INPUT_LAYOUTS:
            raise bad_argument("input_layout", input_layout, "one of " + ", ".join(INPUT_LAYOUTS))
        if output not in OUTPUT_KINDS:
            raise bad_argument("output", output, "one of " + ", ".join(OUTPUT_KINDS))
        if output_index is not None and (isinstance(output_index, bool) or not isinstance(output_index, int)):
            raise bad_argument("output_index", output_index, "an integer index into the model's output tuple")
        super().__init__()
        # Share, do not copy: the model's layers become the adapter's under their own names.
        for key in ("_parameters", "_buffers", "_modules", "_non_persistent_buffers_set"):
            object.__setattr__(self, key, model.__dict__[key])
        object.__setattr__(self, "wrapped", model)
        self.input_layout = input_layout
        self.output_index = output_index
        self.output = output
        self.training = model.training

    def train(self, mode: bool = True):
        """Set train/eval mode of the adapter, the wrapped model and every sub-module."""
        super().train(mode)
        self.wrapped.training = bool(mode)
        return self

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name not in FORWARDED_ATTRIBUTES:
                raise
        return getattr(self.__dict__["wrapped"], name)

    def raw(self, points: torch.Tensor):
        """The wrapped model's untouched output for ``(B, N, 3)`` points (only the input layout adapted)."""
        if not isinstance(points, torch.Tensor) or points.dim() != 3:
            got = f"shape {tuple(points.shape)}" if isinstance(points, torch.Tensor) else type(points).__name__
            raise bad_argument("points", got, "shape (B, N, 3)")
        return self.wrapped(points.transpose(1, 2) if self.input_layout == "bcn" else points)

    def select(self, out) -> torch.Tensor:
        """Apply ``output_index`` and ``output`` to a raw output; raises InvalidArgumentError when impossible."""
        if self.output_index is not None:
            if not isinstance(out, (tuple, list)):
                raise bad_argument("output_index", self.output_index,
                                   f"no index: the model returns one output {describe_output(out)}")
            if not -len(out) <= self.output_index < len(out):
                raise bad_argument("output_index", self.output_index,
                                   f"an index in [0, {len(out) - 1}] (the model returns {describe_output(out)})")
            out = out[self.output_index]
        elif isinstance(out, (tuple, list)):
            raise bad_argument("output_index", None, f"an index: the model returns {describe_output(out)}; "
                               "choose the class output, e.g. output_index=0")
        if not isinstance(out, torch.Tensor) or out.dim() != 2:
            raise bad_argument("output", describe_output(out), "class scores of shape (B, C)")
        if self.output == "probs":
            return out.clamp_min(torch.finfo(out.dtype).tiny).log()
        return out

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """``(B, N, 3)`` points -> ``(B, C)`` logits (see the class docstring for ``output``)."""
        return self.select(self.raw(points))

    def extra_repr(self) -> str:
        return (f"wraps {type(self.wrapped).__name__}, input_layout={self.input_layout!r}, "
                f"output_index={self.output_index!r}, output={self.output!r}")
