"""Point Grad-CAM: per-point activations of a layer weighted by channel-averaged gradients of the target."""

from __future__ import annotations

import torch
from torch import nn

from pointlens.attribution.gradient import GradientAttribution
from pointlens.attribution.occlusion import _to_bcn, resolve_layer_options


class PointGradCAM(GradientAttribution):
    """Grad-CAM (Selvaraju et al. 2017) on per-point activations.

    With ``A`` the layer's per-point activations ``(C, N)`` and ``g = d logit_t / dA``:
    ``w_c = (1/N) sum_i g_ci`` and ``s_i = ReLU(sum_c w_c A_ci)``.

    Args:
        model: any ``nn.Module`` mapping ``(B, N, 3)`` to logits ``(B, C)``.
        layer: dotted name of the layer (default ``model.pool_layer``; for a model with neither a pooling
            module nor that attribute, the last module with per-point output before the pool, found by one
            probe forward, see :func:`pointlens.models.hooks.find_pool_layer`; ``self.pool`` tells which).
        use: take the layer's ``"input"`` (default for a named layer: for a max-pool layer, the per-point
            features) or ``"output"`` (default for a found layer).
        layout: layout of those activations, ``"BCN"`` (default; a found layer's own) or ``"BNC"``.
        relu: apply the final ReLU (default True).
        batch_size: clouds per forward/backward pass.

    SHAPES:
        ``attribute((B, N, 3), target) -> (B, N)``.
    """

    name = "gradcam"

    def __init__(self, model: nn.Module, *, layer: str | None = None, use: str | None = None,
                 layout: str | None = None, relu: bool = True, **kwargs):
        super().__init__(model, **kwargs)
        self.pool, self.use, self.layout = resolve_layer_options(
            model, layer, use, layout, method="gradcam", option="layer",
            what="the dotted name of a layer with per-point activations")
        self.layer = self.pool.name
        self.relu = bool(relu)

    def _attribute(self, x, target):
        n = x.shape[1]
        out = []
        for acts, g in self._layer_gradients(x, target, self.layer, self.use):
            a = _to_bcn(acts, self.layout, n, self.layer, "layer")
            g = _to_bcn(g, self.layout, n, self.layer, "layer")
            cam = (g.mean(dim=2, keepdim=True) * a).sum(1)
            out.append(cam.clamp_min(0) if self.relu else cam)
        return torch.cat(out)
