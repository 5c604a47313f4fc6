"""Gradient-based attributions: PointShift, Gradient, Gradient x Input, Integrated Gradients, SmoothGrad.

Every method takes gradients with ``torch.autograd.grad`` with respect to the input points only (the model's
``param.grad`` is never touched) and sums the objective over the batch, so that each cloud's gradient is its
own (the model must treat clouds independently, which holds in ``eval()`` mode).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pointlens.attribution.base import Attribution, broadcast_baseline, cloud_seeds, per_point_draws, select
from pointlens.errors import bad_argument
from pointlens.ops.removal import CENTRES, cloud_centre
from pointlens.utils.seed import generator
from pointlens.utils.validate import check_choice, check_float, check_int

INTEGRATION_METHODS = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle",
                       "riemann_trapezoid")


POINT_CHUNK = 64
"""Points per chunk when a PointNet-like model's input gradient is computed chunk by chunk (see
:func:`_pooled_input_grad`). Small chunks keep a chunk's activations (64 points x 1,024 channels) in the CPU
caches: 32 clouds of 512 points, one thread, median of 5 alternating runs, vs Captum ``Saliency``: 1.71x at 32
points per chunk, 1.73x at 64, 1.50x at 128, 1.02x at 256, 0.96x unchunked (benchmarks/bench_pointshift_saliency.py)."""


def _pointwise_max_pool(model) -> bool:
    """True for a pointlens PointNet whose points meet only in the global max pool (no T-Net), in eval mode and
    without hooks: then ``logits = head(max_n f(x_n))`` and the input gradient can be computed over chunks of
    points."""
    from pointlens.models.layers import GlobalMaxPool, PointClassifier
    from pointlens.models.pointnet import PointNet

    return (isinstance(model, PointNet) and type(model).forward is PointNet.forward and model.chunkable()
            and isinstance(getattr(model, "pool", None), GlobalMaxPool)
            and type(model).head_input is PointClassifier.head_input
            and type(model).forward_head is PointClassifier.forward_head)


def _pooled_input_grad(method, x: torch.Tensor, target, objective: str):
    """Input gradient of a max-pool model through its CRITICAL points only: the same numbers as back-propagating
    through the whole cloud, for a fraction of the work and memory.

    With ``logits = head(max_n f(x_n))`` the max pool routes each channel's gradient to ONE point (its arg-max,
    the first one on ties, as ``torch.max``), so every point that is the arg-max of no channel has a gradient of
    exactly 0 and only the critical points need a backward pass:

    1. Without gradients, the per-point features (``chunk`` points at a time) give the max of every channel and
       the point that attains it.
    2. The head runs on the pooled feature with gradients: ``dL/dpool (B, C)``.
    3. The critical points of each cloud (typically a third of a PointNet's 512 points) are gathered, their
       features recomputed with gradients (``chunk`` at a time), and ``sum_c dL/dpool_c * f_c(x_argmax(c))`` is
       back-propagated to them; every other point's gradient is 0.

    Cost: one forward pass without gradients plus a forward and backward over the critical points, instead of a
    forward and backward over all ``N`` points. Memory ``O(chunk * C)`` per layer instead of ``O(N * C)``.

    Shapes: ``x (B, N, 3)`` -> ``(grad (B, N, 3), target (B,))``.
    """
    model, chunk = method.model, method.point_chunk
    x = model.check_input(x)
    b, n = x.shape[:2]
    pooled = arg = None
    with torch.no_grad():
        for s in range(0, n, chunk):
            v, i = model.forward_features(x[:, s:s + chunk]).max(dim=2)
            if pooled is None:
                pooled, arg = v, i
            else:
                better = v > pooled
                pooled, arg = torch.where(better, v, pooled), torch.where(better, i + s, arg)
    pooled = pooled.detach().requires_grad_(True)
    logits = model.head(pooled)
    t = method._resolve(logits, target)
    out = select(logits, t).sum() if objective == "logit" else F.cross_entropy(logits, t, reduction="sum")
    (gpool,) = torch.autograd.grad(out, pooled)
    # critical points first (in index order): slot j of cloud b is point idx[b, j]; channel c's arg-max sits in
    # slot slot[b, c]; slots past a cloud's own critical count hold other points, which no channel picks
    crit = torch.zeros(b, n, dtype=torch.bool, device=x.device).scatter_(1, arg, True)
    count = int(crit.sum(1).max())
    idx = torch.sort((~crit).to(torch.uint8), dim=1, stable=True).indices[:, :count]
    slot = (torch.cumsum(crit, 1) - 1).gather(1, arg)
    grad = torch.zeros_like(x)
    for s in range(0, count, chunk):
        part = idx[:, s:s + chunk]
        inside = (slot >= s) & (slot < s + part.shape[1])
        xc = torch.gather(x, 1, part.unsqueeze(-1).expand(-1, -1, x.shape[2])).detach().requires_grad_(True)
        feats = model.forward_features(xc)
        picked = feats.gather(2, (slot - s).clamp(0, part.shape[1] - 1).unsqueeze(-1)).squeeze(-1)
        (g,) = torch.autograd.grad((picked * (gpool * inside)).sum(), xc)
        grad.scatter_(1, part.unsqueeze(-1).expand_as(g), g)
    return grad, t


class GradientAttribution(Attribution):
    """Base of the gradient methods: input gradients of the target logit (or loss), chunked over clouds; for
    PointNet-like max-pool models back-propagated through the critical points only (:func:`_pooled_input_grad`,
    the same gradient), chunked over points."""

    point_chunk = POINT_CHUNK

    def _input_grad(self, x: torch.Tensor, target: torch.Tensor | None, objective: str = "logit"):
        """Gradient of the objective w.r.t. the points of every cloud, in chunks of ``batch_size`` clouds.

        Args:
            x: ``(B, N, 3)``.
            target: ``(B,)`` or None (predicted class from the same forward pass).
            objective: ``"logit"`` (target logit) or ``"ce"`` (cross-entropy vs. the target, summed).

        Returns:
            ``(grad (B, N, 3), target (B,))``.
        """
        grads, targets = [], []
        with torch.enable_grad():
            for s in range(0, x.shape[0], self.batch_size):
                if _pointwise_max_pool(self.model):
                    g, t = _pooled_input_grad(self, x[s:s + self.batch_size].detach(),
                                              None if target is None else target[s:s + self.batch_size], objective)
                    grads.append(g)
                    targets.append(t)
                    continue
                xr = x[s:s + self.batch_size].detach().requires_grad_(True)
                logits = self._forward(xr)
                t = self._resolve(logits, None if target is None else target[s:s + self.batch_size])
                if objective == "logit":
                    out = select(logits, t).sum()
                else:
                    out = F.cross_entropy(logits, t, reduction="sum")
                (g,) = torch.autograd.grad(out, xr)
                grads.append(g)
                targets.append(t)
        return torch.cat(grads), torch.cat(targets)


class PointShift(GradientAttribution):
    """Point-shift saliency (Zheng et al., ICCV 2019): the loss gradient along each point's radius.

    ``s_i = -r_i^(1+alpha) dL/dr_i = -r_i^alpha (x_i - c) . grad_{x_i} L`` with ``L`` the cross-entropy of the
    logits against the target (summed over the batch), ``c`` the cloud's centre (held fixed, not
    differentiated)
    and ``r_i = ||x_i - c||``. A high score means that shifting the point to the centre (which approximates
    deleting it) raises the loss: the point supports the target. One forward and one backward pass.

    Args:
        model: any ``nn.Module`` mapping ``(B, N, 3)`` to logits ``(B, C)``.
        alpha: the power ``alpha >= 0`` (authors' code: 1 for PointNet, 6 for DGCNN). Default 1.
        centre: ``"median"`` (per-axis median, the paper's choice) or ``"mean"``.
        batch_size: clouds per forward/backward pass.

    SHAPES:
        ``attribute((B, N, 3), target) -> (B, N)``.
    """

    name = "pointshift"

    def __init__(self, model: nn.Module, *, alpha: float = 1.0, centre: str = "median", **kwargs):
        super().__init__(model, **kwargs)
        self.alpha = check_float("alpha", alpha, minimum=0.0)
        self.centre = check_choice("centre", centre, CENTRES)

    def _attribute(self, x, target):
        g, _ = self._input_grad(x, target, objective="ce")
        d = x - cloud_centre(x, self.centre)
        r = d.norm(dim=-1)
        return -(r ** self.alpha) * (d * g).sum(-1)


class Gradient(GradientAttribution):
    """Saliency: the L2 norm over xyz of the gradient of the target logit with respect to each point.

    ``s_i = || grad_{x_i} logit_t(x) ||_2`` (Captum's ``Saliency`` per coordinate, reduced by the L2 norm).

    Args:
        model: any ``nn.Module`` mapping ``(B, N, 3)`` to logits ``(B, C)``.
        batch_size: clouds per forward/backward pass.

    SHAPES:
        ``attribute((B, N, 3), target) -> (B, N)``.
    """

    name = "gradient"

    def _attribute(self, x, target):
        g, _ = self._input_grad(x, target)
        return g.norm(dim=-1)


class GradientXInput(GradientAttribution):
    """Gradient x Input: ``s_i = sum_xyz x_i * grad_{x_i} logit_t(x)`` (optionally its absolute value).

    Note that it depends on where the origin is (clouds are usually centred at the origin).

    Args:
        model: any ``nn.Module`` mapping ``(B, N, 3)`` to logits ``(B, C)``.
        absolute: return ``|s_i|`` instead of ``s_i``.
        batch_size: clouds per forward/backward pass.

    SHAPES:
        ``attribute((B, N, 3), target) -> (B, N)``.
    """

    name = "gradxinput"

    def __init__(self, model: nn.Module, *, absolute: bool = False, **kwargs):
        super().__init__(model, **kwargs)
        self.absolute = bool(absolute)

    def _attribute(self, x, target):
        g, _ = self._input_grad(x, target)
        s = (x * g).sum(-1)
        return s.abs() if self.absolute else s


def integration_rule(method: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``alphas`` in [0, 1] and weights of a quadrature rule for the path integral (as Captum).

    * ``riemann_left/right/middle``: ``steps`` equal weights ``1/steps`` at the left/right/middle of the
      cells;
    * ``riemann_trapezoid``: nodes ``linspace(0, 1, steps)``, weights ``1/steps`` with the two end weights
      halved (Captum's convention; the weights sum to ``1 - 1/steps``);
    * ``gausslegendre``: Gauss-Legendre nodes and weights mapped from [-1, 1] to [0, 1] (exact for
      polynomials of degree ``2 steps - 1``).

    Args:
        method: one of ``INTEGRATION_METHODS``.
        steps: number of nodes (``>= 2`` for the Riemann rules, ``>= 1`` for Gauss-Legendre).

    Returns:
        ``(alphas (steps,), weights (steps,))`` float64 numpy arrays.
    """
    check_choice("method", method, INTEGRATION_METHODS)
    steps = check_int("steps", steps, minimum=1 if method == "gausslegendre" else 2)
    n = steps
    if method == "gausslegendre":
        nodes, w = np.polynomial.legendre.leggauss(n)
        return 0.5 * (1.0 + nodes), 0.5 * w
    weights = np.full(n, 1.0 / n)
    if method == "riemann_trapezoid":
        weights[0] /= 2
        weights[-1] /= 2
        return np.linspace(0.0, 1.0, n), weights
    if method == "riemann_left":
        return np.linspace(0.0, 1.0 - 1.0 / n, n), weights
    if method == "riemann_right":
        return np.linspace(1.0 / n, 1.0, n), weights
    return np.linspace(1.0 / (2 * n), 1.0 - 1.0 / (2 * n), n), weights


class IntegratedGradients(GradientAttribution):
    """Integrated Gradients (Sundararajan et al. 2017) on point coordinates.

    ``A_i = (x_i - x0_i) * integral_0^1 grad_{x_i} logit_t(x0 + a (x - x0)) da`` per coordinate, approximated
    by the quadrature rule ``method`` with ``steps`` nodes (:func:`integration_rule`, Captum's conventions);
    the per-point score is ``sum_xyz A_i``. Completeness: ``sum_i score_i ~= logit_t(x) - logit_t(x0)``.

    Args:
        model: any ``nn.Module`` mapping ``(B, N, 3)`` to logits ``(B, C)``.
        baseline: ``"centre"`` (every point collapsed onto the cloud's centre), ``"zeros"`` (every point at
            the origin) or a tensor broadcastable to ``(B, N, 3)``.
        centre: ``"median"`` or ``"mean"``: the centre used by ``baseline="centre"``.
        steps: number of quadrature nodes (default 50, as Captum).
        method: ``"gausslegendre"`` (default, as Captum), ``"riemann_left"``, ``"riemann_right"``,
            ``"riemann_middle"`` or ``"riemann_trapezoid"``.
        batch_size: interpolated clouds per forward/backward pass.

    SHAPES:
        ``attribute((B, N, 3), target) -> (B, N)``; ``attribute_coordinates((B, N, 3), target) -> (B, N, 3)``.
    """

    name = "ig"

    def __init__(self, model: nn.Module, *, baseline="centre", centre: str = "median", steps: int = 50,
                 method: str = "gausslegendre", **kwargs):
        super().__init__(model, **kwargs)
        if isinstance(baseline, str):
            check_choice("baseline", baseline, ("centre", "zeros"))
        elif not isinstance(baseline, (torch.Tensor, np.ndarray)):
            raise bad_argument("baseline", baseline,
                               "'centre', 'zeros' or a tensor broadcastable to (B, N, 3)")
        self.baseline = baseline
        self.centre = check_choice("centre", centre, CENTRES)
        self.alphas, self.weights = integration_rule(method, steps)
        self.steps, self.method = int(steps), method

    def baseline_for(self, x: torch.Tensor) -> torch.Tensor:
        """The baseline cloud ``(B, N, 3)`` for the points ``x`` ``(B, N, 3)``."""
        if isinstance(self.baseline, str):
            if self.baseline == "zeros":
                return torch.zeros_like(x)
            return cloud_centre(x, self.centre).expand_as(x).clone()
        return broadcast_baseline(self.baseline, x)

    def attribute_coordinates(self, points, target=None) -> torch.Tensor:
        """Per-coordinate attributions ``(B, N, 3)``; their total is ``~ logit_t(x) - logit_t(baseline)``.

        Args:
            points: ``(B, N, 3)``.
            target: None (predicted class), an int or ``B`` ints.

        Returns:
            ``(B, N, 3)`` detached tensor.
        """
        return self._run(points, target, self._coordinates)

    def _attribute(self, x, target):
        return self._coordinates(x, target).sum(-1)

    def _coordinates(self, x, target):
        t = self._predict(x, target)
        x0 = self.baseline_for(x)
        b = x.shape[0]
        alphas = torch.as_tensor(self.alphas, dtype=x.dtype, device=x.device)
        weights = torch.as_tensor(self.weights, dtype=x.dtype, device=x.device)
        # path clouds in step-major order: row k*B + j is cloud j at node k
        path = x0.unsqueeze(0) + alphas.view(-1, 1, 1, 1) * (x - x0).unsqueeze(0)
        path = path.reshape(-1, *x.shape[1:])
        g, _ = self._input_grad(path, t.repeat(len(alphas)))
        g = (g.view(len(alphas), b, *x.shape[1:]) * weights.view(-1, 1, 1, 1)).sum(0)
        return (x - x0) * g


class SmoothGrad(Attribution):
    """SmoothGrad (Smilkov et al. 2017): average an attribution over noisy copies of the cloud.

    ``s = (1/n) sum_k A(x + eps_k)`` with ``eps_k ~ N(0, sigma^2)`` i.i.d. per coordinate; the target is
    resolved once on the clean cloud. The noise of cloud ``b`` comes from a generator seeded from ``seed`` and its
    geometry (:func:`cloud_seeds`)
    and is drawn per point in geometric order (:func:`~pointlens.attribution.base.canonical_order`), so it is
    deterministic for a seed and permutation-consistent.

    Three ways to build it:
    ``SmoothGrad(Gradient(model), n_samples=16, sigma=0.02)`` (wrap an instance),
    ``SmoothGrad(Gradient, model=model, ...)`` (a class, built with ``model`` and ``**method_options``),
    ``SmoothGrad(model, method="gradient", ...)`` (a registry name; what ``create_attribution`` does).

    Args:
        method_or_model: an :class:`Attribution` instance or subclass, or the model.
        method: registry name or class of the wrapped method when the first argument is the model.
        n_samples: number of noisy copies (default 16).
        sigma: noise standard deviation in coordinate units (default 0.02; clouds are unit-sphere normalised).
        seed: random seed.
        model: the model when the first argument is a class.
        batch_size: clouds per forward pass of the wrapped method (when it is built here).
        **method_options: options of the wrapped method (when it is built here).

    SHAPES:
        ``attribute((B, N, 3), target) -> (B, N)``.
    """

    name = "smoothgrad"

    def __init__(self, method_or_model, method="gradient", *, n_samples: int = 16, sigma: float = 0.02,
                 seed: int = 0, model: nn.Module | None = None, batch_size: int | None = None,
                 eval_mode: bool = True, **method_options):
        if isinstance(method_or_model, Attribution):
            inner = method_or_model
        elif isinstance(method_or_model, type) and issubclass(method_or_model, Attribution):
            if model is None:
                raise bad_argument("model", None,
                                   "the model to explain when SmoothGrad is given a method class")
            inner = method_or_model(model, batch_size=batch_size, eval_mode=eval_mode, **method_options)
        elif isinstance(method_or_model, nn.Module):
            if isinstance(method, str):
                from pointlens.attribution import create_attribution

                if method == "smoothgrad":
                    raise bad_argument("method", method, "a method other than smoothgrad")
                inner = create_attribution(method, method_or_model, batch_size=batch_size,
                                           eval_mode=eval_mode, **method_options)
            elif isinstance(method, type) and issubclass(method, Attribution):
                inner = method(method_or_model, batch_size=batch_size, eval_mode=eval_mode, **method_options)
            else:
                raise bad_argument("method", method, "a registry name or an Attribution class")
        else:
            raise bad_argument("method_or_model", type(method_or_model).__name__,
                               "an Attribution instance or class, or an nn.Module")
        super().__init__(inner.model, batch_size=inner.batch_size, eval_mode=inner.eval_mode)
        self.inner = inner
        self.n_samples = check_int("n_samples", n_samples, minimum=1)
        self.sigma = check_float("sigma", sigma, minimum=0.0)
        self.seed = check_int("seed", seed)

    def noise(self, points: torch.Tensor) -> torch.Tensor:
        """The noise added to ``points`` ``(B, N, 3)``: ``(n_samples, B, N, 3)`` (same dtype/device)."""
        b, n, d = points.shape
        seeds = cloud_seeds(points, self.seed)
        draws = torch.stack([torch.randn(n, self.n_samples, d, generator=generator(seeds[i]),
                                         dtype=torch.float64) for i in range(b)])
        eps = per_point_draws(points.detach().cpu(), draws)  # (B, N, S, D)
        return (self.sigma * eps).permute(2, 0, 1, 3).to(device=points.device, dtype=points.dtype)

    def _attribute(self, x, target):
        t = self._predict(x, target)
        noisy = (x.unsqueeze(0) + self.noise(x)).reshape(-1, *x.shape[1:])
        s = self.inner._attribute(noisy, t.repeat(self.n_samples))
        return s.view(self.n_samples, *x.shape[:2]).mean(0)
