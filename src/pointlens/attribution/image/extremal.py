"""Extremal Perturbations (Fong, Patrick, Vedaldi, ICCV 2019): the smooth mask of a given area that keeps
(or deletes) the most evidence for the target, found by gradient ascent."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pointlens.attribution.image.base import OUTPUTS, ImageAttribution, gaussian_blur, model_output, scaled
from pointlens.errors import bad_argument
from pointlens.utils.validate import check_choice, check_float, check_int

VARIANTS = ("preserve", "delete", "dual")


class SmoothMaskGenerator:
    """The paper's smooth-max parameterisation of masks (TorchRay's ``MaskGenerator``, written here on torch).

    A parameter grid ``m`` ``(B, 1, ceil(H/step), ceil(W/step))`` with values in [0, 1] becomes a smooth mask:
    every grid node ``u`` is a bump ``m_u k(|p - c_u| / sigma)`` centred at ``c_u`` (spacing ``step`` pixels,
    ``k(z) = exp(-2 max(z - 1/2, 0)^2)``: flat inside ``sigma / 2``), and the mask at pixel ``p`` is the smooth
    maximum of the bumps covering it, ``sum_u b_u softmax(20 b)_u``, clamped to [0, 1]. The mask is computed on
    the image plus a margin of ``sigma`` pixels on each side and cropped to the image.

    Args:
        shape: ``(H, W)`` of the images.
        step: grid spacing in pixels (int >= 1).
        sigma: bump radius in pixels (> 0).
    """

    coldness = 20.0

    def __init__(self, shape: tuple[int, int], step: int, sigma: float):
        self.shape, self.step, self.sigma = tuple(shape), int(step), float(sigma)
        self.margin = self.sigma
        self.padding = 1 + math.ceil((self.margin + self.sigma) / self.step)
        self.radius = 1 + math.ceil(self.sigma / self.step)
        self.shape_in = [math.ceil(z / self.step) for z in self.shape]
        self.shape_mid = [z + 2 * self.padding - (2 * self.radius + 1) + 1 for z in self.shape_in]
        self.shape_up = [self.step * z for z in self.shape_mid]
        self.shape_out = [z - self.step + 1 for z in self.shape_up]
        k = 2 * self.radius + 1
        weight = torch.zeros(1, k * k, *self.shape_out, dtype=torch.float64)
        uy, ux = torch.meshgrid(torch.arange(self.shape_out[0], dtype=torch.float64),
                                torch.arange(self.shape_out[1], dtype=torch.float64), indexing="ij")
        inv = [zm / zo for zm, zo in zip(self.shape_mid, self.shape_up)]
        for ky in range(k):
            for kx in range(k):
                iy = torch.floor(inv[0] * uy) + ky - self.padding
                ix = torch.floor(inv[1] * ux) + kx - self.padding
                delta = torch.sqrt((uy - (self.margin + self.step * iy)) ** 2
                                   + (ux - (self.margin + self.step * ix)) ** 2)
                weight[0, ky * k + kx] = torch.exp(-2 * ((delta / self.sigma - 0.5).clamp(min=0) ** 2))
        self.weight = weight

    def generate(self, params: torch.Tensor) -> torch.Tensor:
        """Smooth masks ``(B, 1, H, W)`` in [0, 1] from parameters ``(B, 1, *shape_in)``."""
        k = 2 * self.radius + 1
        w = self.weight.to(device=params.device, dtype=params.dtype)
        m = F.unfold(params, (k, k), padding=(self.padding, self.padding))
        m = m.reshape(params.shape[0], -1, *self.shape_mid)
        m = F.interpolate(m, size=self.shape_up, mode="nearest")
        m = m[..., :self.shape_out[0], :self.shape_out[1]] * w
        m = (m * F.softmax(self.coldness * m, dim=1)).sum(dim=1, keepdim=True).clamp(0, 1)
        c = round(self.margin)
        return m[:, :, c:c + self.shape[0], c:c + self.shape[1]]


class BlurPyramid:
    """The blur perturbation: ``num_levels`` copies of each image blurred with ``sigma_l = (1 - l / (L - 1))
    max_blur`` (level ``L - 1`` is the image itself); a mask value ``m`` in [0, 1] picks level ``m (L - 1)``,
    linearly interpolated between the two nearest levels (TorchRay's ``Perturbation``, Gaussian blur with zero
    padding as its ``imsmooth``).

    Args:
        images: ``(B, 3, H, W)``.
        num_levels: ``L >= 2``.
        max_blur: the strongest blur's standard deviation in pixels.
    """

    def __init__(self, images: torch.Tensor, num_levels: int, max_blur: float):
        self.num_levels = num_levels
        levels = [gaussian_blur(images, (1 - i / (num_levels - 1)) * max_blur) for i in range(num_levels)]
        self.pyramid = torch.stack(levels, dim=1)  # (B, L, 3, H, W)

    def apply(self, mask: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Perturbed images ``(n, 3, H, W)`` for masks ``(n, 1, H, W)`` of images ``rows`` ``(n,)``."""
        w = mask * (self.num_levels - 1)
        k = w.detach().floor().clamp(0, self.num_levels - 1)
        w = w - k
        k = k.long()
        y = self.pyramid[rows]  # (n, L, 3, H, W)
        idx = k.unsqueeze(2).expand(-1, -1, y.shape[2], -1, -1)
        y0 = torch.gather(y, 1, idx).squeeze(1)
        y1 = torch.gather(y, 1, (idx + 1).clamp(max=self.num_levels - 1)).squeeze(1)
        return (1 - w) * y0 + w * y1


