"""One validation helper for every entry point, so bad input gives the same clear error everywhere."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch

from pointlens.errors import bad_argument


def all_finite(t: torch.Tensor) -> bool:
    """True when every value of ``t`` is finite (no NaN, no +-inf).

    Exact and cheap: a NaN or an infinity anywhere makes the sum NaN or infinite, so a finite sum proves every
    value finite (one reduction instead of an elementwise test and a second reduction, the check that dominated
    the metrics on small inputs); only a non-finite sum (a bad value, or finite values whose sum overflows) pays
    for the elementwise test.
    """
    if t.numel() == 0 or not (t.is_floating_point() or t.is_complex()):
        return True
    total = t.sum().item()
    if not isinstance(total, complex) and math.isfinite(total):
        return True
    return bool(torch.isfinite(t).all())


def _as_tensor(x, name: str, shape: str) -> torch.Tensor:
    """``x`` as a tensor without copying arrays or tensors (other sequences become float32); a clear error naming
    ``name`` and the expected ``shape`` when it cannot be one."""
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, torch.Tensor):
        return x
    try:
        return torch.as_tensor(np.asarray(x, dtype=np.float32))
    except Exception:
        raise bad_argument(name, type(x).__name__, f"a tensor or array of shape {shape}") from None


def as_points(points, name: str = "points", *, batched: bool = True, allow_extra_channels: bool = False,
              finite: bool = True) -> torch.Tensor:
    """Check and convert a point cloud (or batch) to a float32 tensor.

    Args:
        points: array-like of shape ``(B, N, 3)`` (``(N, 3)`` is accepted and given a batch dimension when
            ``batched``); with ``allow_extra_channels`` any ``(B, N, D)`` with ``D >= 3``.
        name: the argument's name, used in the error message.
        batched: return ``(B, N, 3)``; if False, expect and return ``(N, 3)``.
        allow_extra_channels: accept ``D > 3`` channels (xyz first).
        finite: refuse NaN or infinite coordinates.

    Returns:
        ``torch.Tensor`` float32 of shape ``(B, N, D)`` (or ``(N, D)`` when not batched).

    Raises:
        InvalidArgumentError: wrong type, rank, channel count, empty cloud or non-finite values.
    """
    t = _as_tensor(points, name, "(B, N, 3)")
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        raise bad_argument(name, f"dtype {t.dtype}", "floating point coordinates")
    want = "(B, N, 3)" if batched else "(N, 3)"
    if batched and t.dim() == 2:
        t = t.unsqueeze(0)
    if t.dim() != (3 if batched else 2):
        raise bad_argument(name, f"a tensor of shape {tuple(t.shape)}", f"shape {want}")
    d = t.shape[-1]
    if d < 3 or (d != 3 and not allow_extra_channels):
        hint = " (for (B, 3, N) models wrap them with pointlens.models.ChannelsFirst)" if t.shape[-2] == 3 else ""
        raise bad_argument(name, f"shape {tuple(t.shape)}", f"shape {want} with xyz in the last dimension{hint}")
    if t.shape[-2] == 0:
        raise bad_argument(name, f"shape {tuple(t.shape)}", "at least one point per cloud")
    if t.dtype != torch.float32:
        t = t.float()
    if finite and not all_finite(t):
        bad = int((~torch.isfinite(t)).any(dim=-1).sum())
        raise bad_argument(name, f"{bad} point(s) with NaN or infinite coordinates",
                           "finite coordinates (drop or repair those points first)")
    return t


def as_images(images, name: str = "images", *, min_size: int = 1, finite: bool = True) -> torch.Tensor:
    """Check and convert a batch of RGB images to a float32 tensor ``(B, 3, H, W)``.

    Args:
        images: array-like ``(B, 3, H, W)`` channel-first (``(3, H, W)`` is given a batch dimension).
        name: the argument's name, used in the error message.
        min_size: the smallest ``H`` and ``W`` accepted.
        finite: refuse NaN or infinite values.

    Returns:
        ``torch.Tensor`` float32 ``(B, 3, H, W)`` (the same tensor when it already is one, so gradients flow).

    Raises:
        InvalidArgumentError: wrong type, rank, channel count (a ``(B, N, 3)`` point cloud or a channels-last
            ``(B, H, W, 3)`` image is named as such), too small, or non-finite values.
    """
    t = _as_tensor(images, name, "(B, 3, H, W)")
    if not (t.is_floating_point() or t.dtype in (torch.uint8, torch.int32, torch.int64)):
        raise bad_argument(name, f"dtype {t.dtype}", "floating point pixel values (B, 3, H, W)")
    if t.dim() == 3 and t.shape[0] == 3:
        t = t.unsqueeze(0)
    if t.dim() == 3 and t.shape[-1] == 3:
        raise bad_argument(name, f"shape {tuple(t.shape)} (a point cloud (B, N, 3)?)",
                           "images of shape (B, 3, H, W): this model classifies images, not points")
    if t.dim() != 4:
        raise bad_argument(name, f"a tensor of shape {tuple(t.shape)}", "images of shape (B, 3, H, W)")
    if t.shape[1] != 3:
        hint = " (channels-last? use images.permute(0, 3, 1, 2))" if t.shape[-1] == 3 else ""
        raise bad_argument(name, f"shape {tuple(t.shape)}", f"(B, 3, H, W) RGB channel-first{hint}")
    if t.shape[2] < min_size or t.shape[3] < min_size:
        raise bad_argument(name, f"shape {tuple(t.shape)}", f"images of at least {min_size} x {min_size} pixels")
    if t.dtype != torch.float32:
        t = t.float()
    if finite and not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).sum())
        raise bad_argument(name, f"{bad} NaN or infinite pixel value(s)", "finite pixel values")
    return t


def check_choice(name: str, value, choices: Iterable):
    """Return ``value`` if it is one of ``choices``, else raise a clear error listing them."""
    choices = list(choices)
    if value not in choices:
        raise bad_argument(name, value, "one of " + ", ".join(map(str, choices)))
    return value


def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as ``int`` after checking it is an integer within ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise bad_argument(name, value, "an integer")
    value = int(value)
    if minimum is not None and value < minimum:
        raise bad_argument(name, value, f"an integer >= {minimum}")
    if maximum is not None and value > maximum:
        raise bad_argument(name, value, f"an integer <= {maximum}")
    return value


def check_float(name: str, value, *, minimum: float | None = None, maximum: float | None = None,
                strict_min: bool = False) -> float:
    """Return ``value`` as ``float`` after checking it is a finite number within the bounds."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise bad_argument(name, value, "a number") from None
    if not np.isfinite(f):
        raise bad_argument(name, value, "a finite number")
    if minimum is not None and (f <= minimum if strict_min else f < minimum):
        raise bad_argument(name, value, f"a number {'>' if strict_min else '>='} {minimum}")
    if maximum is not None and f > maximum:
        raise bad_argument(name, value, f"a number <= {maximum}")
    return f


