"""Gradient-based image attributions: saliency (Simonyan et al. 2014), Integrated Gradients (Sundararajan et al.
2017) and Grad-CAM (Selvaraju et al. 2017), on the same gradient machinery as the point methods."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pointlens.attribution.base import broadcast_baseline
from pointlens.attribution.gradient import GradientAttribution, integration_rule
from pointlens.attribution.image.base import ImageAttribution, upsample
from pointlens.errors import bad_argument
from pointlens.models.hooks import get_layer
from pointlens.utils.validate import check_choice


class ImageGradient(ImageAttribution, GradientAttribution):
    """Saliency (Simonyan, Vedaldi, Zisserman 2014): the magnitude of the target logit's input gradient.

    With ``g = d logit_t / d x`` (``(3, H, W)`` per image): ``s_ij = max_c |g_cij|`` (``reduce="max"``, the
    paper's choice), ``sum_c |g_cij|`` (``"sum"``) or ``||g_:ij||_2`` (``"l2"``). One forward and one backward.

    Args:
        model: any ``nn.Module`` mapping ``(B, 3, H, W)`` to logits ``(B, C)``.
        reduce: the channel reduction, ``"max"`` (default), ``"sum"`` or ``"l2"``.
        batch_size: images per forward/backward pass (default 64).

    SHAPES:
        ``attribute((B, 3, H, W), target) -> (B, H, W)``.
    """

    name = "gradient"

    def __init__(self, model: nn.Module, *, reduce: str = "max", **kwargs):
        super().__init__(model, **kwargs)
        self.reduce = check_choice("reduce", reduce, ("max", "sum", "l2"))

    def _attribute(self, x, target):
        g, _ = self._input_grad(x, target)
        if self.reduce == "l2":
            return g.norm(dim=1)
        return g.abs().amax(dim=1) if self.reduce == "max" else g.abs().sum(dim=1)


class ImageIntegratedGradients(ImageAttribution, GradientAttribution):
    """Integrated Gradients (Sundararajan et al. 2017) on pixels, with the point IG's quadrature rules.

    ``A_cij = (x - x0)_cij * integral_0^1 d logit_t(x0 + a (x - x0)) / d x_cij da``, approximated by
    :func:`~pointlens.attribution.gradient.integration_rule` (``method``, ``steps``: Captum's conventions, so
    :meth:`attribute_channels` equals Captum's ``IntegratedGradients`` with the same ``n_steps``/``method``).
    The pixel score sums the channels: ``s_ij = sum_c A_cij`` (``reduce="sum"``, default; completeness is kept:
    ``sum_ij s_ij ~= logit_t(x) - logit_t(x0)``) or ``sum_c |A_cij|`` (``reduce="abs"``).

    Args:
        model: any ``nn.Module`` mapping ``(B, 3, H, W)`` to logits ``(B, C)``.
        baseline: ``"zeros"`` (a black image, default), a number (a constant grey image) or a tensor
            broadcastable to ``(B, 3, H, W)``.
        steps: quadrature nodes (default 50, as Captum).
        method: ``"gausslegendre"`` (default, as Captum), ``"riemann_left"``, ``"riemann_right"``,
            ``"riemann_middle"`` or ``"riemann_trapezoid"``.
        reduce: channel reduction, ``"sum"`` (default) or ``"abs"``.
        batch_size: path images per forward/backward pass (default 64).

    SHAPES:
        ``attribute((B, 3, H, W), target) -> (B, H, W)``; ``attribute_channels(...) -> (B, 3, H, W)``.
    """

    name = "ig"

    def __init__(self, model: nn.Module, *, baseline="zeros", steps: int = 50, method: str = "gausslegendre",
                 reduce: str = "sum", **kwargs):
        super().__init__(model, **kwargs)
        if isinstance(baseline, str):
            check_choice("baseline", baseline, ("zeros",))
        elif not isinstance(baseline, (int, float, torch.Tensor, np.ndarray)) or isinstance(baseline, bool):
            raise bad_argument("baseline", baseline, "'zeros', a number or a tensor broadcastable to (B, 3, H, W)")
        self.baseline = baseline
        self.alphas, self.weights = integration_rule(method, steps)
        self.steps, self.method = int(steps), method
        self.reduce = check_choice("reduce", reduce, ("sum", "abs"))

    def baseline_for(self, x: torch.Tensor) -> torch.Tensor:
        """The baseline images ``(B, 3, H, W)`` for the images ``x`` ``(B, 3, H, W)``."""
        if isinstance(self.baseline, str):
            return torch.zeros_like(x)
        if isinstance(self.baseline, (int, float)):
            return torch.full_like(x, float(self.baseline))
        return broadcast_baseline(self.baseline, x)

    def attribute_channels(self, images, target=None) -> torch.Tensor:
        """Per-channel attributions ``(B, 3, H, W)`` (before the channel reduction); their total is
        ``~ logit_t(x) - logit_t(baseline)``."""
        return self._run(images, target, self._channels)

    def _attribute(self, x, target):
        a = self._channels(x, target)
        return a.sum(1) if self.reduce == "sum" else a.abs().sum(1)

    def _channels(self, x, target):
        t = self._predict(x, target)
        x0 = self.baseline_for(x)
        k, b = len(self.alphas), x.shape[0]
        alphas = torch.as_tensor(self.alphas, dtype=x.dtype, device=x.device).view(-1, 1, 1, 1, 1)
        weights = torch.as_tensor(self.weights, dtype=x.dtype, device=x.device).view(-1, 1, 1, 1, 1)
        # path images in step-major order: row k*B + j is image j at node k
        path = (x0.unsqueeze(0) + alphas * (x - x0).unsqueeze(0)).reshape(-1, *x.shape[1:])
        g, _ = self._input_grad(path, t.repeat(k))
        g = (g.view(k, b, *x.shape[1:]) * weights).sum(0)
        return (x - x0) * g


def default_gradcam_layer(model: nn.Module) -> str:
    """The layer Grad-CAM reads by default: ``model.gradcam_layer`` when the model declares it, else the last
    ``nn.Conv2d`` in ``model.named_modules()`` order.

    Raises:
        InvalidArgumentError: neither exists (give ``layer=`` explicitly).
    """
    name = getattr(model, "gradcam_layer", None)
    if isinstance(name, str):
        get_layer(model, name)
        return name
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        shown = ", ".join(n for n, _ in model.named_modules() if n)[:300] or "none"
        raise bad_argument("layer", None, "the dotted name of a layer with spatial activations (B, K, h, w): "
                           f"this model declares no gradcam_layer and has no nn.Conv2d; layers: {shown}")
    return convs[-1]


class ImageGradCAM(ImageAttribution):
    """Grad-CAM (Selvaraju et al. 2017): a convolutional layer's activations weighted by their mean gradients.

    With ``A`` the layer's activations ``(K, h, w)`` and ``g = d logit_t / dA``:
    ``w_k = (1 / hw) sum_ij g_kij`` and ``L = ReLU(sum_k w_k A_k)`` ``(h, w)`` (the layer-resolution map,
    :meth:`layer_map`; equal to Captum's ``LayerGradCam(..., relu_attributions=True)``). :meth:`attribute`
    returns ``L`` resized to the image ``(H, W)`` with ``F.interpolate`` (``interpolation="bilinear"``,
    ``align_corners=False``; the ReLU is applied before resizing, so the map stays >= 0), or ``L`` itself when
    ``upsample=False``.

    Args:
        model: any ``nn.Module`` mapping ``(B, 3, H, W)`` to logits ``(B, C)``.
        layer: dotted name of the layer (default: :func:`default_gradcam_layer`, the model's ``gradcam_layer``
            attribute or its last ``nn.Conv2d``).
        use: read the layer's ``"output"`` (default) or ``"input"``.
        relu: apply the final ReLU (default True, as the paper).
        upsample: resize the map to the image size (default True).
        interpolation: ``"bilinear"`` (default) or ``"nearest"`` (Captum's ``interpolate`` default).
        batch_size: images per forward/backward pass (default 64).

    SHAPES:
        ``attribute((B, 3, H, W), target) -> (B, H, W)``; ``layer_map(...) -> (B, h, w)``.
    """

    name = "gradcam"

    def __init__(self, model: nn.Module, *, layer: str | None = None, use: str = "output", relu: bool = True,
                 upsample: bool = True, interpolation: str = "bilinear", **kwargs):
        super().__init__(model, **kwargs)
        if layer is not None and not isinstance(layer, str):
            raise bad_argument("layer", layer, "the dotted name of a layer with spatial activations")
        if layer is not None:
            get_layer(model, layer)
        self.layer = layer if layer is not None else default_gradcam_layer(model)
        self.use = check_choice("use", use, ("input", "output"))
        self.relu = bool(relu)
        self.upsample = bool(upsample)
        self.interpolation = check_choice("interpolation", interpolation, ("bilinear", "nearest"))

    def layer_map(self, images, target=None) -> torch.Tensor:
        """The Grad-CAM map at the layer's resolution ``(B, h, w)`` (ReLU applied when ``relu``)."""
        return self._run(images, target, self._cam)

    def _attribute(self, x, target):
        cam = self._cam(x, target)
        if not self.upsample:
            return cam
        return upsample(cam, tuple(x.shape[-2:]), mode=self.interpolation)

    def _cam(self, x, target):
        def spatial(acts, xr):
            if not isinstance(acts, torch.Tensor) or acts.dim() != 4 or acts.shape[0] != xr.shape[0]:
                shape = tuple(acts.shape) if isinstance(acts, torch.Tensor) else type(acts).__name__
                raise bad_argument("layer", f"{self.layer!r} with activations {shape}",
                                   "a layer with spatial activations (B, K, h, w)")

        out = []
        for acts, g in self._layer_gradients(x, target, self.layer, self.use, check=spatial):
            cam = (g.mean(dim=(2, 3), keepdim=True) * acts).sum(1)
            out.append(cam.clamp_min(0) if self.relu else cam)
        return torch.cat(out)
