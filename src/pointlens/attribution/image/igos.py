"""iGOS++ (Khorram, Lawson, Fuxin, ACM CHIL 2021): a deletion mask and an insertion mask optimised together
with integrated gradients along the path from the blurred baseline (bilateral perturbations)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pointlens.attribution.image.base import (
    OUTPUTS,
    ImageAttribution,
    gaussian_blur,
    image_seeds,
    model_output,
    scaled,
)
from pointlens.utils.seed import generator
from pointlens.utils.validate import check_choice, check_float, check_int


class IGOSPlusPlus(ImageAttribution):
    """iGOS++: two low-resolution masks, ``M_d`` (deletion) and ``M_i`` (insertion), 1 = keep the image.

    With ``x`` the image, ``b`` its blurred copy (the baseline), ``U`` bilinear upsampling (``align_corners=True``,
    as the authors' ``UpsamplingBilinear2d``) and ``f`` the target's softmax probability:

    * deletion score ``D(M) = (1/n) sum_k f(x * a_k U(M) + b * (1 - a_k U(M)))``,
    * insertion score ``I(M) = (1/n) sum_k f(b * a_k U(M) + x * (1 - a_k U(M)))``, ``a_k = k / n``, ``k = 1..n``
      (their gradients w.r.t. ``M`` are the integrated gradients of the papers);
    * objective (minimised): ``L = 1/2 [D(M_d M_i) - I(M_d M_i) + D(M_d) - I(M_i)]
      + l1 mean|1 - M_d M_i| + l2 BTV(M_d M_i)``, with the bilateral total variation
      ``BTV(M) = 1/2 [TV_2(M) + mean_ij exp(-||x_p - x_q||^2 / s) |U(M)_p - U(M)_q|^2]`` over horizontal and
      vertical neighbours ``p, q`` (``s = tv_sigma``);
    * each of ``iterations`` steps: ``g = grad L``, a backtracking line search (start ``alpha``, factor
      ``decay``, Armijo constant ``beta``, per image) and a clamp to [0, 1]; masks start at 1.

    Gaussian noise of standard deviation ``noise`` is added to every path image (as the authors' code, which
    works on ImageNet-normalised images; ours are in [0, 1]). The returned saliency is ``1 - U(M_d M_i)``:
    high where deleting the pixels destroys, and inserting them restores, the target's evidence.

    Defaults are the authors' (``iGOS_pp`` in their code): ``iterations=15``, ``ig_steps=20``, ``l1=1``,
    ``l2=20``, ``alpha=1000``, ``beta=1e-4``, ``decay=0.2``, ``noise=0.2``, ``tv_sigma=0.01``; the mask size
    (28 at 224 px) and the baseline blur (Gaussian, sigma 50 px, 51-px kernel, mirrored border, at 224 px) are
    scaled by ``min(H, W) / 224`` (64 px: an 8 x 8 mask, sigma 14.3 px, radius 7 px).

    Simplifications (honest list): line-search losses are evaluated with the SAME noise draw as the gradient of
    that iteration (common random numbers; the authors draw fresh noise per evaluation), and the line search
    checks the objective ``L`` whose gradient it follows (the authors' check omits the factor 1/2 on the score
    terms); the bilateral weight uses the mean over channels of the squared colour difference in both
    directions (the authors' code differs between directions); only the line-search optimiser (not their later
    Nesterov variant) is offered. Per-image noise comes from a generator seeded from ``seed`` and the image
    (:func:`image_seeds`), so the same seed gives the same map, alone or in any batch.

    Cost per image: ``iterations x (4 ig_steps`` forward + backward ``+ (1 + line-search trials) x 4 ig_steps``
    forward).

    Args:
        model: any ``nn.Module`` mapping ``(B, 3, H, W)`` to logits ``(B, C)``.
        size: mask resolution (default: 28 at 224 px, scaled; an int or ``(h, w)``).
        iterations: optimisation steps (default 15).
        ig_steps: path points ``n`` per integrated gradient (default 20).
        l1, l2: weights of the L1 and bilateral-TV terms (defaults 1 and 20).
        alpha, beta, decay: line search start, Armijo constant and factor (defaults 1000, 1e-4, 0.2).
        noise: standard deviation of the noise on path images (default 0.2; 0 = none).
        blur_sigma: baseline blur in pixels (default: 50 at 224 px, scaled).
        tv_sigma: bilateral colour scale ``s`` (default 0.01).
        output: ``"prob"`` (default, softmax), ``"sigmoid"`` or ``"logit"``.
        seed: random seed of the noise.
        batch_size: images optimised together (default 4).

    SHAPES:
        ``attribute((B, 3, H, W), target) -> (B, H, W)`` values in [0, 1].
    """

    name = "igos++"
    default_batch_size = 4

    def __init__(self, model: nn.Module, *, size=None, iterations: int = 15, ig_steps: int = 20, l1: float = 1.0,
                 l2: float = 20.0, alpha: float = 1000.0, beta: float = 1e-4, decay: float = 0.2,
                 noise: float = 0.2, blur_sigma: float | None = None, tv_sigma: float = 0.01,
                 output: str = "prob", seed: int = 0, **kwargs):
        super().__init__(model, **kwargs)
        if size is not None:
            pair = (size, size) if not isinstance(size, (tuple, list)) else tuple(size)
            if len(pair) != 2:
                pair = (None, None)
            size = tuple(check_int("size", s, minimum=1) for s in pair)
        self.size = size
        self.iterations = check_int("iterations", iterations, minimum=1)
        self.ig_steps = check_int("ig_steps", ig_steps, minimum=1)
        self.l1 = check_float("l1", l1, minimum=0.0)
        self.l2 = check_float("l2", l2, minimum=0.0)
        self.alpha = check_float("alpha", alpha, minimum=0.0, strict_min=True)
        self.beta = check_float("beta", beta, minimum=0.0)
        self.decay = check_float("decay", decay, minimum=0.0, strict_min=True, maximum=0.999)
        self.noise = check_float("noise", noise, minimum=0.0)
        self.blur_sigma = None if blur_sigma is None else check_float("blur_sigma", blur_sigma, minimum=0.0)
        self.tv_sigma = check_float("tv_sigma", tv_sigma, minimum=0.0, strict_min=True)
        self.output = check_choice("output", output, OUTPUTS)
        self.seed = check_int("seed", seed)

    def settings(self, size: tuple[int, int]) -> dict:
        """Mask size, baseline blur sigma and radius used for images of ``size = (H, W)``."""
        mask = self.size or tuple(max(1, round(scaled(28, (z, z)))) for z in size)
        sigma = self.blur_sigma if self.blur_sigma is not None else scaled(50, size)
        return {"size": mask, "blur_sigma": sigma, "blur_radius": max(1, round(scaled(25, size)))}

    def baseline_for(self, x: torch.Tensor) -> torch.Tensor:
        """The blurred baseline images ``(B, 3, H, W)`` of ``x``."""
        cfg = self.settings(tuple(x.shape[-2:]))
        return gaussian_blur(x, cfg["blur_sigma"], radius=cfg["blur_radius"], padding="reflect")

    def _attribute(self, x, target):
        t = self._predict(x, target)
        seeds = image_seeds(x, self.seed)
        out = [self._optimise(x[s:s + self.batch_size], t[s:s + self.batch_size], seeds[s:s + self.batch_size])
               for s in range(0, x.shape[0], self.batch_size)]
        return torch.cat(out)

    # ------------------------------------------------------------------ the objective
    def _up(self, m: torch.Tensor, size) -> torch.Tensor:
        return F.interpolate(m, size=size, mode="bilinear", align_corners=True)

    def _scores(self, x, base, up, t, eps, insertion: bool) -> torch.Tensor:
        """``D(M)`` (or ``I(M)``) per image ``(B,)`` from upsampled masks ``up`` ``(B, 1, H, W)``, noise ``eps``
        ``(B, n, 3, H, W)``."""
        b, n = x.shape[0], self.ig_steps
        a = torch.arange(1, n + 1, dtype=x.dtype, device=x.device).div(n).view(1, n, 1, 1, 1)
        m = up.unsqueeze(1) * a  # (B, n, 1, H, W)
        src, dst = (base, x) if insertion else (x, base)
        imgs = src.unsqueeze(1) * m + dst.unsqueeze(1) * (1 - m) + eps
        imgs = imgs.reshape(b * n, *x.shape[1:])
        f = torch.cat([model_output(self._forward(imgs[s:s + 256]), t.repeat_interleave(n)[s:s + 256],
                                    self.output) for s in range(0, b * n, 256)])
        return f.view(b, n).mean(1)

    def _btv(self, x, m, up, wv, wh) -> torch.Tensor:
        tv = ((m[..., 1:, :] - m[..., :-1, :]) ** 2).flatten(1).mean(1) \
            + ((m[..., :, 1:] - m[..., :, :-1]) ** 2).flatten(1).mean(1)
        bil = (wv * (up[..., 1:, :] - up[..., :-1, :]) ** 2).flatten(1).mean(1) \
            + (wh * (up[..., :, 1:] - up[..., :, :-1]) ** 2).flatten(1).mean(1)
        return 0.5 * (tv + bil)

    def _loss(self, x, base, md, mi, t, eps, wv, wh) -> torch.Tensor:
        size = tuple(x.shape[-2:])
        ud, ui = self._up(md, size), self._up(mi, size)
        uc = ud * ui
        scores = (self._scores(x, base, uc, t, eps[0], False) - self._scores(x, base, uc, t, eps[1], True)
                  + self._scores(x, base, ud, t, eps[2], False) - self._scores(x, base, ui, t, eps[3], True))
        mc = md * mi
        reg = self.l1 * (1 - mc).abs().flatten(1).mean(1) + self.l2 * self._btv(x, mc, uc, wv, wh)
        return 0.5 * scores + reg

    def _optimise(self, x, t, seeds) -> torch.Tensor:
        b, c, h, w = x.shape
        cfg = self.settings((h, w))
        base = self.baseline_for(x)
        wv = torch.exp(-((x[..., 1:, :] - x[..., :-1, :]) ** 2).mean(1, keepdim=True) / self.tv_sigma)
        wh = torch.exp(-((x[..., :, 1:] - x[..., :, :-1]) ** 2).mean(1, keepdim=True) / self.tv_sigma)
        gens = [generator(s) for s in seeds]
        md = torch.ones(b, 1, *cfg["size"], dtype=x.dtype, device=x.device)
        mi = torch.ones_like(md)
        n = self.ig_steps
        for _ in range(self.iterations):
            if self.noise > 0:
                eps = torch.stack([torch.randn(4, n, c, h, w, generator=g, dtype=torch.float64) for g in gens], 1)
                eps = (self.noise * eps).to(device=x.device, dtype=x.dtype)
            else:
                eps = torch.zeros(4, b, n, c, h, w, dtype=x.dtype, device=x.device)
            with torch.enable_grad():
                pd, pi = md.detach().requires_grad_(True), mi.detach().requires_grad_(True)
                loss = self._loss(x, base, pd, pi, t, eps, wv, wh)
                gd, gi = torch.autograd.grad(loss.sum(), (pd, pi))
            with torch.no_grad():
                alphas = self._line_search(x, base, md, mi, gd, gi, loss.detach(), t, eps, wv, wh)
                md = (md - alphas * gd).clamp(0, 1)
                mi = (mi - alphas * gi).clamp(0, 1)
        with torch.no_grad():
            return (1 - self._up(md, (h, w)) * self._up(mi, (h, w)))[:, 0].clamp(0, 1)

    def _line_search(self, x, base, md, mi, gd, gi, base_loss, t, eps, wv, wh) -> torch.Tensor:
        """Per-image step ``(B, 1, 1, 1)``: the largest ``alpha decay^k`` with
        ``L(M - a g) <= L(M) - beta a ||g||^2`` (or the first below 1e-5)."""
        b = x.shape[0]
        alphas = torch.full((b,), self.alpha, dtype=x.dtype, device=x.device)
        slope = -self.beta * (gd.flatten(1) ** 2 + gi.flatten(1) ** 2).sum(1)
        todo = torch.ones(b, dtype=torch.bool, device=x.device)
        for _ in range(math.ceil(math.log(1e-5 / self.alpha) / math.log(self.decay)) + 2 if self.alpha > 1e-5
                       else 1):
            idx = todo.nonzero().squeeze(1)
            a = alphas[idx].view(-1, 1, 1, 1)
            nd, ni = (md[idx] - a * gd[idx]).clamp(0, 1), (mi[idx] - a * gi[idx]).clamp(0, 1)
            loss = self._loss(x[idx], base[idx], nd, ni, t[idx], eps[:, idx], wv[idx], wh[idx])
            still = (loss > base_loss[idx] + alphas[idx] * slope[idx]) & (alphas[idx] >= 1e-5)
            todo[idx] = still
            if not bool(todo.any()):
                break
            alphas[todo] *= self.decay
        return alphas.view(-1, 1, 1, 1)
