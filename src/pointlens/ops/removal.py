"""The ONE way to remove points from a cloud: delete them (the cloud shrinks) or shift them to its centre.

Two meanings of "removing" a point are used throughout pointlens (see docs/methods.md §1):

* :func:`delete_points` / :func:`keep_points` really remove points: the cloud shrinks from ``N`` to ``N - k``
  (or ``k``) points. Every cloud of a batch loses the same number of points, so batches stay rectangular.
* :func:`shift_to_centre` keeps the size fixed and moves the removed points onto the cloud's centre
  (:func:`cloud_centre`), where they hide inside the shape and carry little information. This is the
  approximation behind point-shift saliency and is used wherever clouds of one batch would otherwise end up
  with different sizes.

All functions are differentiable with respect to ``points`` (indices and masks are constants).
"""

from __future__ import annotations

import torch

from pointlens.errors import bad_argument
from pointlens.utils.validate import check_choice

CENTRES = ("median", "mean")


def _check_cloud(points, name: str = "points") -> torch.Tensor:
    if not isinstance(points, torch.Tensor):
        raise bad_argument(name, type(points).__name__, "a torch tensor of shape (B, N, 3)")
    if points.dim() != 3 or points.shape[-1] < 1:
        raise bad_argument(name, f"shape {tuple(points.shape)}", "shape (B, N, 3)")
    if points.shape[1] == 0:
        raise bad_argument(name, f"shape {tuple(points.shape)}", "at least one point per cloud")
    return points


def _check_index(idx, points: torch.Tensor, name: str = "idx", *, distinct: bool = True) -> torch.Tensor:
    if not isinstance(idx, torch.Tensor):
        try:
            idx = torch.as_tensor(idx)
        except Exception:
            raise bad_argument(name, type(idx).__name__, "a (B, k) tensor of point indices") from None
    if idx.is_floating_point() or idx.dtype == torch.bool:
        raise bad_argument(name, f"dtype {idx.dtype}", "integer point indices")
    b, n = points.shape[:2]
    if idx.dim() == 1 and b == 1:
        idx = idx.unsqueeze(0)
    if idx.dim() != 2 or idx.shape[0] != b:
        raise bad_argument(name, f"shape {tuple(idx.shape)}", f"shape ({b}, k): one row of indices per cloud")
    idx = idx.to(device=points.device, dtype=torch.long)
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
        raise bad_argument(name, f"indices in [{int(idx.min())}, {int(idx.max())}]",
                           f"indices in [0, {n - 1}]")
    if distinct and idx.shape[1] > 1:
        s = idx.sort(dim=1).values
        if bool((s[:, 1:] == s[:, :-1]).any()):
            raise bad_argument(name, "repeated indices within a cloud", "distinct indices per cloud")
    return idx


