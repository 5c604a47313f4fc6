"""PointNet++ classifier, single-scale grouping (Qi et al., NeurIPS 2017).

Two set-abstraction levels (farthest point sampling -> ball query -> shared MLP on the group's relative
coordinates and features -> max over the group), then a group-all level (shared MLP on every remaining
centre's absolute coordinates and features) -> global max pool -> MLP head.

Layer names (for :mod:`pointlens.models.hooks`):

- ``sa.0``, ``sa.1``: set abstraction levels (relative coordinates divided by the radius with
  ``normalize_xyz=True``); inside each, ``mlp.j`` (output ``(B, C_j, M_i, K_i)`` per group
  member) and ``pool`` (max over the group, output ``(B, C, M_i)``: per-centre features),
- ``global_mlp.0`` ... : shared layers of the group-all level, output ``(B, C, M_last)``,
- ``pool``: :class:`~pointlens.models.layers.GlobalMaxPool`, input ``(B, 1024, M_last)`` (one column per
  centre of the last level, 128 for 1024 input points), output ``(B, 1024)``,
- ``head`` (``head.0``, ``head.1``: linear/bn/act/drop; ``head.2``: the final ``Linear``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pointlens.errors import bad_argument
from pointlens.models.layers import (
    ClassifierHead,
    GlobalMaxPool,
    LocalMaxPool,
    PointClassifier,
    SharedMLP,
    check_channels,
    check_dropout,
)
from pointlens.models.registry import register_model
from pointlens.ops import ball_query, farthest_point_sampling, gather_points
from pointlens.utils.validate import check_float, check_int


def num_centres(n_points: int, max_centres: int, reference_points: int) -> int:
    """Centres of a level for a cloud of ``n_points``: ``max_centres * n_points / reference_points`` rounded,
    at least 1, at most ``max_centres`` (512 and 128 centres for 1024 points: N/2 and N/8).
    """
    return max(1, min(max_centres, round(max_centres * n_points / reference_points)))


class SetAbstraction(nn.Module):
    """One set-abstraction level with single-scale grouping.

    Args:
        max_centres: centres for ``reference_points`` input points (fewer for smaller clouds, see
            :func:`num_centres`).
        radius: ball query radius.
        nsample: points per ball ``K`` (padded with the first point found when fewer lie inside).
        in_channels: feature channels of the input points (0 for raw xyz).
        mlp: widths of the shared MLP applied to ``[relative xyz, features]`` of each group member.
        reference_points: input size for which ``max_centres`` centres are used.
        normalize_xyz: divide the relative coordinates by ``radius``.

    Shapes:
        ``xyz (B, N, 3)``, ``features (B, N, C_in)`` or None -> ``(B, M, 3)`` centres, ``(B, M, mlp[-1])``.
    """

    def __init__(
        self,
        max_centres: int,
        radius: float,
        nsample: int,
        in_channels: int,
        mlp: Sequence[int],
        reference_points: int = 1024,
        normalize_xyz: bool = False,
    ):
        super().__init__()
        self.max_centres = max_centres
        self.radius = radius
        self.nsample = nsample
        self.reference_points = reference_points
        self.normalize_xyz = bool(normalize_xyz)
        self.mlp = SharedMLP(in_channels + 3, mlp, dim=2, bias=True)
        self.pool = LocalMaxPool()

    def forward(self, xyz: torch.Tensor, features: torch.Tensor | None, cloud_size: int | None = None):
        """Group and abstract. ``cloud_size``: the size of the model's input cloud, which sets the number of
        centres (default: ``N`` of ``xyz``); never more than ``N``.
        """
        b, n, _ = xyz.shape
        m = min(
            n, num_centres(n if cloud_size is None else cloud_size, self.max_centres, self.reference_points)
        )
        with torch.no_grad():
            pts = xyz.detach()
            if self.training:
                start = torch.randint(n, (b,), device=xyz.device)
            else:
                start = 0
            centre_idx = farthest_point_sampling(pts, m, start=start)
            new_xyz_ng = gather_points(pts, centre_idx)
            group_idx = ball_query(new_xyz_ng, pts, self.radius, self.nsample)
        new_xyz = gather_points(xyz, centre_idx)  # (B, M, 3), differentiable
        grouped = gather_points(xyz, group_idx) - new_xyz.unsqueeze(2)  # (B, M, K, 3) relative coordinates
        if self.normalize_xyz:
            grouped = grouped / self.radius  # inside the unit ball: BN statistics settle in a few steps
        if features is not None:
            grouped = torch.cat([grouped, gather_points(features, group_idx)], dim=-1)
        x = self.pool(self.mlp(grouped.permute(0, 3, 1, 2)))  # (B, C, M)
        return new_xyz, x.transpose(1, 2)


@register_model("pointnet2")
class PointNet2(PointClassifier):
    """PointNet++ (SSG) classifier.

    Args:
        num_classes: number of logits ``C``.
        npoints: centres of each set-abstraction level for ``reference_points`` input points (default
            ``(512, 128)``); scaled down proportionally for smaller clouds (N/2 and N/8 by default).
        radii: ball radii of the levels (default ``(0.2, 0.4)``, for clouds in the unit sphere).
        nsamples: points per ball (default ``(32, 64)``).
        mlps: shared MLP widths of the levels (default ``((64, 64, 128), (128, 128, 256))``).
        global_mlp: widths of the group-all level (default ``(256, 512, 1024)``).
        head: hidden widths of the head (default ``(512, 256)``).
        dropout: head dropout (default 0.5).
        reference_points: input size the ``npoints`` refer to (default 1024).
        normalize_xyz: divide each group's relative coordinates by the ball radius, so the first layer of
            every level sees coordinates in the unit ball (default False: Qi et al.'s original). Without it
            they have a variance of about 0.002 and eval-mode predictions after one short epoch are at chance
            level (0.069 on ShapeParts after 50 steps; 0.498 with it; both about 0.98 after 100 steps).

    Sampling: farthest point sampling starts at index 0 in eval mode (deterministic, but dependent on the
    points' order) and at a random index in training mode.

    Shapes:
        ``(B, N, 3)`` -> logits ``(B, C)``; any ``N >= 1``.
    """

    def __init__(
        self,
        num_classes: int,
        npoints: Sequence[int] = (512, 128),
        radii: Sequence[float] = (0.2, 0.4),
        nsamples: Sequence[int] = (32, 64),
        mlps: Sequence[Sequence[int]] = ((64, 64, 128), (128, 128, 256)),
        global_mlp: Sequence[int] = (256, 512, 1024),
        head: Sequence[int] = (512, 256),
        dropout: float = 0.5,
        reference_points: int = 1024,
        normalize_xyz: bool = False,
    ):
        super().__init__()
        npoints = check_channels("npoints", npoints)
        nsamples = check_channels("nsamples", nsamples)
        if isinstance(radii, (str, bytes)) or not isinstance(radii, Sequence):
            raise bad_argument("radii", radii, "a list of positive numbers")
        radii = tuple(
            check_float(f"radii[{i}]", r, minimum=0.0, strict_min=True) for i, r in enumerate(radii)
        )
        if isinstance(mlps, (str, bytes)) or not isinstance(mlps, Sequence):
            raise bad_argument("mlps", mlps, "a list of lists of layer widths")
        mlps = tuple(check_channels(f"mlps[{i}]", m) for i, m in enumerate(mlps))
        if not (len(npoints) == len(radii) == len(nsamples) == len(mlps)):
            raise bad_argument(
                "npoints/radii/nsamples/mlps",
                f"lengths {len(npoints)}, {len(radii)}, {len(nsamples)}, {len(mlps)}",
                "one entry per set-abstraction level in each",
            )
        global_mlp = check_channels("global_mlp", global_mlp)
        hidden = check_channels("head", head, allow_empty=True)
        dropout = check_dropout(dropout)
        reference_points = check_int("reference_points", reference_points, minimum=1)
        if not isinstance(normalize_xyz, bool):
            raise bad_argument("normalize_xyz", normalize_xyz, "True or False")
        self._set_config(
            "pointnet2",
            num_classes,
            dict(
                npoints=npoints,
                radii=radii,
                nsamples=nsamples,
                mlps=mlps,
                global_mlp=global_mlp,
                head=hidden,
                dropout=dropout,
                reference_points=reference_points,
                normalize_xyz=normalize_xyz,
            ),
        )
        levels = []
        c = 0
        for m, r, k, mlp in zip(npoints, radii, nsamples, mlps):
            levels.append(SetAbstraction(m, r, k, c, mlp, reference_points, normalize_xyz))
            c = mlp[-1]
        self.sa = nn.ModuleList(levels)
        self.global_mlp = SharedMLP(c + 3, global_mlp, bias=True)
        self.pool = GlobalMaxPool()
        self.head = ClassifierHead(global_mlp[-1], hidden, num_classes, dropout=dropout)
        self.pointwise_until_pool = False

    def forward_features(self, points: torch.Tensor) -> torch.Tensor:
        """Per-centre features at the pool input. Shapes: ``(B, N, 3)`` -> ``(B, global_mlp[-1], M_last)``."""
        xyz, feats = points, None
        for level in self.sa:
            xyz, feats = level(xyz, feats, cloud_size=points.shape[1])
        x = torch.cat([xyz, feats], dim=-1) if feats is not None else xyz
        return self.global_mlp(x.transpose(1, 2))