class ExtremalPerturbation(ImageAttribution):
    """Extremal Perturbations (Fong, Patrick, Vedaldi, ICCV 2019), as TorchRay's ``extremal_perturbation``.

    For each target area ``a``, a smooth mask ``m`` (:class:`SmoothMaskGenerator`) maximises
    ``f(m (x) x) - lambda_t ||sort(m) - r_a||^2 / HW`` where ``m (x) x`` blurs the image where ``m`` is 0
    (:class:`BlurPyramid`), ``f`` is the target logit (``output="logit"``, TorchRay's reward) and ``r_a`` is the
    sorted reference vector with ``a HW`` ones (the area constraint by ranking). SGD with momentum 0.9
    (dampening 0.9), learning rate 0.01, ``lambda_0 = 300`` growing by 1.0035 per iteration, parameters clamped
    to [0, 1] after each step, and the masked image flipped left-right on even iterations (``jitter``).

    ``variant="preserve"`` (default) keeps the evidence inside the mask; ``"delete"`` minimises ``f`` of the
    image blurred INSIDE the mask; ``"dual"`` maximises the difference of the two.

    Defaults are the paper's / TorchRay's: ``areas=(0.1,)``, 800 iterations, 8 blur levels, and the lengths
    given in pixels at 224 px — grid ``step`` 7, bump ``sigma`` 21, ``max_blur`` 20 — scaled to the image by
    ``min(H, W) / 224`` (64 px: step 2, sigma 6, max_blur 5.7), so the mask has the same smoothness relative
    to the image. Departure: the area constraint is applied to the mask over the image (the paper's ``a(m)``);
    TorchRay applies it to the mask with its ``sigma``-pixel margin.

    Cost: ``iterations`` forward and backward passes per image and area (images are optimised together in
    batches of ``batch_size`` x areas; each row's update depends only on its own image, so batching does not
    change the result).

    Args:
        model: any ``nn.Module`` mapping ``(B, 3, H, W)`` to logits ``(B, C)``.
        areas: target areas in (0, 1) (default ``(0.1,)``); :meth:`attribute` returns the sum of the masks over
            the areas (one area: the mask itself), :meth:`attribute_masks` each mask.
        iterations: optimisation steps (default 800).
        step: grid spacing in pixels (default: 7 at 224 px, scaled, at least 1).
        sigma: bump radius in pixels (default: 21 at 224 px, scaled).
        max_blur: strongest blur in pixels (default: 20 at 224 px, scaled).
        num_levels: blur levels (default 8).
        variant: ``"preserve"`` (default), ``"delete"`` or ``"dual"``.
        jitter: flip on even iterations (default True).
        output: ``"logit"`` (default), ``"prob"`` or ``"sigmoid"``.
        lr: learning rate (default 0.01); momentum: 0.9; regul_weight: ``lambda_0`` (default 300);
        regul_growth: per-iteration factor of ``lambda`` (default 1.0035).
        batch_size: images optimised together (default 16).

    SHAPES:
        ``attribute((B, 3, H, W), target) -> (B, H, W)``; ``attribute_masks(...) -> (B, A, H, W)`` in [0, 1].
    """

    name = "extremal"
    default_batch_size = 16

    def __init__(self, model: nn.Module, *, areas=(0.1,), iterations: int = 800, step: int | None = None,
                 sigma: float | None = None, max_blur: float | None = None, num_levels: int = 8,
                 variant: str = "preserve", jitter: bool = True, output: str = "logit", lr: float = 0.01,
                 momentum: float = 0.9, regul_weight: float = 300.0, regul_growth: float = 1.0035, **kwargs):
        super().__init__(model, **kwargs)
        if isinstance(areas, (int, float)) and not isinstance(areas, bool):
            areas = (areas,)
        try:
            areas = tuple(float(a) for a in areas)
        except (TypeError, ValueError):
            raise bad_argument("areas", areas, "areas in (0, 1), e.g. (0.1,) or (0.05, 0.1, 0.2)") from None
        if not areas or any(not (0.0 < a < 1.0) for a in areas):
            raise bad_argument("areas", areas, "one or more areas in (0, 1)")
        self.areas = areas
        self.iterations = check_int("iterations", iterations, minimum=1)
        self.step = None if step is None else check_int("step", step, minimum=1)
        self.sigma = None if sigma is None else check_float("sigma", sigma, minimum=0.0, strict_min=True)
        self.max_blur = None if max_blur is None else check_float("max_blur", max_blur, minimum=0.0,
                                                                  strict_min=True)
        self.num_levels = check_int("num_levels", num_levels, minimum=2)
        self.variant = check_choice("variant", variant, VARIANTS)
        self.jitter = bool(jitter)
        self.output = check_choice("output", output, OUTPUTS)
        self.lr = check_float("lr", lr, minimum=0.0, strict_min=True)
        self.momentum = check_float("momentum", momentum, minimum=0.0, maximum=1.0)
        self.regul_weight = check_float("regul_weight", regul_weight, minimum=0.0)
        self.regul_growth = check_float("regul_growth", regul_growth, minimum=0.0, strict_min=True)

    def settings(self, size: tuple[int, int]) -> dict:
        """The pixel lengths used for images of ``size = (H, W)``: ``{"step", "sigma", "max_blur"}``."""
        return {"step": self.step if self.step is not None else max(1, round(scaled(7, size))),
                "sigma": self.sigma if self.sigma is not None else scaled(21, size),
                "max_blur": self.max_blur if self.max_blur is not None else scaled(20, size)}

    def attribute_masks(self, images, target=None) -> torch.Tensor:
        """The optimised mask of every image and area: ``(B, A, H, W)`` values in [0, 1]."""
        return self._run(images, target, self._masks)

    def _attribute(self, x, target):
        return self._masks(x, target).sum(1)

    def _masks(self, x, target):
        t = self._predict(x, target)
        out = [self._optimise(x[s:s + self.batch_size], t[s:s + self.batch_size])
               for s in range(0, x.shape[0], self.batch_size)]
        return torch.cat(out)

    def _optimise(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        n_areas = len(self.areas)
        cfg = self.settings((h, w))
        gen = SmoothMaskGenerator((h, w), cfg["step"], cfg["sigma"])
        with torch.no_grad():
            pert = BlurPyramid(x, self.num_levels, cfg["max_blur"])
        rows = torch.arange(b, device=x.device).repeat_interleave(n_areas)  # row r = image r // A, area r % A
        tr = t[rows]
        ref = torch.ones(b * n_areas, h * w, dtype=x.dtype, device=x.device)
        for r in range(b * n_areas):
            ref[r, :int(h * w * (1 - self.areas[r % n_areas]))] = 0
        params = torch.ones(b * n_areas, 1, *gen.shape_in, dtype=x.dtype, device=x.device)
        buf = torch.zeros_like(params)
        lam = self.regul_weight
        with torch.enable_grad():
            for it in range(self.iterations):
                p = params.detach().requires_grad_(True)
                mask = gen.generate(p)
                if self.variant == "preserve":
                    xs = pert.apply(mask, rows)
                elif self.variant == "delete":
                    xs = pert.apply(1 - mask, rows)
                else:
                    xs = torch.cat([pert.apply(mask, rows), pert.apply(1 - mask, rows)])
                if self.jitter and it % 2 == 0:
                    xs = torch.flip(xs, dims=(3,))
                f = model_output(self._forward(xs), tr.repeat(xs.shape[0] // tr.shape[0]), self.output)
                if self.variant == "preserve":
                    reward = f
                elif self.variant == "delete":
                    reward = -f
                else:
                    reward = f[:b * n_areas] - f[b * n_areas:]
                regul = -((mask.reshape(b * n_areas, -1).sort(dim=1).values - ref) ** 2).mean(dim=1) * lam
                (g,) = torch.autograd.grad(-(reward + regul).sum(), p)
                # SGD with momentum and dampening (torch.optim.SGD's rule), then the clamp to [0, 1]
                buf = g if it == 0 else self.momentum * buf + (1 - self.momentum) * g
                params = (params - self.lr * buf).clamp(0, 1)
                lam *= self.regul_growth
        with torch.no_grad():
            mask = gen.generate(params)
        return mask.view(b, n_areas, h, w)
