"""The image modality: masking by multiplication (``m ⊙ x``) and anisotropic total variation on the pixel grid.

Mask application (docs/methods.md §3): a mask ``m (B, H, W)`` in ``[0, 1]`` multiplies every channel of the
image, ``x' = m ⊙ x`` (broadcast over the 3 channels): ``m = 1`` keeps a pixel, ``m = 0`` sets it to black (0).
This is the paper's masking. Two other fills are offered (``fill=``), each blending towards a background image
``b``: ``x' = m ⊙ x + (1 - m) ⊙ b`` with ``b`` = 0.5 grey (``"grey"``) or a Gaussian blur of the clean image
(``"blur"``, standard deviation ``blur_sigma`` pixels, reflection padding). ``"zero"`` is the default and is
computed as the plain product (an all-ones mask returns the image bit for bit, an all-zeros mask zeros).

Smoothness (the authors' code, NN-Explainer ``src/utils``): the mask is padded by reflection, then
``TV(m) = mean_{i,j} |m[i, j+1] - m[i, j]| + mean_{i,j} |m[i+1, j] - m[i, j]|`` where both means run over ALL
``H × W`` pixels and the padded column ``W`` / row ``H`` reflect column ``W-2`` / row ``H-2`` (so the last
column's right difference repeats the one before it, as in a 3×3 difference filter with reflection padding 1).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from pointlens.errors import bad_argument
from pointlens.metrics.masks import apply_image_mask
from pointlens.utils.validate import check_choice, check_float

FILLS = ("zero", "grey", "blur")


class ImageState(NamedTuple):
    """Per-batch constants of :class:`ImageModality`.

    Attributes:
        background: ``(B, 3, H, W)`` image a removed pixel blends towards, or None for the zero fill.
    """

    background: torch.Tensor | None


def grid_total_variation(mask: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation of masks on the pixel grid (reflection-padded; see the module docstring).

    Args:
        mask: ``(B, H, W)`` or ``(B, C, H, W)`` mask values, ``H, W >= 2``.

    Returns:
        ``(B,)``: ``mean |right difference| + mean |down difference|`` over the ``H × W`` pixels (``(B, C, H, W)``
        masks: the mean over the ``C`` masks too).
    """
    if not isinstance(mask, torch.Tensor) or mask.dim() not in (3, 4):
        raise bad_argument("mask", getattr(mask, "shape", type(mask).__name__), "(B, H, W) or (B, C, H, W)")
    m = mask if mask.dim() == 4 else mask.unsqueeze(1)
    h, w = m.shape[-2:]
    if h < 2 or w < 2:
        raise bad_argument("mask", f"a {h}x{w} grid", "at least 2x2 pixels (reflection padding)")
    p = F.pad(m, (0, 1, 0, 1), mode="reflect")  # (B, C, H+1, W+1): column W = column W-2, row H = row H-2
    right = (p[..., :h, 1:] - m).abs().mean(dim=(-2, -1))
    down = (p[..., 1:, :w] - m).abs().mean(dim=(-2, -1))
    return (right + down).mean(1)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur, radius ``ceil(3 sigma)``, reflection padding: ``(B, 3, H, W) -> (B, 3, H, W)``."""
    r = max(1, int(-(-3 * sigma // 1)))
    r = min(r, images.shape[-1] - 1, images.shape[-2] - 1)
    t = torch.arange(-r, r + 1, dtype=images.dtype, device=images.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = images.shape[1]
    x = F.pad(images, (r, r, 0, 0), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.pad(x, (0, 0, r, r), mode="reflect")
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


class ImageModality:
    """Images for the explainer objective (see :mod:`pointlens.explainer.modality`).

    Args:
        fill: what a removed pixel becomes: ``"zero"`` (default, the paper: ``m ⊙ x``), ``"grey"`` (0.5) or
            ``"blur"`` (a Gaussian blur of the clean image).
        blur_sigma: the blur's standard deviation in pixels (``fill="blur"`` only; default 5).

    Shapes:
        inputs ``(B, 3, H, W)``, masks ``(B, H, W)``.
    """

    name = "image"

    def __init__(self, *, fill: str = "zero", blur_sigma: float = 5.0):
        self.fill = check_choice("fill", fill, FILLS)
        self.blur_sigma = check_float("blur_sigma", blur_sigma, minimum=0.0, strict_min=True)

    def __repr__(self) -> str:
        return f"ImageModality(fill={self.fill!r}" + (f", blur_sigma={self.blur_sigma})" if self.fill == "blur"
                                                      else ")")

    def prepare(self, x: torch.Tensor) -> ImageState:
        """The background of the clean images ``x (B, 3, H, W)`` (None for the zero fill)."""
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            raise bad_argument("images", getattr(x, "shape", type(x).__name__), "(B, 3, H, W)")
        if self.fill == "zero":
            return ImageState(None)
        if self.fill == "grey":
            return ImageState(torch.full_like(x.detach(), 0.5))
        with torch.no_grad():
            return ImageState(gaussian_blur(x.detach(), self.blur_sigma))

    def apply(self, x: torch.Tensor, mask: torch.Tensor, state: ImageState) -> torch.Tensor:
        """``(B, 3, H, W)`` images with the ``(B, H, W)`` mask applied: ``m ⊙ x + (1 - m) ⊙ background``."""
        return apply_image_mask(x, mask, state.background if state is not None else None)

    def smoothness(self, mask: torch.Tensor, state: ImageState) -> torch.Tensor:
        """Grid total variation of ``(B, H, W)`` masks -> ``(B,)``."""
        return grid_total_variation(mask)
