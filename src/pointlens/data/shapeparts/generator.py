"""The ShapeParts generator: assembling the objects of every class, sampling them, caching datasets (the
package docstring, :mod:`pointlens.data.shapeparts`, describes the benchmark)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from pointlens.data.dataset import PointCloudDataset
from pointlens.data.shapeparts.classes import PAIRS, rot_x, rot_y, rot_z
from pointlens.data.shapeparts.geometry import (
    FRUSTUM,
    ZONE,
    allocate_points,
    bound_points,
    sample_surface,
    surface_area,
)
from pointlens.errors import InvalidArgumentError, bad_argument
from pointlens.utils.io import save_npz
from pointlens.utils.validate import check_choice, check_float, check_int

__all__ = [
    "CLASS_NAMES", "TWINS", "DISCRIMINATIVE_PARTS", "BODY_PARTS", "PART_NAMES", "OPTION_KEYS", "VERSION",
    "generate", "generate_from_options", "twin_of",
]

#: bump when the generator changes its output for the same parameters (invalidates caches)
VERSION = 1

CLASS_NAMES: list[str] = [c for p in PAIRS for c in p.twins]
TWINS: list[tuple[str, str]] = [p.twins for p in PAIRS]
DISCRIMINATIVE_PARTS: dict[str, list[str]] = {c: list(p.discriminative[i]) for p in PAIRS
                                               for i, c in enumerate(p.twins)}
BODY_PARTS: dict[str, list[str]] = {c: list(p.body) for p in PAIRS for c in p.twins}
PART_NAMES: list[str] = list(dict.fromkeys(n for p in PAIRS for n in (*p.body, *p.discriminative[0],
                                                                        *p.discriminative[1])))
_PART_INDEX = {n: i for i, n in enumerate(PART_NAMES)}
_PAIR_OF_CLASS = np.array([i for i, p in enumerate(PAIRS) for _ in p.twins])
_TWIN_OF_CLASS = np.array([j for p in PAIRS for j in range(len(p.twins))])

#: keys accepted by generate_from_options (and the data spec ``shapeparts:key=value,...``)
OPTION_KEYS = ("n", "points", "seed", "noise", "rotate", "scene", "test_fraction", "classes", "cache")

# pose: small tilt about x and y, yaw (uniform when rotate), anisotropy per axis, final shrink
_TILT = np.deg2rad(5.0)
_YAW = np.deg2rad(15.0)
_ANISO = (0.9, 1.1)
_SHRINK = (0.85, 1.0)
# scenes: object scale, anchor radius, share of points for objects / floor / blobs
_SCENE_SCALE = (0.26, 0.34)
_SCENE_ANCHOR = (0.45, 0.52)
_SCENE_SHARES = (0.7, 0.2, 0.1)
MAX_OBJECTS = 3


def twin_of(name: str) -> str:
    """The twin class of ``name`` (e.g. ``twin_of("chair") == "stool"``)."""
    check_choice("name", name, CLASS_NAMES)
    pair = PAIRS[_PAIR_OF_CLASS[CLASS_NAMES.index(name)]]
    return pair.twins[1 - pair.twins.index(name)]


# ----------------------------------------------------------------------------------------------------- tables

def _build_objects(classes: np.ndarray, rotate: bool, rng_shape, rng_pose) -> dict:
    """Primitive table of ``K`` objects with affine maps from local frames to each object's normalised frame.

    Args:
        classes: ``(K,)`` indices into ``CLASS_NAMES``.

    Returns:
        dict of arrays over the ``P`` primitives, sorted by object: ``kind (P,)``, ``part (P,)``,
        ``params (P, 6)``, ``M (P, 3, 3)``, ``b (P, 3)``, ``area (P,)`` (0 for the other twin's parts),
        ``disc (P,)`` bool, ``obj (P,)``.
    """
    k_total = len(classes)
    cols = {n: [] for n in ("kind", "part", "params", "rot", "trans", "enabled", "disc", "obj")}
    pair_of = _PAIR_OF_CLASS[classes]
    for p_idx, pair in enumerate(PAIRS):
        idx = np.flatnonzero(pair_of == p_idx)
        if len(idx) == 0:
            continue
        m = len(idx)
        parts = pair.builder(rng_shape, m, _TWIN_OF_CLASS[classes[idx]])
        s = len(parts.kind)
        body = set(pair.body)
        cols["kind"].append(np.tile(np.asarray(parts.kind), m))
        cols["part"].append(np.tile(np.array([_PART_INDEX[n] for n in parts.part]), m))
        cols["disc"].append(np.tile(np.array([n not in body for n in parts.part]), m))
        cols["params"].append(np.stack(parts.params, 1).reshape(m * s, 6))
        cols["rot"].append(np.stack(parts.rot, 1).reshape(m * s, 3, 3))
        cols["trans"].append(np.stack(parts.trans, 1).reshape(m * s, 3))
        cols["enabled"].append(np.stack(parts.enabled, 1).reshape(m * s))
        cols["obj"].append(np.repeat(idx, s))
    t = {k: np.concatenate(v) for k, v in cols.items()}
    order = np.argsort(t["obj"], kind="stable")
    t = {k: v[order] for k, v in t.items()}
    obj = t["obj"]

    # pose of every object: anisotropy D, then rotation R = Rz(yaw) Ry Rx (small tilts)
    aniso = rng_pose.uniform(*_ANISO, (k_total, 3))
    tilt = rng_pose.uniform(-_TILT, _TILT, (k_total, 2))
    yaw = rng_pose.uniform(0, 2 * np.pi, k_total) if rotate else rng_pose.uniform(-_YAW, _YAW, k_total)
    shrink = rng_pose.uniform(*_SHRINK, k_total)
    rpose = rot_z(yaw) @ rot_y(tilt[:, 1]) @ rot_x(tilt[:, 0])

    # twin-independent normalisation: bounding box of ALL primitives (the other twin's parts included)
    corners = bound_points(t["kind"], t["params"])                                   # (P, 32, 3)
    d = aniso[obj]
    c_obj = d[:, None, :] * (np.einsum("pij,pkj->pki", t["rot"], corners) + t["trans"][:, None, :])
    starts = np.flatnonzero(np.r_[True, obj[1:] != obj[:-1]])
    cmin = np.minimum.reduceat(c_obj.min(1), starts)
    cmax = np.maximum.reduceat(c_obj.max(1), starts)
    centre = (cmin + cmax) / 2                                                        # (K, 3)
    dist = np.linalg.norm(c_obj - centre[obj][:, None, :], axis=2).max(1)
    radius = np.maximum.reduceat(dist, starts)                                        # (K,)

    f = (shrink / radius)[obj]
    rp = rpose[obj]
    t["M"] = f[:, None, None] * (rp @ (d[:, :, None] * t["rot"]))
    t["b"] = f[:, None] * np.einsum("pij,pj->pi", rp, d * t["trans"] - centre[obj])
    t["area"] = surface_area(t["kind"], t["params"]) * t["enabled"]
    return t


def _sample_table(t: dict, group: np.ndarray, weight: np.ndarray, num_points: int, n_groups: int, rng):
    """Sample ``num_points`` per group (cloud) area-weighted over a primitive table.

    Returns:
        ``(points (G, N, 3), normals (G, N, 3), prim (G, N))`` float64, float64, int64, points ordered by
        primitive within each cloud.
    """
    counts = allocate_points(weight, group, num_points)
    prim = np.repeat(np.arange(len(counts)), counts)
    loc, nrm = sample_surface(t["kind"][prim], t["params"][prim], rng)
    m, b = t["M"], t["b"]
    ninv = np.linalg.inv(m).transpose(0, 2, 1)
    pts = np.empty_like(loc)
    nor = np.empty_like(nrm)
    for i in range(3):
        pts[:, i] = b[prim, i]
        nor[:, i] = 0.0
        for j in range(3):
            pts[:, i] += m[prim, i, j] * loc[:, j]
            nor[:, i] += ninv[prim, i, j] * nrm[:, j]
    nor /= np.maximum(np.linalg.norm(nor, axis=1, keepdims=True), 1e-12)
    shape = (n_groups, num_points)
    return pts.reshape(*shape, 3), nor.reshape(*shape, 3), prim.reshape(shape)


# --------------------------------------------------------------------------------------------- generation

def _balanced_labels(n: int, c: int, rng) -> np.ndarray:
    return rng.permutation(np.arange(n) % c)


def _stratified_split(strata: np.ndarray, test_fraction: float, rng) -> np.ndarray:
    split = np.full(len(strata), "train", dtype="<U5")
    for s in np.unique(strata):
        idx = rng.permutation(np.flatnonzero(strata == s))
        k = int(round(len(idx) * test_fraction))
        split[idx[:k]] = "test"
    return split


def _single(n, points, selected, rotate, rngs):
    r_lab, r_shape, r_pose, r_samp = rngs
    labels = _balanced_labels(n, len(selected), r_lab)
    t = _build_objects(selected[labels], rotate, r_shape, r_pose)
    pts, nrm, prim = _sample_table(t, t["obj"], t["area"], points, n, r_samp)
    parts = t["part"][prim]
    gt = t["disc"][prim]
    return dict(points=pts, normals=nrm, parts=parts, gt_mask=gt, labels=labels.astype(np.int64)), labels


def _scene(n, points, selected, rotate, rngs):
    r_lab, r_shape, r_pose, r_samp = rngs
    count = r_lab.integers(1, MAX_OBJECTS + 1, n)
    scene_of = np.repeat(np.arange(n), count)
    slot = np.arange(len(scene_of)) - np.repeat(np.cumsum(count) - count, count)
    cls_local = r_lab.integers(0, len(selected), len(scene_of))
    t = _build_objects(selected[cls_local], rotate, r_shape, r_pose)
    k_obj = len(scene_of)

    # layout: anchors on a circle (one object: near the middle), objects scaled down and put on the floor
    scale = r_pose.uniform(*_SCENE_SCALE, k_obj)
    theta0 = r_pose.uniform(0, 2 * np.pi, n)
    ang = theta0[scene_of] + 2 * np.pi * slot / count[scene_of] + r_pose.uniform(-0.05, 0.05, k_obj)
    near, far = r_pose.uniform(0.0, 0.2, k_obj), r_pose.uniform(*_SCENE_ANCHOR, k_obj)
    rad = np.where(count[scene_of] == 1, near, far)
    shift = np.stack([rad * np.cos(ang), rad * np.sin(ang), np.zeros(k_obj)], 1)
    o = t["obj"]
    t["M"] = scale[o][:, None, None] * t["M"]
    t["b"] = scale[o][:, None] * t["b"] + shift[o]
    t["cloud"] = scene_of[o]
    t["slot"] = slot[o]

    # clutter: a floor disk (frustum with h = 0) and 2-4 spherical blobs near the rim
    nb = r_lab.integers(2, 5, n)
    blob_scene = np.repeat(np.arange(n), nb)
    kb = len(blob_scene)
    br = r_pose.uniform(0.04, 0.08, kb)
    ba = r_pose.uniform(0, 2 * np.pi, kb)
    bd = r_pose.uniform(0.88, 0.95, kb)
    cl_params = np.zeros((n + kb, 6))
    cl_params[:n, :2] = (1.0, 0.0)
    cl_params[n:, :3] = np.stack([br, -np.ones(kb), np.ones(kb)], 1)
    cl_b = np.zeros((n + kb, 3))
    cl_b[n:] = np.stack([bd * np.cos(ba), bd * np.sin(ba), br], 1)
    clutter = dict(kind=np.r_[np.full(n, FRUSTUM), np.full(kb, ZONE)], params=cl_params,
                   M=np.broadcast_to(np.eye(3), (n + kb, 3, 3)), b=cl_b, part=np.full(n + kb, -1),
                   disc=np.zeros(n + kb, bool), cloud=np.r_[np.arange(n), blob_scene],
                   slot=np.full(n + kb, -1), obj=np.full(n + kb, -1))
    clutter["area"] = surface_area(clutter["kind"], clutter["params"])
    group_of = np.r_[np.zeros(len(o), np.int64), np.ones(n), np.full(kb, 2)].astype(np.int64)
    t = {k: np.concatenate([t[k], clutter[k]]) for k in clutter}
    order = np.lexsort((group_of, t["cloud"]))
    t = {k: v[order] for k, v in t.items()}
    group_of = group_of[order]

    # allocation weights: each group (objects / floor / blobs) gets its share, area-weighted inside the group
    gkey = t["cloud"] * 3 + group_of
    gsum = np.bincount(gkey, weights=t["area"], minlength=3 * n)
    weight = np.asarray(_SCENE_SHARES)[group_of] * t["area"] / gsum[gkey]
    pts, nrm, prim = _sample_table(t, t["cloud"], weight, points, n, r_samp)

    # put every object on the floor (its lowest point at z = 0), then centre the scene in the unit sphere
    inst = t["slot"][prim]
    okey = np.where(inst >= 0, np.arange(n)[:, None] * MAX_OBJECTS + inst, -1).ravel()
    flat = pts.reshape(-1, 3)
    minz = np.full(n * MAX_OBJECTS, np.inf)
    sel = okey >= 0
    np.minimum.at(minz, okey[sel], flat[sel, 2])
    flat[sel, 2] -= minz[okey[sel]]
    top = pts[..., 2].max(1)
    pts[..., 2] -= (top / 2)[:, None]
    pts /= np.linalg.norm(pts, axis=2).max(1)[:, None, None]

    instance_class = np.full((n, MAX_OBJECTS), -1, np.int64)
    instance_class[scene_of, slot] = cls_local
    labels = np.zeros((n, len(selected)), np.float32)
    labels[scene_of, cls_local] = 1.0
    out = dict(points=pts, normals=nrm, parts=t["part"][prim], gt_mask=inst >= 0, labels=labels,
               instance=inst.astype(np.int64), instance_class=instance_class)
    return out, instance_class[:, 0]


def _params(n, points, seed, noise, rotate, scene, test_fraction, classes) -> dict:
    n = check_int("n", n, minimum=1)
    points = check_int("points", points, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    noise = check_float("noise", noise, minimum=0.0)
    test_fraction = check_float("test_fraction", test_fraction, minimum=0.0, maximum=1.0)
    if test_fraction >= 1.0:
        raise bad_argument("test_fraction", test_fraction, "a number in [0, 1)")
    flags = {}
    for name, v in (("rotate", rotate), ("scene", scene)):
        if not isinstance(v, (bool, np.bool_)) and v not in (0, 1):
            raise bad_argument(name, v, "a boolean (True/False or 0/1)")
        flags[name] = bool(v)
    if classes is None:
        classes = list(CLASS_NAMES)
    elif isinstance(classes, str):
        classes = [c.strip() for c in classes.replace(",", "+").split("+") if c.strip()]
    else:
        try:
            classes = list(classes)
        except TypeError:
            raise bad_argument("classes", classes, "None, a list of class names or 'a+b+c'") from None
    if not classes:
        raise bad_argument("classes", classes, "at least one of " + ", ".join(CLASS_NAMES))
    for c in classes:
        check_choice("classes", c, CLASS_NAMES)
    if len(set(classes)) != len(classes):
        raise bad_argument("classes", classes, "distinct class names")
    return dict(version=VERSION, n=n, points=points, seed=seed, noise=noise, rotate=flags["rotate"],
                scene=flags["scene"], test_fraction=test_fraction, classes=list(classes))


def _generate(p: dict) -> PointCloudDataset:
    streams = np.random.SeedSequence([p["seed"], 0x5A9E]).spawn(6)
    r_lab, r_shape, r_pose, r_samp, r_noise, r_split = (np.random.default_rng(s) for s in streams)
    selected = np.array([CLASS_NAMES.index(c) for c in p["classes"]])
    maker = _scene if p["scene"] else _single
    out, strata = maker(p["n"], p["points"], selected, p["rotate"], (r_lab, r_shape, r_pose, r_samp))

    # shuffle the points of every cloud (they come ordered by primitive)
    n, npts = p["n"], p["points"]
    perm = r_samp.permuted(np.broadcast_to(np.arange(npts), (n, npts)), axis=1)
    for key in ("points", "normals"):
        out[key] = np.take_along_axis(out[key], perm[..., None], axis=1)
    for key in ("parts", "gt_mask", "instance"):
        if key in out:
            out[key] = np.take_along_axis(out[key], perm, axis=1)
    if p["noise"] > 0:
        out["points"] = out["points"] + r_noise.normal(0.0, p["noise"], out["points"].shape)

    names = p["classes"]
    if p["scene"]:
        ids = np.array([f"scene_{i:04d}" for i in range(n)])
    else:
        ids = np.array([f"{names[c]}_{i:04d}" for i, c in enumerate(out["labels"])])
    meta = {
        "source": "shapeparts", "params": dict(p), "up_axis": "z",
        "normalization": "twin-independent bounding sphere of body + both twins' discriminative parts, "
                         "then a random shrink in [0.85, 1]" if not p["scene"] else
                         "scene centred (floor mid-height) and scaled to the unit sphere",
        "twins": [list(t) for t in TWINS if t[0] in names or t[1] in names],
        "discriminative_parts": {c: DISCRIMINATIVE_PARTS[c] for c in names},
    }
    return PointCloudDataset(
        points=out["points"].astype(np.float32), labels=out["labels"], class_names=list(names),
        normals=out["normals"].astype(np.float32), parts=out["parts"].astype(np.int64),
        part_names=list(PART_NAMES), gt_mask=out["gt_mask"].astype(bool), instance=out.get("instance"),
        instance_class=out.get("instance_class"), names=ids,
        split=_stratified_split(strata, p["test_fraction"], r_split), meta=meta)


# ----------------------------------------------------------------------------------------------------- cache

_ARRAYS = ("points", "labels", "normals", "parts", "gt_mask", "instance", "instance_class", "names", "split")


def _cache_file(cache, p: dict) -> Path:
    path = Path(cache)
    if path.suffix == ".npz":
        return path
    digest = hashlib.sha1(json.dumps(p, sort_keys=True).encode()).hexdigest()[:12]
    return path / f"shapeparts_{digest}.npz"


def _load_cache(path: Path, p: dict) -> PointCloudDataset | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if json.loads(str(z["params_json"])) != json.loads(json.dumps(p)):
                return None
            arrays = {k: (z[k] if k in z.files else None) for k in _ARRAYS}
            class_names = [str(c) for c in z["class_names"]]
            part_names = [str(c) for c in z["part_names"]]
            meta = json.loads(str(z["meta_json"]))
    except Exception:  # an unreadable or foreign file is regenerated and overwritten
        return None
    return PointCloudDataset(class_names=class_names, part_names=part_names, meta=meta, **arrays)


def _save_cache(path: Path, ds: PointCloudDataset, p: dict) -> None:
    arrays = {k: getattr(ds, k) for k in _ARRAYS if getattr(ds, k) is not None}
    save_npz(path, params_json=np.array(json.dumps(p, sort_keys=True)),
             meta_json=np.array(json.dumps(ds.meta)),
             class_names=np.array(ds.class_names), part_names=np.array(ds.part_names), **arrays)


# ------------------------------------------------------------------------------------------------- public API

def generate(n: int = 2000, points: int = 1024, seed: int = 0, noise: float = 0.0, rotate: bool = False,
             scene: bool = False, test_fraction: float = 0.2, classes=None, cache=None) -> PointCloudDataset:
    """Generate a ShapeParts dataset (deterministic: the same arguments give identical arrays).

    Args:
        n: number of clouds ``M`` (classes balanced: ``n // C`` or one more each).
        points: points per cloud ``N``, sampled area-weighted over all parts' surfaces.
        seed: seed of the numpy Generators (separate streams for labels, shapes, poses, sampling, noise and
            split, so e.g. changing ``noise`` does not change the shapes).
        noise: standard deviation of Gaussian noise added to the coordinates after normalisation.
        rotate: random rotation about the up axis (+z) instead of a small yaw (±15°).
        scene: scenes of 1-3 scaled-down objects on a floor disk with clutter blobs (multi-label).
        test_fraction: share of each class (scenes: of each first-object class) put in the ``'test'`` split.
        classes: None (all of ``CLASS_NAMES``), a list of class names, or ``"chair+stool"``; labels index into
            this list in the order given.
        cache: None, a ``.npz`` file, or a folder (file named by a hash of the parameters). When the file
            holds the same parameters it is loaded instead of regenerating; otherwise it is (re)written
            atomically.

    Returns:
        :class:`PointCloudDataset` with ``points (M, N, 3)`` float32 (in the unit sphere),
        ``normals (M, N, 3)``, ``labels (M,)`` int64 (scenes: ``(M, C)`` float32 multi-hot), ``class_names``,
        ``parts (M, N)`` int64 into ``part_names`` (= ``PART_NAMES``; -1 = clutter), ``gt_mask (M, N)`` bool
        (single objects: points on the class's discriminative parts; scenes: points of any object), in scenes
        ``instance (M, N)`` int64 (object slot, -1 clutter) and ``instance_class (M, 3)`` int64 (class per
        slot, -1 unused), ``names (M,)`` (``"chair_0007"``, ``"scene_0007"``), ``split (M,)``
        ``'train'``/``'test'``, and ``meta`` (parameters, up axis, normalisation, twins, discriminative
        parts).

    Raises:
        InvalidArgumentError: a parameter out of range or an unknown class name.
    """
    p = _params(n, points, seed, noise, rotate, scene, test_fraction, classes)
    path = None if cache is None else _cache_file(cache, p)
    if path is not None:
        ds = _load_cache(path, p)
        if ds is not None:
            return ds
    ds = _generate(p)
    if path is not None:
        _save_cache(path, ds, p)
    return ds


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def generate_from_options(options: dict[str, str]) -> PointCloudDataset:
    """Generate from the string options of a data spec, e.g. ``shapeparts:n=500,points=512,rotate=1``.

    Args:
        options: ``{key: value}`` strings; keys among ``OPTION_KEYS`` (``n``, ``points``, ``seed``: integers;
            ``noise``, ``test_fraction``: numbers; ``rotate``, ``scene``: 1/0/true/false/yes/no/on/off;
            ``classes``: names joined by ``+``; ``cache``: a path). Missing keys take :func:`generate`'s
            defaults.

    Returns:
        The :class:`PointCloudDataset` of :func:`generate`.

    Raises:
        InvalidArgumentError: an unknown key or a value that does not parse, naming the key, the value
            received and what is accepted.
    """
    if not isinstance(options, dict):
        raise bad_argument("options", type(options).__name__, "a dict of string options")
    kwargs = {}
    for key, raw in options.items():
        if key not in OPTION_KEYS:
            raise bad_argument("shapeparts option key", key, "one of " + ", ".join(OPTION_KEYS))
        value = str(raw).strip()
        what = f"shapeparts option '{key}'"
        if key in ("n", "points", "seed"):
            try:
                kwargs[key] = int(value)
            except ValueError:
                raise bad_argument(what, value, "an integer") from None
        elif key in ("noise", "test_fraction"):
            try:
                kwargs[key] = float(value)
            except ValueError:
                raise bad_argument(what, value, "a number") from None
        elif key in ("rotate", "scene"):
            if value.lower() not in _TRUE + _FALSE:
                raise bad_argument(what, value, "one of " + ", ".join(_TRUE + _FALSE))
            kwargs[key] = value.lower() in _TRUE
        elif key == "classes":
            names = [c for c in value.split("+")]
            for c in names:
                if c not in CLASS_NAMES:
                    raise bad_argument(what, c, "class names joined by '+', from " + ", ".join(CLASS_NAMES))
            kwargs[key] = names
        else:
            if not value:
                raise bad_argument(what, value, "a file or folder path")
            kwargs[key] = value
    try:
        return generate(**kwargs)
    except InvalidArgumentError as e:
        raise InvalidArgumentError(f"shapeparts option {e}") from None