def as_target(target, batch: int, num_classes: int | None = None, name: str = "target") -> torch.Tensor | None:
    """Normalise a class target: ``None``, an int, or a sequence/tensor of ``B`` ints -> ``(B,)`` long or None."""
    if target is None:
        return None
    t = torch.as_tensor(target)
    if t.is_floating_point():
        raise bad_argument(name, f"dtype {t.dtype}", "integer class indices")
    t = t.long().reshape(-1)
    if t.numel() == 1:
        t = t.expand(batch).clone()
    if t.numel() != batch:
        raise bad_argument(name, f"{t.numel()} targets", f"one target or {batch} (one per cloud)")
    if num_classes is not None and (t.min() < 0 or t.max() >= num_classes):
        raise bad_argument(name, t.tolist()[:8], f"class indices in [0, {num_classes - 1}]")
    return t


def as_scores(scores, name: str = "scores", *, like: torch.Tensor | None = None) -> torch.Tensor:
    """Check and convert per-point scores to a float64 tensor ``(B, N)``.

    Args:
        scores: array-like ``(B, N)`` (``(N,)`` is given a batch dimension); finite numbers.
        name: the argument's name, used in error messages.
        like: when given, the result must have this tensor's shape ``(B, N)``.

    Returns:
        ``torch.Tensor`` float64 ``(B, N)`` (float64 so sums and ranks are exact enough for large N).

    Raises:
        InvalidArgumentError: wrong type, rank, shape, or non-finite values.
    """
    if isinstance(scores, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(scores))
    elif isinstance(scores, torch.Tensor):
        t = scores.detach()
    else:
        try:
            t = torch.as_tensor(np.asarray(scores, dtype=np.float64))
        except Exception:
            raise bad_argument(name, type(scores).__name__, "a tensor or array of shape (B, N)") from None
    if t.dtype == torch.bool:
        t = t.to(torch.float64)
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64, torch.int16, torch.uint8)):
        raise bad_argument(name, f"dtype {t.dtype}", "real-valued scores")
    if t.dim() == 1:
        t = t.unsqueeze(0)
    if t.dim() != 2 or t.shape[1] == 0:
        raise bad_argument(name, f"a tensor of shape {tuple(t.shape)}",
                           "per-point scores of shape (B, N), N >= 1")
    if like is not None and tuple(t.shape) != tuple(like.shape):
        raise bad_argument(name, f"shape {tuple(t.shape)}",
                           f"shape {tuple(like.shape)} (one score per point)")
    t = t.to(torch.float64)
    if not all_finite(t):
        bad = int((~torch.isfinite(t)).sum())
        raise bad_argument(name, f"{bad} NaN or infinite value(s)", "finite scores")
    return t


def as_mask(mask, like: torch.Tensor, name: str = "mask") -> torch.Tensor:
    """Check and convert a ground-truth mask to a bool tensor with the shape of ``like`` ``(B, N)``.

    Args:
        mask: bool or 0/1 array-like ``(B, N)`` (``(N,)`` is given a batch dimension).
        like: the scores ``(B, N)`` the mask belongs to.
        name: the argument's name, used in error messages.

    Returns:
        ``torch.Tensor`` bool ``(B, N)`` on ``like``'s device.

    Raises:
        InvalidArgumentError: wrong shape, or values other than 0/1.
    """
    t = mask.detach() if isinstance(mask, torch.Tensor) else torch.as_tensor(np.asarray(mask))
    if t.dim() == 1:
        t = t.unsqueeze(0)
    if tuple(t.shape) != tuple(like.shape):
        raise bad_argument(name, f"shape {tuple(t.shape)}",
                           f"a bool mask of shape {tuple(like.shape)} like the scores")
    if t.dtype != torch.bool:
        if t.is_complex() or not bool(((t == 0) | (t == 1)).all()):
            raise bad_argument(name, "values other than 0/1", "a bool mask (or 0/1 values)")
        t = t != 0
    return t.to(like.device)
