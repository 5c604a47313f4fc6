"""The image side of the one attribution API: ``(B, 3, H, W)`` images in, ``(B, H, W)`` scores out.

:class:`ImageAttribution` is :class:`pointlens.attribution.base.Attribution` with image input checks; target
handling, model-state preservation, batching and float64 handling are the base class's. The helpers here (the
explained model output, per-image seeds, a Gaussian blur written with ``conv2d``, mask upsampling) are shared
by the image methods.
"""

from __future__ import annotations

import hashlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from pointlens.attribution.base import Attribution
from pointlens.errors import bad_argument
from pointlens.utils.validate import as_images

OUTPUTS = ("prob", "sigmoid", "logit")
"""What a black-box image method explains: the target's softmax probability, its sigmoid probability (for
multi-label classifiers) or its logit."""

REFERENCE_SIZE = 224
"""The image size (pixels) the baselines' published settings were chosen for; spatial defaults given in pixels
there are scaled by ``min(H, W) / REFERENCE_SIZE`` (see each method)."""


def model_output(logits: torch.Tensor, target: torch.Tensor, output: str) -> torch.Tensor:
    """The explained quantity per row: ``(B, C), (B,) -> (B,)``.

    ``"prob"``: ``softmax(logits)[t]``; ``"sigmoid"``: ``sigmoid(logits[t])``; ``"logit"``: ``logits[t]``.
    """
    picked = logits.gather(1, target.view(-1, 1)).squeeze(1)
    if output == "prob":
        return logits.softmax(dim=-1).gather(1, target.view(-1, 1)).squeeze(1)
    if output == "sigmoid":
        return picked.sigmoid()
    return picked


def image_seeds(images: torch.Tensor, seed: int) -> list[int]:
    """One generator seed per image, from ``seed`` and the image's pixels only (not its place in the batch).

    Args:
        images: ``(B, C, H, W)``.
        seed: the method's seed.

    Returns:
        ``B`` non-negative ints; the same image gets the same seed alone or inside any batch.
    """
    out = []
    for im in images.detach().to(device="cpu", dtype=torch.float32).contiguous().numpy():
        h = int.from_bytes(hashlib.blake2b(im.tobytes(), digest_size=8).digest(), "little")
        out.append((int(seed) * 1_000_003 + h) % (2**63))
    return out


def scaled(value: float, size: tuple[int, int]) -> float:
    """A length given in pixels at :data:`REFERENCE_SIZE` pixels, scaled to images of ``size = (H, W)``."""
    return float(value) * min(size) / REFERENCE_SIZE


def gaussian_kernel(sigma: float, radius: int | None = None, *, dtype=torch.float32, device="cpu") -> torch.Tensor:
    """A normalised 1-D Gaussian ``(2 r + 1,)`` with ``r = radius`` (default ``ceil(4 sigma)``)."""
    r = math.ceil(4 * sigma) if radius is None else int(radius)
    z = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-z ** 2 / (2 * max(sigma, 1e-5) ** 2))
    return (k / k.sum()).to(dtype=dtype, device=device)


def gaussian_blur(images: torch.Tensor, sigma: float, *, radius: int | None = None,
                  padding: str = "constant") -> torch.Tensor:
    """Separable Gaussian blur of every channel: ``(B, C, H, W) -> (B, C, H, W)``.

    Args:
        images: ``(B, C, H, W)``.
        sigma: standard deviation in pixels (0 returns the images unchanged).
        radius: kernel half-width (default ``ceil(4 sigma)``, as TorchRay's ``imsmooth``).
        padding: ``"constant"`` (zeros outside the image, as TorchRay) or ``"reflect"`` (mirrored border, as
            OpenCV's default; the radius is then capped at ``min(H, W) - 1``).
    """
    if sigma <= 0:
        return images
    c, h, w = images.shape[1:]
    r = math.ceil(4 * sigma) if radius is None else int(radius)
    if padding == "reflect":
        r = min(r, h - 1, w - 1)
    if r <= 0:
        return images
    k = gaussian_kernel(sigma, r, dtype=images.dtype, device=images.device)
    kv = k.view(1, 1, -1, 1).expand(c, 1, -1, 1)
    kh = k.view(1, 1, 1, -1).expand(c, 1, 1, -1)
    if padding == "reflect":
        x = F.pad(images, (r, r, r, r), mode="reflect")
        return F.conv2d(F.conv2d(x, kv, groups=c), kh, groups=c)
    x = F.conv2d(images, kv, padding=(r, 0), groups=c)
    return F.conv2d(x, kh, padding=(0, r), groups=c)


def upsample(maps: torch.Tensor, size: tuple[int, int], *, mode: str = "bilinear",
             align_corners: bool = False) -> torch.Tensor:
    """Resize maps ``(B, h, w)`` or ``(B, 1, h, w)`` to ``(B, H, W)`` with ``F.interpolate``.

    ``mode`` is ``"bilinear"`` (``align_corners`` as given) or ``"nearest"``.
    """
    m = maps.unsqueeze(1) if maps.dim() == 3 else maps
    if tuple(m.shape[-2:]) != tuple(size):
        if mode == "nearest":
            m = F.interpolate(m, size=tuple(size), mode="nearest")
        else:
            m = F.interpolate(m, size=tuple(size), mode=mode, align_corners=align_corners)
    return m[:, 0]


class ImageAttribution(Attribution):
    """Base class of the image methods: ``Method(model, **options).attribute(images, target=None) -> (B, H, W)``.

    The same base as the point methods (:class:`~pointlens.attribution.base.Attribution`): the input is checked
    by :func:`pointlens.utils.validate.as_images` instead of ``as_points`` (point clouds are refused with a
    message naming ``images``), then moved to the model's device and dtype; the model runs in ``eval()`` mode
    with its flags restored afterwards; ``target`` is None (the predicted class, ``argmax`` of the logits), an
    int or ``B`` ints; gradients are taken w.r.t. the input only.

    Args:
        model: any ``nn.Module`` mapping ``(B, 3, H, W)`` images to logits ``(B, C)``.
        batch_size: images (or perturbed images) per forward pass; each method says which.
        eval_mode: run the model in ``eval()`` mode while explaining.

    Attributes:
        modality: ``"image"``.
    """

    modality = "image"

    def __init__(self, model: nn.Module, *, batch_size: int | None = None, eval_mode: bool = True):
        if not isinstance(model, nn.Module):
            raise bad_argument("model", type(model).__name__,
                               "a torch.nn.Module mapping (B, 3, H, W) images to logits (B, C)")
        super().__init__(model, batch_size=batch_size, eval_mode=eval_mode)

    def attribute(self, images, target=None) -> torch.Tensor:
        """Score every pixel of every image.

        Args:
            images: ``(B, 3, H, W)`` (or ``(3, H, W)``) float tensor or array, channel-first.
            target: ``None`` (each image's predicted class), an int, or ``B`` ints (tensor/list).

        Returns:
            ``(B, H, W)`` detached tensor on the input's device, float32 (float64 when the images or the model
            are float64); higher = more important for the target.

        Raises:
            InvalidArgumentError: wrong shape (e.g. point clouds), non-finite pixels, target out of range.
        """
        return self._run(images, target, self._attribute)

    def _check_input(self, inputs) -> torch.Tensor:
        return as_images(inputs)
