"""Parametric surface primitives for ShapeParts: analytic areas and uniform (area-weighted) surface sampling.

Every primitive lives in its own local frame and is described by one row of six floats; its kind is one of
``KINDS``. All functions are vectorised over rows (no per-point Python loops).

==========  ========================================================================================
kind        parameters (row of 6) and local surface
==========  ========================================================================================
box         ``(hx, hy, hz, faces, 0, 0)``: the faces of ``[-hx, hx] x [-hy, hy] x [-hz, hz]`` whose bit is
            set in ``faces`` (+x=1, -x=2, +y=4, -y=8, +z=16, -z=32; ``BOX_ALL`` = 63).
frustum     ``(r0, r1, h, cap0, cap1, 0)``: lateral surface of a truncated cone along +z with radius ``r0``
            at ``z=0`` and ``r1`` at ``z=h`` (cylinder when ``r0 == r1``, cone when ``r1 == 0``, flat
            annulus when ``h == 0``), plus the disk at ``z=0`` when ``cap0`` and at ``z=h`` when ``cap1``.
zone        ``(r, z0, z1, 0, 0, 0)``: the part of the sphere of radius ``r`` with ``z0*r <= z <= z1*r``
            (``-1 <= z0 < z1 <= 1``; a full sphere is ``(r, -1, 1)``).
torus       ``(R, r, u0, u1, 0, 0)``: torus around +z with major radius ``R`` and tube radius ``r < R``,
            restricted to major angles ``u0 <= phi <= u1`` (full torus: ``0, 2*pi``).
==========  ========================================================================================
"""

from __future__ import annotations

import numpy as np

from pointlens.errors import bad_argument

BOX, FRUSTUM, ZONE, TORUS = 0, 1, 2, 3
KINDS = ("box", "frustum", "zone", "torus")
BOX_ALL = 63
#: face bits of a box, in the order +x, -x, +y, -y, +z, -z
BOX_FACE_BITS = (1, 2, 4, 8, 16, 32)


def _face_areas(p: np.ndarray) -> np.ndarray:
    """``(K, 6)`` areas of the six box faces (zero where the face's bit is unset)."""
    a, b, c = p[:, 0], p[:, 1], p[:, 2]
    mask = p[:, 3].astype(np.int64)
    yz, xz, xy = 4 * b * c, 4 * a * c, 4 * a * b
    areas = np.stack([yz, yz, xz, xz, xy, xy], axis=1)
    bits = np.array(BOX_FACE_BITS)
    return areas * ((mask[:, None] & bits[None, :]) > 0)


def _frustum_areas(p: np.ndarray) -> np.ndarray:
    """``(K, 3)`` areas of (lateral, cap at z=0, cap at z=h) of frustum rows."""
    r0, r1, h = p[:, 0], p[:, 1], p[:, 2]
    lateral = np.pi * (r0 + r1) * np.sqrt(h * h + (r1 - r0) ** 2)
    return np.stack([lateral, np.pi * r0 * r0 * (p[:, 3] > 0), np.pi * r1 * r1 * (p[:, 4] > 0)], axis=1)


def surface_area(kind, params) -> np.ndarray:
    """Analytic surface areas of primitives.

    Args:
        kind: an int (one of ``BOX``, ``FRUSTUM``, ``ZONE``, ``TORUS``) for every row, or ``(P,)`` ints.
        params: ``(P, 6)`` parameter rows (see the module docstring).

    Returns:
        ``(P,)`` float64 areas.
    """
    params = np.asarray(params, dtype=np.float64).reshape(-1, 6)
    kind = np.broadcast_to(np.asarray(kind, dtype=np.int64), (len(params),))
    out = np.zeros(len(params))
    for k in np.unique(kind):
        sel = kind == k
        p = params[sel]
        if k == BOX:
            out[sel] = _face_areas(p).sum(1)
        elif k == FRUSTUM:
            out[sel] = _frustum_areas(p).sum(1)
        elif k == ZONE:
            out[sel] = 2 * np.pi * p[:, 0] ** 2 * (p[:, 2] - p[:, 1])
        elif k == TORUS:
            out[sel] = (p[:, 3] - p[:, 2]) * p[:, 0] * 2 * np.pi * p[:, 1]
        else:
            raise bad_argument("kind", int(k), f"one of 0..{len(KINDS) - 1} ({', '.join(KINDS)})")
    return out


