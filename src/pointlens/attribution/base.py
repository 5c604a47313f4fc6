"""The shared base of every local attribution method: validation, target resolution, batching, a ``name``.

Every method follows Captum's shape::

    scores = Method(model, **options).attribute(points, target=None)    # (B, N, 3) -> (B, N)

Higher score = more important for ``target`` (``None`` = the class the model predicts for each cloud).
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from pointlens.errors import bad_argument
from pointlens.models.hooks import capture, preserve_model_state
from pointlens.utils.validate import as_points, as_target, check_int


def model_dtype_device(model: nn.Module) -> tuple[torch.dtype | None, torch.device]:
    """The floating dtype and device of the model's first parameter (or buffer); ``(None, cpu)`` if none."""
    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            return t.dtype, t.device
    return None, torch.device("cpu")


def canonical_order(points: torch.Tensor) -> torch.Tensor:
    """A geometric ordering of every cloud: lexicographic on (x, y, z), independent of the input order.

    Used to draw per-point random numbers in a permutation-consistent way: permuting a cloud permutes the
    draws with it (exactly duplicated points are the only exception: they are ordered by index).

    Args:
        points: ``(B, N, D)``.

    Returns:
        ``(B, N)`` long tensor ``order``: ``points[b, order[b, j]]`` is the ``j``-th point in geometric
        order.
    """
    b, n, d = points.shape
    order = torch.arange(n, device=points.device).expand(b, n).clone()
    for axis in reversed(range(d)):  # least significant key first, stable sorts
        key = torch.gather(points[..., axis], 1, order)
        order = torch.gather(order, 1, key.sort(dim=1, stable=True).indices)
    return order


def cloud_seeds(points: torch.Tensor, seed: int) -> list[int]:
    """One generator seed per cloud, from ``seed`` and the cloud's geometry only.

    The seed does not depend on the cloud's position in the batch or on its point order (the coordinates are
    hashed in :func:`canonical_order`), so a stochastic method gives a cloud the same scores whether it is
    explained alone, inside any batch, or permuted; different clouds get unrelated draws.

    Args:
        points: ``(B, N, D)``.
        seed: the method's seed.

    Returns:
        ``B`` non-negative ints.
    """
    order = canonical_order(points)
    canon = torch.gather(points.detach(), 1, order.unsqueeze(-1).expand(-1, -1, points.shape[-1]))
    canon = canon.to(device="cpu", dtype=torch.float32).contiguous().numpy()
    out = []
    for c in canon:
        h = int.from_bytes(hashlib.blake2b(c.tobytes(), digest_size=8).digest(), "little")
        out.append((int(seed) * 1_000_003 + h) % (2**63))
    return out


