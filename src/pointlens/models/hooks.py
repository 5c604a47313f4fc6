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


def wrapper_prefix(model: nn.Module) -> str:
    """``"module."`` when ``model`` only wraps one child called ``module`` (ChannelsFirst, DataParallel, DDP)."""
    children = list(model.named_children())
    return "module." if len(children) == 1 and children[0][0] == "module" else ""


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """Return the sub-module called ``name`` (dotted path), with a clear error listing valid names.

    Through a wrapper whose only child is ``module`` (:class:`~pointlens.models.ChannelsFirst`, DataParallel,
    DDP) the wrapped model's own names work too (``"pool"`` for ``"module.pool"``), and the error lists them.
    """
    modules = dict(model.named_modules())
    if name in modules:
        return modules[name]
    prefix = wrapper_prefix(model)
    if prefix and isinstance(name, str) and prefix + name in modules:
        return modules[prefix + name]
    names = [n[len(prefix):] if prefix and n.startswith(prefix) else n for n in modules if n and n + "." != prefix]
    shown = ", ".join(names[:30]) + (" ..." if len(names) > 30 else "")
    raise bad_argument("layer", name, f"a module name of this model: {shown}")


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


@dataclass(frozen=True)
class PoolLayer:
    """Where the per-point features entering a model's global reduction can be hooked.

    Attributes:
        name: dotted module name (the model's own names).
        use: ``"input"`` (the module IS the pooling layer: its input is per point) or ``"output"`` (the last
            module before a functional pool such as ``torch.max(x, 2)``: its output is per point).
        layout: ``"BCN"`` or ``"BNC"``: where the point axis is in that tensor.
        detected: True when found by :func:`find_pool_layer`, False when declared by the model.
    """

    name: str
    use: str
    layout: str
    detected: bool = True

    def describe(self) -> str:
        """One line for users: ``"feat.bn3 (its output, BCN; detected)"``."""
        how = "detected" if self.detected else "declared by the model"
        return f"{self.name or '<root>'} (its {self.use}, {self.layout}; {how})"


PROBE_POINTS = 61  # a point count no layer width is likely to equal, so the point axis is unambiguous


def _point_axis(t, b: int, n: int) -> str | None:
    """``"BCN"``/``"BNC"`` when ``t`` is a ``(b, C, n)``/``(b, n, C)`` tensor (unambiguously), else None."""
    if not isinstance(t, torch.Tensor) or t.dim() != 3 or t.shape[0] != b:
        return None
    last, middle = t.shape[2] == n, t.shape[1] == n
    if last == middle:
        return None
    return "BCN" if last else "BNC"


def find_pool_layer(model: nn.Module, num_points: int | None = None, dims: int = 3) -> PoolLayer:
    """Find the layer whose activations are the per-point features just before the global reduction.

    One traced forward on a random probe batch ``(2, num_points, dims)`` (eval mode, no gradients, the global
    RNG and the model's train/eval flags restored) records, in the order modules finish, every module call
    whose output has a point axis ``(B, C, N)`` or ``(B, N, C)``, and every leaf module whose INPUT has one
    but whose output has not (a pooling module, e.g. ``nn.AdaptiveMaxPool1d``). The last such call wins:
    a pooling module gives ``use="input"``; otherwise the last per-point module before a functional pool
    (``torch.max(x, 2)[0]``, ``x.max(dim=-1)``, ``F.adaptive_max_pool1d``) gives ``use="output"``. A module
    that runs again later on non-per-point tensors (a shared ``nn.ReLU`` reused in the head) is skipped, since
    a hook would record its last call. A functional activation between that module and the pool (``F.relu``)
    is not seen; monotone activations keep every channel's arg-max, but ReLU makes channels whose maximum
    is negative all-zero (critical points then split those channels between all points).

    Args:
        model: any module mapping ``(B, N, dims)`` to ``(B, C)``.
        num_points: probe size (default 61, raised to ``min_points(model)``): choose one that no layer width
            equals.
        dims: coordinates per point (default 3).

    Returns:
        :class:`PoolLayer` with ``detected=True``.

    Raises:
        InvalidArgumentError: the probe forward fails, or no module has per-point activations (e.g. a model
            whose layers are all functional, or PointNet++ whose set abstraction resamples the points);
            give the layer explicitly then.
    """
    n = int(num_points) if num_points is not None else max(PROBE_POINTS, min_points(model))
    b = 2
    dtype = next((t.dtype for t in list(model.parameters()) + list(model.buffers()) if t.is_floating_point()),
                 torch.float32)
    device = model_device(model)
    probe = (torch.rand(b, n, dims, generator=torch.Generator().manual_seed(0)) * 2 - 1).to(device, dtype)
    calls: list[tuple[str, str, str] | None] = []  # per finished call: (name, use, layout) or None
    last_call: dict[str, int] = {}
    names = {id(m): name for name, m in model.named_modules() if name}

    def hook(module, inputs, output):
        name = names.get(id(module))
        if name is None:
            return
        last_call[name] = len(calls)
        layout = _point_axis(output, b, n)
        if layout is not None:
            calls.append((name, "output", layout))
            return
        inp = inputs[0] if isinstance(inputs, tuple) and inputs else inputs
        layout = _point_axis(inp, b, n)
        leaf = next(module.children(), None) is None
        calls.append((name, "input", layout) if layout is not None and leaf else None)

    from torch.nn.modules.module import register_module_forward_hook

    handle = register_module_forward_hook(hook)
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with preserve_model_state(model), torch.random.fork_rng(devices=devices), torch.no_grad():
            model.eval()
            model(probe)
    except Exception as e:  # the user's model failing on the probe: one line, not a traceback
        msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise bad_argument("layer", None, f"a layer name: finding the pool layer ran the model on a probe "
                           f"cloud of {n} points and it failed ({type(e).__name__}: {msg})") from None
    finally:
        handle.remove()
    for i in range(len(calls) - 1, -1, -1):
        if calls[i] is not None and last_call[calls[i][0]] == i:
            return PoolLayer(*calls[i], detected=True)
    shown = ", ".join(list(names.values())[:30]) or "none"
    raise bad_argument("layer", None, "a layer name: no module of this model has per-point activations "
                       f"(B, C, N) before the global pool, so it cannot be found automatically; "
                       f"layers: {shown}")


def resolve_pool_layer(model: nn.Module, name: str | None = None) -> PoolLayer:
    """The layer whose per-point activations critical points and Grad-CAM read.

    ``name`` given: that layer's input, ``BCN`` (``detected=False``). Else ``model.pool_layer`` if the model
    declares one (pointlens models do): its input, ``BCN``. Else :func:`find_pool_layer`.
    """
    if name is None:
        name = getattr(model, "pool_layer", None)
        if name is None:
            return find_pool_layer(model)
    if not isinstance(name, str):
        raise bad_argument("layer", name, "the dotted name of a layer with per-point activations")
    get_layer(model, name)
    return PoolLayer(name, "input", "BCN", detected=False)