def local_bounds(kind, params) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned boxes enclosing primitives in their local frames.

    Args:
        kind: an int or ``(P,)`` ints (see ``KINDS``).
        params: ``(P, 6)`` parameter rows.

    Returns:
        ``(lo, hi)``, each ``(P, 3)`` float64.
    """
    params = np.asarray(params, dtype=np.float64).reshape(-1, 6)
    kind = np.broadcast_to(np.asarray(kind, dtype=np.int64), (len(params),))
    lo = np.zeros((len(params), 3))
    hi = np.zeros((len(params), 3))
    p = params
    box, fr, zo, to = (kind == BOX), (kind == FRUSTUM), (kind == ZONE), (kind == TORUS)
    hi[box] = p[box, :3]
    lo[box] = -p[box, :3]
    rm = np.maximum(p[fr, 0], p[fr, 1])
    lo[fr] = np.stack([-rm, -rm, np.minimum(0, p[fr, 2])], 1)
    hi[fr] = np.stack([rm, rm, np.maximum(0, p[fr, 2])], 1)
    r = p[zo, 0]
    lo[zo] = np.stack([-r, -r, p[zo, 1] * r], 1)
    hi[zo] = np.stack([r, r, p[zo, 2] * r], 1)
    ext = p[to, 0] + p[to, 1]
    lo[to] = np.stack([-ext, -ext, -p[to, 1]], 1)
    hi[to] = np.stack([ext, ext, p[to, 1]], 1)
    return lo, hi


_RING = 16


def bound_points(kind, params) -> np.ndarray:
    """Points whose convex hull encloses each primitive, in its local frame.

    Boxes give their 8 corners; round primitives (frustum, zone, torus) the vertices of two regular
    16-gons circumscribing their bounding cylinder (radius / cos(pi/16)), much tighter than a box.

    Args:
        kind: an int or ``(P,)`` ints (see ``KINDS``).
        params: ``(P, 6)`` parameter rows.

    Returns:
        ``(P, 32, 3)`` float64 (box corners repeated to fill the 32 rows).
    """
    params = np.asarray(params, dtype=np.float64).reshape(-1, 6)
    kind = np.broadcast_to(np.asarray(kind, dtype=np.int64), (len(params),))
    lo, hi = local_bounds(kind, params)
    corners = np.stack([np.where(np.array(bits)[None, :] > 0, hi, lo) for bits in np.ndindex(2, 2, 2)], 1)
    out = np.tile(corners, (1, 2 * _RING // 8, 1))
    ang = 2 * np.pi * np.arange(_RING) / _RING
    ring = np.stack([np.cos(ang), np.sin(ang)], 1) / np.cos(np.pi / _RING)           # (16, 2)
    rnd = kind != BOX
    rad = hi[rnd, 0]
    for j, z in enumerate((lo[rnd, 2], hi[rnd, 2])):
        blk = out[rnd, j * _RING:(j + 1) * _RING]
        blk[..., :2] = rad[:, None, None] * ring[None]
        blk[..., 2] = z[:, None]
        out[rnd, j * _RING:(j + 1) * _RING] = blk
    return out


def _pick(areas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each row of ``areas (K, S)`` pick a column with probability proportional to its area."""
    cum = np.cumsum(areas, axis=1)
    u = rng.random(len(areas)) * cum[:, -1]
    return np.minimum((u[:, None] >= cum).sum(1), areas.shape[1] - 1)


def _sample_box(p, rng):
    k = len(p)
    face = _pick(_face_areas(p), rng)
    half = p[:, :3]
    pts = rng.uniform(-1.0, 1.0, (k, 3)) * half
    axis = face // 2
    sign = 1.0 - 2.0 * (face % 2)
    rows = np.arange(k)
    pts[rows, axis] = sign * half[rows, axis]
    nrm = np.zeros((k, 3))
    nrm[rows, axis] = sign
    return pts, nrm


def _sample_frustum(p, rng):
    k = len(p)
    r0, r1, h = p[:, 0], p[:, 1], p[:, 2]
    which = _pick(_frustum_areas(p), rng)
    u = rng.random(k)
    theta = rng.uniform(0.0, 2 * np.pi, k)
    c, s = np.cos(theta), np.sin(theta)
    # lateral: the radius at height t is r0 + (r1 - r0) t and the density in t is proportional to it, so
    # r^2 is uniform between r0^2 and r1^2 (inverse CDF).
    rr = np.sqrt(r0 * r0 + u * (r1 * r1 - r0 * r0))
    dr = r1 - r0
    safe = np.abs(dr) > 1e-12
    t = np.where(safe, (rr - r0) / np.where(safe, dr, 1.0), u)
    lat_n = np.stack([h * c, h * s, -dr], 1)
    lat_n /= np.maximum(np.linalg.norm(lat_n, axis=1, keepdims=True), 1e-12)
    # caps: radius r * sqrt(u) is uniform on a disk
    cap_r = np.where(which == 1, r0, r1) * np.sqrt(u)
    lateral = which == 0
    rad = np.where(lateral, rr, cap_r)
    z = np.where(lateral, h * t, np.where(which == 1, 0.0, h))
    pts = np.stack([rad * c, rad * s, z], 1)
    cap_n = np.zeros((k, 3))
    cap_n[:, 2] = np.where(which == 1, -1.0, 1.0)
    nrm = np.where(lateral[:, None], lat_n, cap_n)
    return pts, nrm


