"""The point-cloud modality: soft point shifting to the cloud's centre and total variation on the k-NN graph.

A mask value ``m_i`` in ``[0, 1]`` moves point ``i`` along the segment to the cloud's centre ``c``:
``x'_i = c + m_i (x_i - c)``. ``m_i = 1`` leaves the point where it is; ``m_i = 0`` puts it on the centre,
which approximates removing it (the point-shift approximation of Zheng et al., docs/methods.md §1; the centre
is :func:`pointlens.ops.removal.cloud_centre` of the clean cloud, the per-axis median by default). The
blend is computed with :func:`torch.lerp`, which is exact at both ends: an all-ones mask returns the cloud
bit for bit and an all-zeros mask returns the centre bit for bit.

Smoothness is the total variation of the mask over the k-nearest-neighbour graph of the clean cloud
(:func:`pointlens.ops.knn_indices`, the point itself excluded): the mean over points ``i`` and their ``k``
neighbours ``j`` of ``|m_i - m_j|``, the graph analogue of the image's mean absolute difference between
neighbouring pixels.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from pointlens.errors import bad_argument
from pointlens.ops import knn_indices
from pointlens.ops.removal import CENTRES, apply_point_mask, cloud_centre  # noqa: F401  (apply_point_mask re-exported)
from pointlens.utils.validate import check_choice, check_int


class PointState(NamedTuple):
    """Per-batch constants of :class:`PointModality`.

    Attributes:
        centre: ``(B, 1, 3)`` centre of every clean cloud.
        neighbours: ``(B, N, k)`` long indices of each point's ``k`` nearest neighbours (itself excluded).
    """

    centre: torch.Tensor
    neighbours: torch.Tensor


def knn_total_variation(mask: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
    """Total variation of per-point masks over a k-NN graph: ``mean_{i, j in N(i)} |m_i - m_j|``.

    Args:
        mask: ``(B, N)`` or ``(B, C, N)`` mask values.
        neighbours: ``(B, N, k)`` long neighbour indices.

    Returns:
        ``(B,)`` (``(B, C)`` masks: mean over the ``C`` masks too).
    """
    m = mask if mask.dim() == 3 else mask.unsqueeze(1)
    b, c, n = m.shape
    k = neighbours.shape[-1]
    idx = neighbours.reshape(b, 1, n * k).expand(b, c, n * k)
    nb = torch.gather(m, 2, idx).view(b, c, n, k)
    return (nb - m.unsqueeze(-1)).abs().mean(dim=(1, 2, 3))


class PointModality:
    """Point clouds for the explainer objective (see :mod:`pointlens.explainer.modality`).

    Args:
        k: neighbours per point of the smoothness graph (default 10).
        centre: ``"median"`` (default, as point-shift saliency) or ``"mean"``.
    """

    name = "points"

    def __init__(self, *, k: int = 10, centre: str = "median"):
        self.k = check_int("k", k, minimum=1)
        self.centre = check_choice("centre", centre, CENTRES)

    def __repr__(self) -> str:
        return f"PointModality(k={self.k}, centre={self.centre!r})"

    def prepare(self, x: torch.Tensor) -> PointState:
        """Centre ``(B, 1, 3)`` and k-NN graph ``(B, N, k)`` of the clean clouds ``x (B, N, 3)``."""
        n = x.shape[1]
        if n <= self.k:
            raise bad_argument("k", self.k, f"fewer neighbours than the {n} points of a cloud")
        with torch.no_grad():
            nb = knn_indices(x.detach(), x.detach(), self.k, exclude_self=True)
        return PointState(cloud_centre(x.detach(), self.centre), nb)

    def apply(self, x: torch.Tensor, mask: torch.Tensor, state: PointState) -> torch.Tensor:
        """``(B, N, 3)`` clouds with the ``(B, N)`` mask applied by shifting towards the centre."""
        return apply_point_mask(x, mask, state.centre)

    def smoothness(self, mask: torch.Tensor, state: PointState) -> torch.Tensor:
        """k-NN total variation of ``(B, N)`` masks -> ``(B,)``."""
        return knn_total_variation(mask, state.neighbours)