def per_point_draws(points: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """Assign random draws made in geometric order back to the points.

    Args:
        points: ``(B, N, D)``.
        draws: ``(B, N, *rest)`` tensor; row ``j`` is meant for the ``j``-th point in :func:`canonical_order`.

    Returns:
        ``(B, N, *rest)`` tensor ``out`` with ``out[b, order[b, j]] = draws[b, j]``.
    """
    order = canonical_order(points)
    out = torch.empty_like(draws)
    idx = order.reshape(order.shape + (1,) * (draws.dim() - 2)).expand_as(draws)
    out.scatter_(1, idx, draws)
    return out


class Attribution:
    """Base class: ``Method(model, **options).attribute(points, target=None) -> (B, N)`` scores.

    Subclasses implement :meth:`_attribute` on a validated batch; the base class validates the input, moves it
    to the model's device and dtype, runs the model in eval mode (unless ``eval_mode=False``), and restores
    the model's ``train()/eval()`` flags and ``requires_grad`` flags afterwards. Gradients are always taken
    with ``torch.autograd.grad`` with respect to the input only, so ``param.grad`` is never touched.

    Args:
        model: any ``nn.Module`` mapping ``(B, N, 3)`` points to logits ``(B, C)``.
        batch_size: the largest number of clouds sent through the model in one forward pass (method default
            when None).
        eval_mode: run the model in ``eval()`` mode while explaining (its previous mode is restored).

    Attributes:
        name: the registry name of the method.
    """

    name = "base"
    default_batch_size = 64

    def __init__(self, model: nn.Module, *, batch_size: int | None = None, eval_mode: bool = True):
        if not isinstance(model, nn.Module):
            raise bad_argument("model", type(model).__name__,
                               "a torch.nn.Module mapping (B, N, 3) to logits (B, C)")
        self.model = model
        self.batch_size = self.default_batch_size if batch_size is None else check_int(
            "batch_size", batch_size, minimum=1)
        self.eval_mode = bool(eval_mode)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, batch_size={self.batch_size})"

    # ------------------------------------------------------------------ public API
    def attribute(self, points, target=None) -> torch.Tensor:
        """Score every point of every cloud.

        Args:
            points: ``(B, N, 3)`` (or ``(N, 3)``) tensor or array of finite coordinates.
            target: ``None`` (each cloud's predicted class), an int, or ``B`` ints (tensor/list).

        Returns:
            ``(B, N)`` detached tensor on the input's device, float32 (float64 when the points or the model
            are float64); higher = more important for the target.

        Raises:
            InvalidArgumentError: wrong shape, non-finite points, target out of range, bad options.
        """
        return self._run(points, target, self._attribute)

    # ------------------------------------------------------------------ helpers for subclasses
    def _run(self, points, target, fn) -> torch.Tensor:
        """Validate ``points``/``target``, then call ``fn(x, target)`` with the model in explaining state."""
        x, out_device = self._prepare(points)
        t = as_target(target, x.shape[0])
        with preserve_model_state(self.model):
            self._enter()
            out = fn(x, None if t is None else t.to(x.device))
        if isinstance(out, tuple):
            return tuple(o.detach().to(out_device) for o in out)
        return out.detach().to(out_device)

    def _check_input(self, inputs) -> torch.Tensor:
        """The validated float32 input batch (points ``(B, N, 3)`` here; image methods override it)."""
        return as_points(inputs)

    def _prepare(self, points) -> tuple[torch.Tensor, torch.device]:
        keep64 = isinstance(points, torch.Tensor) and points.dtype == torch.float64
        checked = self._check_input(points)
        x = points.detach().reshape(checked.shape) if keep64 else checked
        out_device = x.device
        dtype, device = model_dtype_device(self.model)
        if dtype is not None and dtype != x.dtype and dtype in (torch.float64, torch.float32):
            x = x.to(dtype)
        return x.to(device).detach(), out_device

    def _enter(self) -> None:
        if self.eval_mode:
            self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def _attribute(self, x: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """Model logits, checked to be ``(B, C)``."""
        out = self.model(x)
        if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != x.shape[0]:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise bad_argument("model", f"output {shape} for input {tuple(x.shape)}",
                               "logits of shape (B, C)")
        return out

    def _forward_batched(self, clouds: torch.Tensor) -> torch.Tensor:
        """Logits of many clouds ``(M, N', 3)`` in chunks of ``batch_size``, without gradients."""
        with torch.no_grad():
            return torch.cat([self._forward(clouds[s:s + self.batch_size])
                              for s in range(0, clouds.shape[0], self.batch_size)])

    @staticmethod
    def _resolve(logits: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        """``(B,)`` target classes: the argmax of ``logits`` when ``target`` is None, else range-checked."""
        if target is None:
            return logits.detach().argmax(dim=-1)
        return as_target(target, logits.shape[0], logits.shape[1]).to(logits.device)

    def _layer_gradients(self, x: torch.Tensor, target: torch.Tensor | None, layer: str, use: str, check=None):
        """For each chunk of ``batch_size`` inputs: the named layer's activations (``"input"`` or ``"output"``)
        and the gradient of the target logit with respect to them (the shared loop of Grad-CAM on points and on
        images).

        Args:
            x: ``(B, ...)`` model inputs; target: ``(B,)`` classes or None (the prediction).
            layer, use: where :func:`~pointlens.models.hooks.capture` reads the activations.
            check: optional ``check(acts, chunk)`` that raises a named error for unusable activations.

        Yields:
            ``(activations, gradient)``, both detached, of the layer's shape for that chunk.
        """
        with torch.enable_grad():
            for s in range(0, x.shape[0], self.batch_size):
                xr = x[s:s + self.batch_size].detach().requires_grad_(True)
                with capture(self.model, layer) as rec:
                    logits = self._forward(xr)
                t = self._resolve(logits, None if target is None else target[s:s + self.batch_size])
                acts = getattr(rec[layer], use)
                if check is not None:
                    check(acts, xr)
                if not isinstance(acts, torch.Tensor) or not acts.requires_grad:
                    raise bad_argument("layer", layer, "a layer whose activations depend on the input")
                (g,) = torch.autograd.grad(select(logits, t).sum(), acts)
                yield acts.detach(), g

    def _predict(self, x: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        """Resolve the target of every cloud of ``x`` (a no-grad forward pass when ``target`` is None)."""
        logits = self._forward_batched(x)
        return self._resolve(logits, target)


def broadcast_baseline(baseline, x: torch.Tensor) -> torch.Tensor:
    """A tensor (or array) ``baseline`` broadcast to the input's shape and dtype, as a fresh tensor.

    Shapes: ``baseline`` broadcastable to ``x (B, ...)`` -> ``(B, ...)``.

    Raises:
        InvalidArgumentError: naming ``baseline``, when it does not broadcast to ``x``.
    """
    b = torch.as_tensor(baseline).to(device=x.device, dtype=x.dtype)
    try:
        return torch.broadcast_to(b, x.shape).clone()
    except RuntimeError:
        raise bad_argument("baseline", f"shape {tuple(b.shape)}",
                           f"a tensor broadcastable to {tuple(x.shape)}") from None


def select(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``logits[b, target[b]]`` for every row: ``(B, C), (B,) -> (B,)``."""
    return logits.gather(1, target.view(-1, 1)).squeeze(1)