def _sample_zone(p, rng):
    k = len(p)
    r = p[:, 0]
    # Archimedes: the area of a spherical zone is proportional to its height, so z is uniform.
    z = r * (p[:, 1] + rng.random(k) * (p[:, 2] - p[:, 1]))
    rho = np.sqrt(np.maximum(r * r - z * z, 0.0))
    theta = rng.uniform(0.0, 2 * np.pi, k)
    pts = np.stack([rho * np.cos(theta), rho * np.sin(theta), z], 1)
    nrm = pts / np.maximum(r, 1e-12)[:, None]
    return pts, nrm


def _sample_torus(p, rng):
    k = len(p)
    big, small = p[:, 0], p[:, 1]
    phi = p[:, 2] + rng.random(k) * (p[:, 3] - p[:, 2])
    # the area element is r (R + r cos psi) dphi dpsi: rejection-sample psi,
    # accepting with probability (R + r cos psi) / (R + r)
    psi = np.empty(k)
    todo = np.arange(k)
    while len(todo):
        cand = rng.uniform(0.0, 2 * np.pi, len(todo))
        ok = rng.random(len(todo)) * (big[todo] + small[todo]) <= big[todo] + small[todo] * np.cos(cand)
        psi[todo[ok]] = cand[ok]
        todo = todo[~ok]
    ring = big + small * np.cos(psi)
    pts = np.stack([ring * np.cos(phi), ring * np.sin(phi), small * np.sin(psi)], 1)
    nrm = np.stack([np.cos(psi) * np.cos(phi), np.cos(psi) * np.sin(phi), np.sin(psi)], 1)
    return pts, nrm


_SAMPLERS = {BOX: _sample_box, FRUSTUM: _sample_frustum, ZONE: _sample_zone, TORUS: _sample_torus}


def sample_surface(kind, params, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw one uniform surface point per row: row ``i`` gives a point of primitive ``(kind[i], params[i])``.

    Repeating a primitive's row ``k`` times gives ``k`` independent uniform points on its surface (density
    constant per unit area), so calling this with rows repeated by :func:`allocate_points` counts samples a
    whole shape area-weighted.

    Args:
        kind: an int or ``(K,)`` ints (see ``KINDS``).
        params: ``(K, 6)`` parameter rows.
        rng: numpy Generator (the only source of randomness).

    Returns:
        ``(points, normals)``, each ``(K, 3)`` float64 in the primitives' local frames (unit normals).
    """
    params = np.asarray(params, dtype=np.float64).reshape(-1, 6)
    kind = np.broadcast_to(np.asarray(kind, dtype=np.int64), (len(params),))
    pts = np.zeros((len(params), 3))
    nrm = np.zeros((len(params), 3))
    for k in np.unique(kind):
        if int(k) not in _SAMPLERS:
            raise bad_argument("kind", int(k), f"one of 0..{len(KINDS) - 1} ({', '.join(KINDS)})")
        sel = np.flatnonzero(kind == k)
        pts[sel], nrm[sel] = _SAMPLERS[int(k)](params[sel], rng)
    return pts, nrm


def allocate_points(weights, groups, num_points: int) -> np.ndarray:
    """Split ``num_points`` among the items of each group in proportion to their weights (largest remainder).

    Item ``i`` of group ``g`` gets ``floor(num_points * w_i / W_g)`` points, and the points left over go one
    each to the items with the largest fractional parts, so counts differ from the exact proportional share by
    less than one and every group's counts sum to ``num_points``.

    Args:
        weights: ``(P,)`` non-negative weights (areas); every group needs a positive total.
        groups: ``(P,)`` non-negative int group ids (e.g. the cloud of each primitive).
        num_points: points per group.

    Returns:
        ``(P,)`` int64 counts.
    """
    w = np.asarray(weights, dtype=np.float64)
    g = np.asarray(groups, dtype=np.int64)
    ng = int(g.max()) + 1 if len(g) else 0
    total = np.bincount(g, weights=w, minlength=ng)
    if np.any(total[np.unique(g)] <= 0) or np.any(w < 0):
        raise bad_argument("weights", "a group with no positive weight or a negative weight",
                           "non-negative weights with a positive total in every group")
    expect = num_points * w / total[g]
    base = np.floor(expect).astype(np.int64)
    left = num_points - np.bincount(g, weights=base, minlength=ng).astype(np.int64)
    order = np.lexsort((np.arange(len(g)), -(expect - base), g))
    start = np.searchsorted(g[order], np.arange(ng))
    rank = np.empty(len(g), dtype=np.int64)
    rank[order] = np.arange(len(g)) - start[g[order]]
    counts = base + ((rank < left[g]) & (w > 0))
    # floating-point guard (never needed in exact arithmetic): fix a group's total on its largest item
    off = np.bincount(g, weights=counts, minlength=ng).astype(np.int64) - num_points
    for grp in np.flatnonzero(off[:ng] != 0):
        idx = np.flatnonzero(g == grp)
        if len(idx):
            counts[idx[np.argmax(counts[idx])]] -= off[grp]
    return counts
