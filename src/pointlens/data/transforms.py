"""Point-cloud transforms: normalisation, sampling and training augmentations.

Every function takes a batch ``(B, N, D)`` (``D >= 3``, xyz first; extra channels such as normals are carried
along) or a single cloud ``(N, D)``, as a torch tensor or a numpy array, and returns the same kind (numpy in,
numpy out; a single cloud in, a single cloud out), float32. Random functions take ``generator``: a
``torch.Generator``, an int seed, or None (torch's global generator, seeded by
:func:`pointlens.utils.seed.seed_everything`). Random numbers are drawn on the CPU and moved to the points'
device, so the same seed gives the same numbers on every device.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from pointlens.errors import bad_argument
from pointlens.ops.geometry import farthest_point_sampling
from pointlens.utils.validate import as_points, check_choice, check_float, check_int

SAMPLING_METHODS = ("first", "random", "fps")
AXES = {"x": 0, "y": 1, "z": 2}
_FPS_BUDGET = 64 * 2**20  # bytes of FPS distance buffers per chunk of clouds
_RANDOM_CHUNK = 512  # clouds per chunk of random keys (fixed, so results do not depend on memory)


def _prepare(points, name: str = "points"):
    """-> (float32 tensor (B, N, D), was_numpy, was_single)."""
    was_numpy = isinstance(points, np.ndarray)
    single = getattr(points, "ndim", None) == 2
    t = as_points(points, name, allow_extra_channels=True)
    return t, was_numpy, single


def _finish(t: torch.Tensor, was_numpy: bool, single: bool):
    if single:
        t = t[0]
    return t.detach().cpu().numpy() if was_numpy else t


def _as_generator(generator) -> torch.Generator | None:
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    seed = check_int("generator", generator)
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def _rand(shape, generator) -> torch.Tensor:
    return torch.rand(shape, generator=generator, dtype=torch.float32)


def normalize_unit_sphere(points, *, return_transform: bool = False):
    """Centre each cloud on the mean of its points and scale it so the farthest point has norm 1.

    Args:
        points: ``(B, N, D)`` or ``(N, D)`` (tensor or numpy); only xyz are moved, normals are unchanged (a
            translation and an isotropic scale do not change them).
        return_transform: also return ``centre`` and ``scale`` with ``normalized = (xyz - centre) / scale``.

    Returns:
        The normalised points, same shape and kind; with ``return_transform``, a tuple ``(points, centre
        (B, 1, 3), scale (B,))`` (``(1, 3)`` and ``()`` for a single cloud). A cloud whose points all coincide
        gets scale 1 (it becomes the origin).
    """
    t, was_numpy, single = _prepare(points)
    xyz = t[..., :3]
    centre = xyz.mean(dim=1, keepdim=True)
    centred = xyz - centre
    scale = centred.norm(dim=-1).amax(dim=1)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    out = torch.cat([centred / scale[:, None, None], t[..., 3:]], dim=-1)
    out = _finish(out, was_numpy, single)
    if not return_transform:
        return out
    if single:
        centre, scale = centre[0], scale[0]
    if was_numpy:
        centre, scale = centre.detach().cpu().numpy(), scale.detach().cpu().numpy()
    return out, centre, scale


def sample_indices(points, n: int, method: str = "first", seed: int = 0) -> torch.Tensor:
    """Indices of ``n`` points picked from each cloud.

    Args:
        points: ``(B, N, D)`` or ``(N, D)``.
        n: points to keep, ``1 <= n <= N``.
        method: ``first`` (the first ``n`` in file order), ``random`` (a uniform subset without
            replacement, seeded by ``seed``, returned in ascending index order) or ``fps`` (farthest point
            sampling on xyz with :func:`pointlens.ops.farthest_point_sampling`, starting at point 0; ``seed``
            is unused).
        seed: seed of ``random``.

    Returns:
        ``(B, n)`` long tensor on the CPU (``(n,)`` for a single cloud).

    Raises:
        InvalidArgumentError: unknown method, or ``n`` outside ``[1, N]``.
    """
    t, _, single = _prepare(points)
    method = check_choice("method", method, SAMPLING_METHODS)
    b, npts = t.shape[0], t.shape[1]
    n = check_int("n", n, minimum=1)
    if n > npts:
        raise bad_argument("n", n, f"at most {npts} (the points per cloud); ask for fewer points")
    seed = check_int("seed", seed)
    if method == "first":
        idx = torch.arange(n).expand(b, n).clone()
    elif method == "random":
        g = torch.Generator()
        g.manual_seed(seed)
        parts = []
        for s in range(0, b, _RANDOM_CHUNK):
            keys = _rand((min(_RANDOM_CHUNK, b - s), npts), g)
            parts.append(keys.argsort(dim=1)[:, :n].sort(dim=1).values)
        idx = torch.cat(parts, 0)
    else:
        xyz = t[..., :3].detach()
        rows = max(1, _FPS_BUDGET // (npts * 4 * 3))
        idx = torch.cat([farthest_point_sampling(xyz[s:s + rows], n).cpu() for s in range(0, b, rows)], 0)
    return idx[0] if single else idx


def sample_points(points, n: int, method: str = "first", seed: int = 0):
    """Keep ``n`` points of each cloud (see :func:`sample_indices` for the methods).

    Args:
        points: ``(B, N, D)`` or ``(N, D)`` tensor or numpy array.
        n: points to keep, ``1 <= n <= N``.
        method: ``first``, ``random`` or ``fps``.
        seed: seed of ``random``.

    Returns:
        ``(B, n, D)`` (or ``(n, D)``), the same kind as ``points``.
    """
    t, was_numpy, single = _prepare(points)
    idx = sample_indices(t, n, method, seed).to(t.device)
    out = torch.gather(t, 1, idx[..., None].expand(-1, -1, t.shape[-1]))
    return _finish(out, was_numpy, single)


def rotation_matrices(angles: torch.Tensor, axis: str = "y") -> torch.Tensor:
    """Rotation matrices about a coordinate axis (right-handed, counter-clockwise for positive angles).

    Args:
        angles: ``(B,)`` angles in radians.
        axis: ``x``, ``y`` or ``z``.

    Returns:
        ``(B, 3, 3)``; apply to row-vector points as ``points @ R.transpose(1, 2)``.
    """
    a = AXES[check_choice("axis", axis, AXES)]
    angles = torch.as_tensor(angles, dtype=torch.float32).reshape(-1)
    c, s = torch.cos(angles), torch.sin(angles)
    i, j = [k for k in range(3) if k != a][::(-1 if a == 1 else 1)]
    r = torch.zeros(len(angles), 3, 3)
    r[:, a, a] = 1.0
    r[:, i, i] = c
    r[:, j, j] = c
    r[:, i, j] = -s
    r[:, j, i] = s
    return r


def rotate_up(points, axis: str = "y", generator=None, *, return_angles: bool = False):
    """Rotate each cloud by a uniform random angle in ``[0, 2*pi)`` about the up axis.

    The up coordinate and every point's distance to the up axis (and to the origin) are unchanged. Normals in
    channels 3..5 (when ``D >= 6``) are rotated with the points.

    Args:
        points: ``(B, N, D)`` or ``(N, D)``.
        axis: the up axis, ``x``, ``y`` (ModelNet's up, default) or ``z``.
        generator: ``torch.Generator``, int seed or None.
        return_angles: also return the ``(B,)`` angles used.

    Returns:
        Rotated points (same shape and kind); with ``return_angles`` a tuple ``(points, angles)``.
    """
    t, was_numpy, single = _prepare(points)
    check_choice("axis", axis, AXES)
    g = _as_generator(generator)
    angles = _rand((t.shape[0],), g) * (2 * math.pi)
    rt = rotation_matrices(angles, axis).to(t.device).transpose(1, 2)
    chans = [t[..., :3] @ rt]
    if t.shape[-1] >= 6:
        chans += [t[..., 3:6] @ rt, t[..., 6:]]
    else:
        chans.append(t[..., 3:])
    out = _finish(torch.cat(chans, -1), was_numpy, single)
    return (out, angles) if return_angles else out


def jitter(points, sigma: float = 0.01, clip: float = 0.05, generator=None):
    """Add Gaussian noise ``N(0, sigma^2)`` clipped to ``[-clip, clip]`` to every xyz coordinate.

    Args:
        points: ``(B, N, D)`` or ``(N, D)``.
        sigma: standard deviation (>= 0).
        clip: absolute bound of each coordinate's noise (> 0).
        generator: ``torch.Generator``, int seed or None.

    Returns:
        Jittered points, same shape and kind.
    """
    t, was_numpy, single = _prepare(points)
    sigma = check_float("sigma", sigma, minimum=0.0)
    clip = check_float("clip", clip, minimum=0.0, strict_min=True)
    g = _as_generator(generator)
    noise = (torch.randn(t.shape[:-1] + (3,), generator=g) * sigma).clamp_(-clip, clip).to(t.device)
    out = torch.cat([t[..., :3] + noise, t[..., 3:]], -1)
    return _finish(out, was_numpy, single)


def random_scale(points, low: float = 0.8, high: float = 1.25, generator=None):
    """Multiply each cloud's xyz by one factor drawn uniformly from ``[low, high)`` (isotropic; normals kept).

    Args:
        points: ``(B, N, D)`` or ``(N, D)``.
        low, high: bounds of the factor, ``0 < low <= high``.
        generator: ``torch.Generator``, int seed or None.

    Returns:
        Scaled points, same shape and kind.
    """
    t, was_numpy, single = _prepare(points)
    low = check_float("low", low, minimum=0.0, strict_min=True)
    high = check_float("high", high, minimum=low)
    g = _as_generator(generator)
    f = (low + (high - low) * _rand((t.shape[0], 1, 1), g)).to(t.device)
    out = torch.cat([t[..., :3] * f, t[..., 3:]], -1)
    return _finish(out, was_numpy, single)


def random_shift(points, max: float = 0.1, generator=None):  # `max` is the agreed name
    """Translate each cloud by a vector with coordinates drawn uniformly from ``[-max, max)``.

    Args:
        points: ``(B, N, D)`` or ``(N, D)``.
        max: bound of each coordinate of the shift (>= 0).
        generator: ``torch.Generator``, int seed or None.

    Returns:
        Shifted points, same shape and kind.
    """
    t, was_numpy, single = _prepare(points)
    bound = check_float("max", max, minimum=0.0)
    g = _as_generator(generator)
    shift = ((2 * _rand((t.shape[0], 1, 3), g) - 1) * bound).to(t.device)
    out = torch.cat([t[..., :3] + shift, t[..., 3:]], -1)
    return _finish(out, was_numpy, single)


_rotate_up, _jitter, _random_scale, _random_shift = rotate_up, jitter, random_scale, random_shift


def augment(points, generator=None, rotate: bool = False, jitter: bool = True, scale: bool = True,
            shift: bool = True):
    """The training augmentation: in order rotate about y, random scale, random shift, jitter (defaults of
    :func:`rotate_up`, :func:`random_scale`, :func:`random_shift`, :func:`jitter`).

    Args:
        points: ``(B, N, D)`` or ``(N, D)``.
        generator: ``torch.Generator``, int seed or None; one generator drives every step.
        rotate, jitter, scale, shift: switch each step on or off.

    Returns:
        Augmented points, same shape and kind.
    """
    g = _as_generator(generator)
    out = points
    if rotate:
        out = _rotate_up(out, "y", g)
    if scale:
        out = _random_scale(out, generator=g)
    if shift:
        out = _random_shift(out, generator=g)
    if jitter:
        out = _jitter(out, generator=g)
    if out is points:
        t, was_numpy, single = _prepare(points)
        out = _finish(t, was_numpy, single)
    return out
