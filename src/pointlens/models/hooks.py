"""The one way to hook a layer: capture a named module's input and output (and optionally their gradients).

Works on any ``nn.Module`` (pointlens models and users' own); layers are addressed by their dotted name in
``model.named_modules()``.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from pointlens.errors import bad_argument


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """Return the sub-module called ``name`` (dotted path), with a clear error listing valid names."""
    modules = dict(model.named_modules())
    if name not in modules:
        names = [n for n in modules if n]
        shown = ", ".join(names[:30]) + (" ..." if len(names) > 30 else "")
        raise bad_argument("layer", name, f"a module name of this model: {shown}")
    return modules[name]


@dataclass
class Capture:
    """Activations recorded by :func:`capture` for one layer.

    Attributes:
        input: the first positional input tensor of the layer's last call.
        output: the layer's output tensor of the last call (kept in the graph when ``retain_grad``).
    """

    input: torch.Tensor | None = None
    output: torch.Tensor | None = None
    extra: dict = field(default_factory=dict)


@contextmanager
def capture(model: nn.Module, layers, *, retain_grad: bool = False, detach: bool = False):
    """Record inputs/outputs of named layers during the forward passes inside the ``with`` block.

    Args:
        model: any module.
        layers: a layer name or a list of names (see :func:`get_layer`).
        retain_grad: call ``retain_grad()`` on captured outputs so ``.grad`` is available after backward.
        detach: store detached copies (no graph) instead.

    Yields:
        ``dict[name, Capture]`` filled as the model runs.

    Example:
        >>> with capture(model, "pool") as acts:
        ...     model(points)
        >>> acts["pool"].input.shape   # (B, C, N) for pointlens models
    """
    names = [layers] if isinstance(layers, str) else list(layers)
    records = {n: Capture() for n in names}
    handles = []

    def make_hook(rec: Capture):
        def hook(_module, inputs, output):
            inp = inputs[0] if isinstance(inputs, tuple) and inputs else inputs
            out = output
            if detach:
                inp = inp.detach() if isinstance(inp, torch.Tensor) else inp
                out = out.detach() if isinstance(out, torch.Tensor) else out
            elif retain_grad and isinstance(out, torch.Tensor) and out.requires_grad:
                out.retain_grad()
            rec.input, rec.output = inp, out
        return hook

    try:
        for n in names:
            handles.append(get_layer(model, n).register_forward_hook(make_hook(records[n])))
        yield records
    finally:
        for h in handles:
            h.remove()


@contextmanager
def preserve_model_state(model: nn.Module):
    """Restore ``train()/eval()`` flags and ``requires_grad`` of every parameter on exit.

    Methods use it so that explaining never changes the caller's model as a side effect.
    """
    modes = {m: m.training for m in model.modules()}
    grads = {p: p.requires_grad for p in model.parameters()}
    try:
        yield model
    finally:
        for m, t in modes.items():
            m.train(t)
        for p, g in grads.items():
            p.requires_grad_(g)


def model_device(model: nn.Module, fallback="cpu") -> torch.device:
    """Device of the model's first parameter (or buffer), else ``fallback``: where its inputs must go."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device(fallback)


def min_points(model: nn.Module) -> int:
    """The smallest number of points per cloud ``model`` accepts (at least 1).

    Reads the ``min_points`` attribute of the model or of any module inside it (pointlens models set it, e.g.
    DGCNN needs ``k`` points for its k-NN graph; wrappers such as :class:`~pointlens.models.ChannelsFirst` or
    DDP are looked through). A foreign model can declare its own by setting ``model.min_points = k``; without
    one, 1 is assumed. Everything that deletes points (dropping, deletion/insertion curves) keeps at least
    this many.
    """
    found = 1
    for m in model.modules():
        v = getattr(m, "min_points", None)
        if isinstance(v, int) and not isinstance(v, bool):
            found = max(found, v)
    return found


def is_observed(*modules: nn.Module) -> bool:
    """True when a hook could observe what happens inside ``modules``: a forward, forward-pre or backward hook
    on any of them or their sub-modules, or a global module hook (``torch.nn.modules.module.register_module_*``).

    Layers with a faster equivalent computation (DGCNN's fused EdgeConv) check this and fall back to the
    written-out path, so a hook set with :func:`capture` always sees the tensors it expects.
    """
    from torch.nn.modules import module as _m

    if (_m._global_forward_hooks or _m._global_forward_pre_hooks or _m._global_backward_hooks
            or getattr(_m, "_global_backward_pre_hooks", None)):
        return True
    for root in modules:
        for mod in root.modules():
            if (mod._forward_hooks or mod._forward_pre_hooks or mod._backward_hooks
                    or getattr(mod, "_backward_pre_hooks", None)):
                return True
    return False