def cloud_centre(points: torch.Tensor, kind: str = "median") -> torch.Tensor:
    """Per-cloud centre used to "remove" points by shifting and by point-shift saliency.

    Args:
        points: ``(B, N, D)`` tensor.
        kind: ``"median"`` (per-axis median; for even ``N`` the average of the two middle values, numpy's
            convention) or ``"mean"``.

    Returns:
        ``(B, 1, D)`` tensor (same dtype and device as ``points``).
    """
    _check_cloud(points)
    check_choice("centre", kind, CENTRES)
    if kind == "mean":
        return points.mean(dim=1, keepdim=True)
    n = points.shape[1]
    s = points.sort(dim=1).values
    if n % 2 == 1:
        return s[:, n // 2:n // 2 + 1]
    return 0.5 * (s[:, n // 2 - 1:n // 2] + s[:, n // 2:n // 2 + 1])


def kept_indices(n: int, idx: torch.Tensor) -> torch.Tensor:
    """Indices that remain after deleting ``idx`` from clouds of ``n`` points, in increasing order.

    Args:
        n: number of points per cloud.
        idx: ``(B, k)`` long tensor of distinct indices in ``[0, n)`` per row.

    Returns:
        ``(B, n - k)`` long tensor.
    """
    b, k = idx.shape
    keep = torch.ones(b, n, dtype=torch.bool, device=idx.device)
    keep.scatter_(1, idx, False)
    ar = torch.arange(n, device=idx.device).expand(b, n)
    return ar[keep].view(b, n - k)


def delete_points(points: torch.Tensor, idx, *, return_kept: bool = False):
    """Delete ``k`` points from every cloud: the clouds shrink from ``N`` to ``N - k`` points.

    The remaining points keep their original order.

    Args:
        points: ``(B, N, D)`` tensor.
        idx: ``(B, k)`` integer tensor, distinct indices in ``[0, N)`` per cloud (``0 <= k < N``).
        return_kept: also return the indices of the remaining points.

    Returns:
        ``(B, N - k, D)`` tensor, or ``(points_left, kept)`` with ``kept`` ``(B, N - k)`` long indices into
        the original clouds when ``return_kept``.

    Raises:
        InvalidArgumentError: wrong shapes, indices out of range, repeated indices, or ``k >= N``.
    """
    _check_cloud(points)
    idx = _check_index(idx, points)
    n = points.shape[1]
    if idx.shape[1] >= n:
        raise bad_argument("idx", f"{idx.shape[1]} indices per cloud of {n} points",
                           f"fewer than {n} indices (a cloud cannot lose every point)")
    kept = kept_indices(n, idx)
    out = torch.gather(points, 1, kept.unsqueeze(-1).expand(-1, -1, points.shape[-1]))
    return (out, kept) if return_kept else out


def keep_points(points: torch.Tensor, idx) -> torch.Tensor:
    """Keep only the points ``idx`` of every cloud (in the order given): ``(B, N, D) -> (B, k, D)``.

    Args:
        points: ``(B, N, D)`` tensor.
        idx: ``(B, k)`` integer tensor, distinct indices in ``[0, N)`` per cloud, ``k >= 1``.

    Returns:
        ``(B, k, D)`` tensor.
    """
    _check_cloud(points)
    idx = _check_index(idx, points)
    if idx.shape[1] == 0:
        raise bad_argument("idx", "0 indices per cloud", "at least one point to keep")
    return torch.gather(points, 1, idx.unsqueeze(-1).expand(-1, -1, points.shape[-1]))


def shift_to_centre(points: torch.Tensor, mask, centre="median") -> torch.Tensor:
    """Remove points without changing the cloud size: move the masked points onto the cloud's centre.

    The centre is computed on the WHOLE cloud (before shifting), so that removing several subsets of the same
    cloud always uses the same centre.

    Args:
        points: ``(B, N, D)`` tensor.
        mask: ``(B, N)`` bool tensor (or 0/1 values), True = remove (shift) that point.
        centre: ``"median"``, ``"mean"`` (see :func:`cloud_centre`) or a precomputed tensor of shape
            ``(B, 1, D)`` or ``(B, D)``.

    Returns:
        ``(B, N, D)`` tensor: masked points replaced by the centre, the others unchanged.
    """
    _check_cloud(points)
    b, n, d = points.shape
    if not isinstance(mask, torch.Tensor):
        mask = torch.as_tensor(mask)
    if mask.dim() == 1 and b == 1:
        mask = mask.unsqueeze(0)
    if tuple(mask.shape) != (b, n):
        raise bad_argument("mask", f"shape {tuple(mask.shape)}", f"shape ({b}, {n}), True = remove")
    if mask.dtype != torch.bool:
        if mask.is_floating_point() and not bool(((mask == 0) | (mask == 1)).all()):
            raise bad_argument("mask", "non-binary values", "a bool mask (or 0/1 values)")
        mask = mask != 0
    mask = mask.to(points.device)
    if isinstance(centre, str):
        c = cloud_centre(points, centre)
    elif isinstance(centre, torch.Tensor):
        c = centre.to(device=points.device, dtype=points.dtype)
        if c.dim() == 2:
            c = c.unsqueeze(1)
        if tuple(c.shape) != (b, 1, d):
            raise bad_argument("centre", f"shape {tuple(centre.shape)}",
                               f"'median', 'mean' or shape ({b}, 1, {d})")
    else:
        raise bad_argument("centre", centre, "'median', 'mean' or a (B, 1, D) tensor")
    return torch.where(mask.unsqueeze(-1), c.expand(b, n, d), points)


def apply_point_mask(points: torch.Tensor, mask: torch.Tensor, centre) -> torch.Tensor:
    """Soft removal: ``x' = c + m (x - c)`` for every point (``m = 1`` keeps, ``m = 0`` moves to the centre).

    The soft form of :func:`shift_to_centre` (a 0/1 mask gives exactly its result), used where a mask must stay
    differentiable: the trained explainer's point modality and the mask metrics.

    Args:
        points: ``(B, N, 3)``.
        mask: ``(B, N)`` values in ``[0, 1]`` (differentiable).
        centre: ``"median"``, ``"mean"`` or a ``(B, 1, 3)`` tensor (see
            :func:`cloud_centre`).

    Returns:
        ``(B, N, 3)``; exactly ``points`` where ``m = 1`` and exactly the centre where ``m = 0``.
    """
    if mask.dim() != 2 or tuple(mask.shape) != tuple(points.shape[:2]):
        raise bad_argument("mask", f"shape {tuple(mask.shape)}", f"shape {tuple(points.shape[:2])} (one per point)")
    c = cloud_centre(points, centre) if isinstance(centre, str) else centre
    return torch.lerp(c.expand_as(points), points, mask.unsqueeze(-1).to(points.dtype))
