"""RISE on images (Petsiuk, Das, Saenko, BMVC 2018): saliency from randomly masked copies of the image."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pointlens.attribution.image.base import OUTPUTS, ImageAttribution, model_output
from pointlens.utils.seed import generator
from pointlens.utils.validate import check_choice, check_float, check_int


class ImageRISE(ImageAttribution):
    """RISE: ``S = 1 / (N p) sum_i f(x * M_i) M_i`` over ``N`` random smooth masks ``M_i`` ``(H, W)``.

    Masks as in the authors' code: a binary ``s x s`` grid (each cell kept with probability ``p``) is upsampled
    bilinearly to ``(s + 1) * cell`` with ``cell = ceil(H / s)`` (and ``ceil(W / s)``) and cropped to ``(H, W)``
    at a random shift in ``[0, cell)``; the masked image ``x * M_i`` is black where the mask is 0. ``f`` is the
    target's softmax probability (``output="prob"``, RISE's), its sigmoid (``"sigmoid"``, for multi-label
    classifiers) or its logit. The masks depend only on ``seed`` and the image size (one mask set for every
    image, as in the original), so the same seed gives the same scores, alone or inside any batch.

    Defaults are the paper's ImageNet settings: ``N = 4000``, ``s = 7``, ``p = 0.5``, ``N`` forward passes per
    image. Departure: ``F.interpolate`` (``align_corners=False``) clamps at the border where the original's
    ``skimage.transform.resize`` reflects; the two differ only within half a cell of the upsampled grid's edge.

    Args:
        model: any ``nn.Module`` mapping ``(B, 3, H, W)`` to logits ``(B, C)``.
        n_masks: ``N`` (default 4000).
        grid: ``s``, the grid cells per side (default 7).
        p_keep: ``p``, the probability a cell is kept (default 0.5).
        output: ``"prob"`` (default), ``"sigmoid"`` or ``"logit"``.
        seed: random seed of the masks (default 0).
        batch_size: masked images per forward pass (default 100, the authors' ``gpu_batch``).

    SHAPES:
        ``attribute((B, 3, H, W), target) -> (B, H, W)``; ``masks((H, W)) -> (N, H, W)``.
    """

    name = "rise"
    default_batch_size = 100

    def __init__(self, model: nn.Module, *, n_masks: int = 4000, grid: int = 7, p_keep: float = 0.5,
                 output: str = "prob", seed: int = 0, **kwargs):
        super().__init__(model, **kwargs)
        self.n_masks = check_int("n_masks", n_masks, minimum=1)
        self.grid = check_int("grid", grid, minimum=1)
        self.p_keep = check_float("p_keep", p_keep, minimum=0.0, strict_min=True, maximum=1.0)
        self.output = check_choice("output", output, OUTPUTS)
        self.seed = check_int("seed", seed)

    def _draws(self, size: tuple[int, int]):
        """The random grids ``(N, s, s)`` and shifts ``(N, 2)`` of the masks for images of ``size``."""
        g = generator(self.seed)
        s = self.grid
        grids = (torch.rand(self.n_masks, s, s, generator=g, dtype=torch.float64) < self.p_keep)
        cells = [math.ceil(size[0] / s), math.ceil(size[1] / s)]
        shifts = torch.stack([torch.randint(0, cells[0], (self.n_masks,), generator=g),
                              torch.randint(0, cells[1], (self.n_masks,), generator=g)], dim=1)
        return grids, shifts, cells

    def _make(self, grids, shifts, cells, size, dtype, device) -> torch.Tensor:
        """Masks ``(n, H, W)`` from grids ``(n, s, s)`` and shifts ``(n, 2)``."""
        s = self.grid
        up = F.interpolate(grids.to(device=device, dtype=dtype).unsqueeze(1),
                           size=((s + 1) * cells[0], (s + 1) * cells[1]), mode="bilinear",
                           align_corners=False)[:, 0]
        n = grids.shape[0]
        rows = shifts[:, 0:1].to(device) + torch.arange(size[0], device=device)
        cols = shifts[:, 1:2].to(device) + torch.arange(size[1], device=device)
        return up[torch.arange(n, device=device).view(-1, 1, 1), rows.unsqueeze(2), cols.unsqueeze(1)]

    def masks(self, size: tuple[int, int], *, dtype=torch.float32, device="cpu") -> torch.Tensor:
        """All ``n_masks`` masks for images of ``size = (H, W)``: ``(N, H, W)`` values in [0, 1]."""
        grids, shifts, cells = self._draws(tuple(size))
        return self._make(grids, shifts, cells, tuple(size), dtype, torch.device(device))

    def _attribute(self, x, target):
        t = self._predict(x, target)
        b, _, h, w = x.shape
        grids, shifts, cells = self._draws((h, w))
        sal = torch.zeros(b, h * w, dtype=x.dtype, device=x.device)
        with torch.no_grad():
            for s in range(0, self.n_masks, self.batch_size):
                m = self._make(grids[s:s + self.batch_size], shifts[s:s + self.batch_size], cells, (h, w),
                               x.dtype, x.device)
                flat = m.reshape(m.shape[0], -1)
                for j in range(b):
                    f = model_output(self._forward(x[j:j + 1] * m.unsqueeze(1)), t[j].expand(m.shape[0]),
                                     self.output)
                    sal[j] += f @ flat
        return (sal / (self.n_masks * self.p_keep)).view(b, h, w)
