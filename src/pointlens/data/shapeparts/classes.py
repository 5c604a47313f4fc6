"""The ShapeParts object classes: twin pairs that share a body and differ only by discriminative parts.

Each pair has ONE builder that draws the body's proportions for every cloud of the pair from the same
distribution, whichever twin the cloud belongs to, and also draws BOTH twins' discriminative parts; the parts
of the other twin are built but disabled (they get no points). Objects stand on ``z = 0`` with ``+z`` up.

A builder is ``f(rng, m, twin) -> _Parts`` where ``twin`` is a ``(m,)`` array of 0 (first twin) / 1 (second).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pointlens.data.shapeparts.geometry import BOX, BOX_ALL, FRUSTUM, TORUS, ZONE


def rot_x(a) -> np.ndarray:
    """``(m, 3, 3)`` rotations about +x by angles ``a (m,)`` (radians, right-handed)."""
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def rot_y(a) -> np.ndarray:
    """``(m, 3, 3)`` rotations about +y by angles ``a (m,)``."""
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def rot_z(a) -> np.ndarray:
    """``(m, 3, 3)`` rotations about +z by angles ``a (m,)``."""
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


@dataclass
class _Parts:
    """Primitives of ``m`` objects of one pair, collected slot by slot (every object has every slot)."""

    m: int
    twin: np.ndarray
    kind: list = field(default_factory=list)
    part: list = field(default_factory=list)
    params: list = field(default_factory=list)
    rot: list = field(default_factory=list)
    trans: list = field(default_factory=list)
    enabled: list = field(default_factory=list)

    def add(self, part: str, kind: int, params, trans=(0.0, 0.0, 0.0), rot=None, only=None):
        """Add one primitive slot: ``params`` 6 scalars/(m,) arrays, ``trans`` 3 of them, ``rot`` (m, 3, 3),
        ``only`` = None (body, always present) or the twin (0/1) whose discriminative part it is."""
        m = self.m
        p = np.zeros((m, 6))
        for i, v in enumerate(params):
            p[:, i] = v
        t = np.zeros((m, 3))
        for i, v in enumerate(trans):
            t[:, i] = v
        self.kind.append(kind)
        self.part.append(part)
        self.params.append(p)
        self.rot.append(np.broadcast_to(np.eye(3), (m, 3, 3)) if rot is None else np.asarray(rot, float))
        self.trans.append(t)
        self.enabled.append(np.ones(m, bool) if only is None else self.twin == only)


def _u(rng, m, lo, hi):
    return rng.uniform(lo, hi, m)


def _chair_stool(rng, m, twin):
    b = _Parts(m, twin)
    sw = _u(rng, m, 0.8, 1.05)
    sd = sw * _u(rng, m, 0.9, 1.1)
    st = _u(rng, m, 0.06, 0.1)
    lh = _u(rng, m, 0.75, 1.0)
    lr = _u(rng, m, 0.03, 0.045)
    inset = _u(rng, m, 0.06, 0.1)
    b.add("seat", BOX, (sw / 2, sd / 2, st / 2, BOX_ALL), (0, 0, lh + st / 2))
    lx, ly = sw / 2 - inset, sd / 2 - inset
    for sx in (-1, 1):
        for sy in (-1, 1):
            b.add("leg", FRUSTUM, (lr, lr, lh, 1, 0), (sx * lx, sy * ly, 0))
    # chair: a backrest leaning back from the rear edge of the seat
    bh = _u(rng, m, 0.35, 0.5)
    bt = _u(rng, m, 0.04, 0.06)
    rb = rot_x(-_u(rng, m, 0.05, 0.2))
    up = rb @ np.array([0.0, 0.0, 1.0])
    b.add("backrest", BOX, (sw / 2, bt / 2, bh / 2, BOX_ALL),
          (up[:, 0] * bh / 2, sd / 2 - bt / 2 + up[:, 1] * bh / 2, lh + st + up[:, 2] * bh / 2), rb, only=0)
    # stool: a foot ring through the legs
    ring = np.sqrt(lx * ly) * np.sqrt(2)
    tube = _u(rng, m, 0.035, 0.05)
    b.add("foot_ring", TORUS, (ring, tube, 0, 2 * np.pi), (0, 0, lh * _u(rng, m, 0.25, 0.4)), only=1)
    return b


def _mug_cup(rng, m, twin):
    b = _Parts(m, twin)
    vr = _u(rng, m, 0.35, 0.45)
    vr1 = vr * _u(rng, m, 1.0, 1.12)
    vh = _u(rng, m, 0.8, 1.1)
    b.add("vessel", FRUSTUM, (vr, vr1, vh, 1, 0))
    # mug: a handle, an arc of a torus standing in the xz plane on the +x side
    hz = vh * _u(rng, m, 0.45, 0.55)
    rmid = vr + (vr1 - vr) * hz / vh
    b.add("handle", TORUS, (_u(rng, m, 0.24, 0.32), _u(rng, m, 0.075, 0.095), -0.6 * np.pi, 0.6 * np.pi),
          (rmid, 0, hz), rot_x(np.full(m, np.pi / 2)), only=0)
    # cup: a saucer, a shallow open cone under the cup
    b.add("saucer", FRUSTUM, (vr * 0.9, vr * _u(rng, m, 1.45, 1.7), _u(rng, m, 0.05, 0.09), 0, 0),
          (0, 0, -0.02), only=1)
    return b


def _table_desk(rng, m, twin):
    b = _Parts(m, twin)
    tw = _u(rng, m, 1.6, 2.0)
    td = _u(rng, m, 0.8, 1.0)
    tt = _u(rng, m, 0.05, 0.08)
    lh = _u(rng, m, 0.85, 1.05)
    lw = _u(rng, m, 0.035, 0.05)
    inset = _u(rng, m, 0.05, 0.1)
    b.add("tabletop", BOX, (tw / 2, td / 2, tt / 2, BOX_ALL), (0, 0, lh + tt / 2))
    lx, ly = tw / 2 - inset, td / 2 - inset
    for sx in (-1, 1):
        for sy in (-1, 1):
            b.add("leg", BOX, (lw, lw, lh / 2, BOX_ALL), (sx * lx, sy * ly, lh / 2))
    # table: an H-shaped stretcher between the legs near the floor
    sz = lh * _u(rng, m, 0.15, 0.3)
    bw = _u(rng, m, 0.035, 0.045)
    for sx in (-1, 1):
        b.add("stretcher", BOX, (bw, ly, bw, BOX_ALL), (sx * lx, 0, sz), only=0)
    b.add("stretcher", BOX, (lx, bw, bw, BOX_ALL), (0, 0, sz), only=0)
    # desk: a drawer unit hanging under the top on one side
    dw = tw * _u(rng, m, 0.18, 0.24)
    dh = lh * _u(rng, m, 0.3, 0.42)
    side = np.where(rng.random(m) < 0.5, -1.0, 1.0)
    b.add("drawer_unit", BOX, (dw / 2, ly, dh / 2, BOX_ALL), (side * (lx - lw - dw / 2), 0, lh - dh / 2),
          only=1)
    return b


def _lamp_coatrack(rng, m, twin):
    b = _Parts(m, twin)
    br = _u(rng, m, 0.25, 0.32)
    bh = _u(rng, m, 0.04, 0.07)
    pr = _u(rng, m, 0.022, 0.032)
    ph = _u(rng, m, 1.4, 1.8)
    top = bh + ph
    b.add("base", FRUSTUM, (br, br, bh, 1, 1))
    b.add("pole", FRUSTUM, (pr, pr, ph, 0, 1), (0, 0, bh))
    # lamp: an open conical shade around the top of the pole
    r0 = _u(rng, m, 0.19, 0.24)
    sh = _u(rng, m, 0.2, 0.26)
    b.add("shade", FRUSTUM, (r0, r0 * _u(rng, m, 0.5, 0.65), sh, 0, 0), (0, 0, top - 0.6 * sh), only=0)
    # coat rack: four hooks rising outwards near the top, and a knob on the pole
    hl = _u(rng, m, 0.18, 0.25)
    hr = _u(rng, m, 0.022, 0.03)
    elev = _u(rng, m, 0.4, 0.6)
    az0 = _u(rng, m, 0.0, np.pi / 2)
    hz = top - _u(rng, m, 0.05, 0.12)
    for k in range(4):
        b.add("hooks", FRUSTUM, (hr, hr, hl, 0, 1), (0, 0, hz),
              rot_z(az0 + k * np.pi / 2) @ rot_y(np.pi / 2 - elev), only=1)
    b.add("hooks", ZONE, (_u(rng, m, 0.045, 0.06), -1, 1), (0, 0, top), only=1)
    return b


def _car_tank(rng, m, twin):
    b = _Parts(m, twin)
    L = _u(rng, m, 1.6, 2.0)
    W = _u(rng, m, 0.8, 0.95)
    H = _u(rng, m, 0.3, 0.4)
    wr = _u(rng, m, 0.18, 0.24)
    ww = _u(rng, m, 0.1, 0.14)
    clear = wr * _u(rng, m, 0.5, 0.8)
    wb = _u(rng, m, 0.3, 0.4)
    b.add("hull", BOX, (L / 2, W / 2, H / 2, BOX_ALL), (0, 0, clear + H / 2))
    axle = rot_x(np.full(m, -np.pi / 2))  # local +z -> +y
    for sx in (-1, 1):
        for y0 in (W / 2, -W / 2 - ww):
            b.add("wheel", FRUSTUM, (wr, wr, ww, 1, 1), (sx * (L / 2 - wb), y0, wr), axle)
    roof = clear + H
    # car: a cabin on the roof
    ch = _u(rng, m, 0.28, 0.38)
    b.add("cabin", BOX, (L * _u(rng, m, 0.4, 0.55) / 2, W * _u(rng, m, 0.8, 0.9) / 2, ch / 2, BOX_ALL - 32),
          (L * _u(rng, m, -0.1, 0.05), 0, roof + ch / 2), only=0)
    # tank: a turret with a gun barrel pointing forward (+x)
    tr = _u(rng, m, 0.3, 0.38)
    th = _u(rng, m, 0.22, 0.3)
    tx = L * _u(rng, m, -0.1, 0.05)
    b.add("turret", FRUSTUM, (tr, tr * _u(rng, m, 0.75, 0.9), th, 0, 1), (tx, 0, roof), only=1)
    gr = _u(rng, m, 0.05, 0.065)
    b.add("barrel", FRUSTUM, (gr, gr, _u(rng, m, 0.8, 1.0), 0, 1), (tx + 0.5 * tr, 0, roof + th / 2),
          rot_y(np.full(m, np.pi / 2)), only=1)
    return b


def _bookshelf_cabinet(rng, m, twin):
    b = _Parts(m, twin)
    W = _u(rng, m, 0.8, 1.0)
    D = _u(rng, m, 0.32, 0.42)
    H = _u(rng, m, 1.5, 1.9)
    pt = _u(rng, m, 0.02, 0.035)
    for sx in (-1, 1):
        b.add("side_panel", BOX, (pt, D / 2, H / 2, BOX_ALL), (sx * (W / 2 - pt), 0, H / 2))
    b.add("bottom_panel", BOX, (W / 2 - 2 * pt, D / 2, pt, BOX_ALL), (0, 0, pt))
    b.add("top_panel", BOX, (W / 2 - 2 * pt, D / 2, pt, BOX_ALL), (0, 0, H - pt))
    b.add("back_panel", BOX, (W / 2 - 2 * pt, pt, H / 2 - 2 * pt, BOX_ALL), (0, D / 2 - pt, H / 2))
    # bookshelf: three shelves inside
    for k in (1, 2, 3):
        b.add("shelf", BOX, (W / 2 - 2 * pt, D / 2 - 2 * pt, pt, BOX_ALL),
              (0, -pt, H * (k / 4 + _u(rng, m, -0.03, 0.03))), only=0)
    # cabinet: two doors closing the front (outer faces) with a knob each
    kr = _u(rng, m, 0.02, 0.03)
    kz = H * _u(rng, m, 0.45, 0.55)
    kx = _u(rng, m, 0.06, 0.1)
    for sx in (-1, 1):
        b.add("door", BOX, (W / 4, pt, H / 2, 8), (sx * W / 4, -D / 2 - pt, H / 2), only=1)
        b.add("knob", ZONE, (kr, -1, 1), (sx * kx, -D / 2 - 2 * pt - kr, kz), only=1)
    return b


def _airplane_missile(rng, m, twin):
    b = _Parts(m, twin)
    FL = _u(rng, m, 1.6, 2.0)
    fr = _u(rng, m, 0.12, 0.16)
    along_x = rot_y(np.full(m, np.pi / 2))  # local +z -> +x
    b.add("fuselage", FRUSTUM, (fr, fr, FL, 1, 0), (-FL / 2, 0, 0), along_x)
    b.add("nose", FRUSTUM, (fr, 0, _u(rng, m, 0.25, 0.35), 0, 0), (FL / 2, 0, 0), along_x)
    # airplane: two wings from the sides of the fuselage
    span = _u(rng, m, 0.5, 0.65)
    chord = _u(rng, m, 0.18, 0.25)
    wx = FL * _u(rng, m, -0.05, 0.1)
    wt = _u(rng, m, 0.012, 0.02)
    for sy in (-1, 1):
        b.add("wing", BOX, (chord / 2, span / 2, wt, BOX_ALL), (wx, sy * (0.8 * fr + span / 2), 0), only=0)
    # missile: four tail fins in an X
    fl = _u(rng, m, 0.22, 0.3)
    fs = _u(rng, m, 0.15, 0.22)
    fx = -FL / 2 + fl / 2 + _u(rng, m, 0.0, 0.05)
    for k in range(4):
        r = rot_x(np.full(m, k * np.pi / 2 + np.pi / 4))
        off = r @ np.array([0.0, 0.0, 1.0]) * (0.8 * fr + fs / 2)[:, None]
        b.add("fin", BOX, (fl / 2, wt, fs / 2, BOX_ALL), (fx + off[:, 0], off[:, 1], off[:, 2]), r, only=1)
    return b


@dataclass(frozen=True)
class Pair:
    """A twin pair: two classes sharing the body built by ``builder``."""

    twins: tuple[str, str]
    body: tuple[str, ...]
    discriminative: tuple[tuple[str, ...], tuple[str, ...]]
    builder: object
    description: str


PAIRS: tuple[Pair, ...] = (
    Pair(("chair", "stool"), ("seat", "leg"), (("backrest",), ("foot_ring",)), _chair_stool,
         "square seat on four round legs; chair adds a backrest, stool a foot ring"),
    Pair(("mug", "cup"), ("vessel",), (("handle",), ("saucer",)), _mug_cup,
         "open cylindrical vessel; mug adds a handle, cup a saucer"),
    Pair(("table", "desk"), ("tabletop", "leg"), (("stretcher",), ("drawer_unit",)), _table_desk,
         "wide top on four square legs; table adds an H-stretcher, desk a drawer unit"),
    Pair(("lamp", "coat_rack"), ("base", "pole"), (("shade",), ("hooks",)), _lamp_coatrack,
         "round base with a tall pole; lamp adds a shade, coat rack four hooks and a knob"),
    Pair(("car", "tank"), ("hull", "wheel"), (("cabin",), ("turret", "barrel")), _car_tank,
         "box hull on four wheels; car adds a cabin, tank a turret with a barrel"),
    Pair(("bookshelf", "cabinet"), ("side_panel", "bottom_panel", "top_panel", "back_panel"),
         (("shelf",), ("door", "knob")), _bookshelf_cabinet,
         "open upright case; bookshelf adds three shelves, cabinet two doors with knobs"),
    Pair(("airplane", "missile"), ("fuselage", "nose"), (("wing",), ("fin",)), _airplane_missile,
         "cylindrical fuselage with a nose cone; airplane adds wings, missile four tail fins"),
)
