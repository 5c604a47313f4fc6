"""Single-view depth rendering of point clouds with a z-buffer, and the object / viewer coordinate frames.

Conventions (used by every function here):

* A camera is a rotation ``R`` ``(3, 3)``: viewer-frame coordinates are ``p_v = R p`` (row vectors:
  ``points @ R.T``). :func:`camera_rotation` builds ``R = R_x(elevation) @ R_y(-azimuth) @ U``: ``U`` turns
  the data's up axis into ``y``, then the camera orbits the object around it by ``azimuth`` and tilts by
  ``elevation`` (degrees).
* In the viewer frame ``x`` points right, ``y`` up, and the camera sits at ``(0, 0, camera_distance)`` looking
  down ``-z``; the depth of a point is ``camera_distance - z_v`` (> 0 in front of the camera).
* Orthographic projection maps ``x_v, y_v`` in ``[-extent, extent]`` to the image; perspective projection maps
  ``x_v / (depth * tan(fov / 2))`` and ``y_v / (depth * tan(fov / 2))`` in ``[-1, 1]`` to the image. Pixel
  ``(row, col)`` covers ``col = floor((u + 1) / 2 * W)``, ``row = floor((1 - v) / 2 * H)`` for the normalised
  coordinates ``u, v``; points that fall outside the image or behind the camera are dropped.
* Depth images hold the depth of the nearest point splatted on each pixel and ``0`` where no point lands, so
  the silhouette is exactly ``depth > 0``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from pointlens.errors import bad_argument
from pointlens.utils.validate import as_points, check_choice, check_float, check_int

PROJECTIONS = ("orthographic", "perspective")


class Views(NamedTuple):
    """Camera angles drawn by :func:`random_views` (degrees).

    Attributes:
        azimuth: ``(B,)`` float32 in ``[0, 360)``.
        elevation: ``(B,)`` float32 in ``[elevation_range[0], elevation_range[1]]``.
    """

    azimuth: torch.Tensor
    elevation: torch.Tensor


class Rendering(NamedTuple):
    """Result of :func:`render_views`.

    Attributes:
        depth: ``(B, H, W)`` float32 depth of the nearest point per pixel, 0 on the background.
        silhouette: ``(B, H, W)`` bool, ``depth > 0``.
        rotation: ``(B, 3, 3)`` the camera rotations used (viewer coordinates are ``points @ rotation.T``).
    """

    depth: torch.Tensor
    silhouette: torch.Tensor
    rotation: torch.Tensor


def random_views(count: int, *, seed: int = 0, elevation_range: tuple[float, float] = (-20.0, 40.0)) -> Views:
    """Draw ``count`` random camera angles, deterministically for a seed.

    Args:
        count: number of views ``B``.
        seed: random seed (same seed, same angles).
        elevation_range: ``(low, high)`` degrees, ``-90 <= low <= high <= 90``; elevation is uniform in it,
            azimuth uniform in ``[0, 360)``.

    Returns:
        :class:`Views` with ``azimuth (B,)`` and ``elevation (B,)`` in degrees.
    """
    count = check_int("count", count, minimum=0)
    lo, hi = (
        check_float("elevation_range[0]", elevation_range[0], minimum=-90.0, maximum=90.0),
        check_float("elevation_range[1]", elevation_range[1], minimum=-90.0, maximum=90.0),
    )
    if lo > hi:
        raise bad_argument("elevation_range", tuple(elevation_range), "(low, high) with low <= high")
    g = torch.Generator().manual_seed(int(seed))
    azimuth = torch.rand(count, generator=g) * 360.0
    elevation = lo + torch.rand(count, generator=g) * (hi - lo)
    return Views(azimuth.float(), elevation.float())


UP_AXES = ("x", "y", "z")
# rotations taking the data's up axis to +y (right-handed, det +1)
_TO_Y_UP = {
    "y": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    "z": ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, -1.0, 0.0)),  # R_x(-90): z -> y, y -> -z
    "x": ((0.0, -1.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),  # R_z(90): x -> y, y -> -x
}


def camera_rotation(azimuth, elevation, *, up: str = "y") -> torch.Tensor:
    """Rotation matrices ``R = R_x(elevation) @ R_y(-azimuth) @ U`` of cameras orbiting the origin.

    ``U`` turns the data's ``up`` axis into ``+y`` (identity for ``y``; ``R_x(-90°)`` for ``z``, e.g.
    ShapeParts; ``R_z(90°)`` for ``x``), so azimuth always turns about the data's up axis and elevation 90°
    looks down on it.

    Args:
        azimuth: ``(B,)`` degrees (or a scalar), rotation about the up axis.
        elevation: ``(B,)`` degrees (or a scalar), tilt of the camera above the horizon.
        up: the data's up axis: ``x``, ``y`` or ``z``.

    Returns:
        ``(B, 3, 3)`` float32 orthonormal matrices with determinant +1; viewer coordinates are
        ``points @ R.T``.
    """
    check_choice("up", up, UP_AXES)
    az = torch.as_tensor(azimuth, dtype=torch.float64).reshape(-1)
    el = torch.as_tensor(elevation, dtype=torch.float64).reshape(-1)
    if az.numel() != el.numel():
        raise bad_argument("azimuth/elevation", f"{az.numel()} and {el.numel()} angles", "the same number")
    if not (torch.isfinite(az).all() and torch.isfinite(el).all()):
        raise bad_argument("azimuth/elevation", "non-finite angles", "finite angles in degrees")
    a, e = torch.deg2rad(-az), torch.deg2rad(el)
    ca, sa, ce, se = torch.cos(a), torch.sin(a), torch.cos(e), torch.sin(e)
    one, zero = torch.ones_like(a), torch.zeros_like(a)
    ry = torch.stack(
        [
            torch.stack([ca, zero, sa], -1),
            torch.stack([zero, one, zero], -1),
            torch.stack([-sa, zero, ca], -1),
        ],
        -2,
    )
    rx = torch.stack(
        [
            torch.stack([one, zero, zero], -1),
            torch.stack([zero, ce, -se], -1),
            torch.stack([zero, se, ce], -1),
        ],
        -2,
    )
    return (rx @ ry @ torch.tensor(_TO_Y_UP[up], dtype=torch.float64)).float()


def _as_rotation(rotation, batch: int) -> torch.Tensor:
    if rotation is None:
        return torch.eye(3).expand(batch, 3, 3)
    r = torch.as_tensor(rotation, dtype=torch.float32)
    if r.dim() == 2:
        r = r.unsqueeze(0)
    if r.dim() != 3 or r.shape[-2:] != (3, 3) or r.shape[0] not in (1, batch):
        raise bad_argument("rotation", f"shape {tuple(r.shape)}", f"(3, 3), (1, 3, 3) or ({batch}, 3, 3)")
    eye = torch.eye(3)
    if not torch.allclose(r @ r.transpose(1, 2), eye.expand_as(r), atol=1e-4):
        raise bad_argument("rotation", "a non-orthonormal matrix", "rotation matrices (R @ R.T = I)")
    return r.expand(batch, 3, 3)


def to_viewer_frame(points, rotation) -> torch.Tensor:
    """Rotate shapes into their cameras' frames (the viewer-centred targets).

    Args:
        points: ``(B, N, 3)`` object-frame coordinates.
        rotation: ``(B, 3, 3)`` (or one ``(3, 3)``) camera rotations, e.g. from :func:`camera_rotation`.

    Returns:
        ``(B, N, 3)`` viewer-frame coordinates ``points @ rotation.T``.
    """
    p = as_points(points)
    r = _as_rotation(rotation, p.shape[0])
    return p @ r.transpose(1, 2)


def render_depth(
    points,
    rotation=None,
    *,
    image_size: int = 64,
    projection: str = "orthographic",
    extent: float = 1.0,
    camera_distance: float = 2.0,
    fov_degrees: float = 60.0,
    splat_radius: int = 0,
) -> torch.Tensor:
    """Render depth images of point clouds with a z-buffer (vectorised ``scatter_reduce(amin)``, no loops).

    Each point lands on one pixel (or on the ``(2 r + 1)^2`` block around it with ``splat_radius = r``) and
    every pixel keeps the smallest depth that lands on it.

    Args:
        points: ``(B, N, 3)`` in object coordinates.
        rotation: ``(B, 3, 3)`` / ``(3, 3)`` camera rotation (see the module doc), or None for the identity
            camera (the points are then already in the viewer frame).
        image_size: ``H = W`` in pixels.
        projection: ``orthographic`` or ``perspective``.
        extent: orthographic half-width: the image covers ``[-extent, extent]^2`` of the viewer's ``x, y``.
        camera_distance: distance of the camera from the origin along ``+z`` of the viewer frame.
        fov_degrees: perspective field of view (full angle, degrees).
        splat_radius: pixels around the hit pixel that a point also covers (0 = one pixel per point).

    Returns:
        ``(B, H, W)`` float32 depth images; 0 where no point lands.
    """
    p = as_points(points)
    size = check_int("image_size", image_size, minimum=1, maximum=4096)
    check_choice("projection", projection, PROJECTIONS)
    extent = check_float("extent", extent, minimum=0.0, strict_min=True)
    camera_distance = check_float("camera_distance", camera_distance, minimum=0.0, strict_min=True)
    fov = check_float("fov_degrees", fov_degrees, minimum=0.0, maximum=179.0, strict_min=True)
    radius = check_int("splat_radius", splat_radius, minimum=0, maximum=16)
    b, n, _ = p.shape
    v = p if rotation is None else p @ _as_rotation(rotation, b).to(p.device).transpose(1, 2)
    depth = camera_distance - v[..., 2]
    if projection == "orthographic":
        u, w = v[..., 0] / extent, v[..., 1] / extent
    else:
        scale = depth.clamp_min(1e-12) * math.tan(math.radians(fov) / 2.0)
        u, w = v[..., 0] / scale, v[..., 1] / scale
    col = torch.floor((u + 1.0) * 0.5 * size).long()
    row = torch.floor((1.0 - w) * 0.5 * size).long()
    if radius:
        offs = torch.arange(-radius, radius + 1, device=p.device)
        dr, dc = torch.meshgrid(offs, offs, indexing="ij")
        row = (row.unsqueeze(-1) + dr.reshape(-1)).reshape(b, -1)
        col = (col.unsqueeze(-1) + dc.reshape(-1)).reshape(b, -1)
        depth = depth.unsqueeze(-1).expand(b, n, dr.numel()).reshape(b, -1)
    valid = (depth > 0) & (row >= 0) & (row < size) & (col >= 0) & (col < size)
    batch = torch.arange(b, device=p.device).unsqueeze(1).expand_as(row)
    lin = (batch * size + row) * size + col
    buf = torch.full((b * size * size,), float("inf"), device=p.device)
    buf.scatter_reduce_(0, lin[valid], depth[valid], reduce="amin", include_self=True)
    buf = torch.where(torch.isinf(buf), torch.zeros_like(buf), buf)
    return buf.reshape(b, size, size)


def silhouette(depth) -> torch.Tensor:
    """Silhouette of depth images: ``depth > 0``.

    Args:
        depth: ``(B, H, W)`` depth images from :func:`render_depth`.

    Returns:
        ``(B, H, W)`` bool.
    """
    return torch.as_tensor(depth) > 0


def render_views(points, views: Views, *, up: str = "y", **options) -> Rendering:
    """Render every shape from its own camera.

    Args:
        points: ``(B, N, 3)`` object-frame shapes.
        views: :class:`Views` with ``B`` angles (e.g. :func:`random_views`).
        up: the data's up axis (see :func:`camera_rotation`).
        **options: passed to :func:`render_depth` (``image_size``, ``projection``, ``splat_radius``, ...).

    Returns:
        :class:`Rendering` with ``depth (B, H, W)``, ``silhouette (B, H, W)`` and ``rotation (B, 3, 3)``.
    """
    p = as_points(points)
    if len(views.azimuth) != p.shape[0]:
        raise bad_argument("views", f"{len(views.azimuth)} views", f"{p.shape[0]} (one per shape)")
    rot = camera_rotation(views.azimuth, views.elevation, up=up)
    depth = render_depth(p, rot, **options)
    return Rendering(depth, silhouette(depth), rot)


def network_input(depth) -> torch.Tensor:
    """The two-channel image the CNNs read: silhouette and nearness.

    Nearness is ``(d_max - depth) / (d_max - d_min)`` scaled per image to ``[0.1, 1]`` on the silhouette
    (nearest point = 1) and 0 on the background, so that the background and far surfaces differ.

    Args:
        depth: ``(B, H, W)`` depth images.

    Returns:
        ``(B, 2, H, W)`` float32: channel 0 silhouette (0/1), channel 1 nearness.
    """
    d = torch.as_tensor(depth, dtype=torch.float32)
    if d.dim() != 3:
        raise bad_argument("depth", f"shape {tuple(d.shape)}", "(B, H, W)")
    sil = d > 0
    big = torch.where(sil, d, torch.full_like(d, -np.inf)).flatten(1).amax(1).clamp_min(0)
    small = torch.where(sil, d, torch.full_like(d, np.inf)).flatten(1).amin(1)
    small = torch.where(torch.isinf(small), torch.zeros_like(small), small)
    span = (big - small).clamp_min(1e-6)
    near = 0.1 + 0.9 * (big[:, None, None] - d) / span[:, None, None]
    near = torch.where(sil, near, torch.zeros_like(near))
    return torch.stack([sil.float(), near], dim=1)
