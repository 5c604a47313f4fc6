"""ShapeParts: determinism, shapes, area-weighted sampling, ground truth, twins, scenes, cache, options."""

from __future__ import annotations

import numpy as np
import pytest

from pointlens.data.dataset import PointCloudDataset
from pointlens.data.shapeparts import generator as sp
from pointlens.data.shapeparts import geometry as geo
from pointlens.errors import InvalidArgumentError

C = len(sp.CLASS_NAMES)


@pytest.fixture(scope="module")
def objects() -> PointCloudDataset:
    return sp.generate(n=4 * C, points=512, seed=5)


@pytest.fixture(scope="module")
def scenes() -> PointCloudDataset:
    return sp.generate(n=40, points=1024, seed=2, scene=True)


def _same(a: PointCloudDataset, b: PointCloudDataset) -> bool:
    keys = ("points", "labels", "normals", "parts", "gt_mask", "instance", "instance_class", "names", "split")
    for k in keys:
        x, y = getattr(a, k), getattr(b, k)
        if (x is None) != (y is None) or (x is not None and not np.array_equal(x, y)):
            return False
    return a.class_names == b.class_names and a.part_names == b.part_names


# --------------------------------------------------------------------------------------------- catalogue

def test_catalogue_has_twin_pairs_with_disjoint_discriminative_parts():
    assert len(sp.TWINS) >= 6 and C >= 12 and len(set(sp.CLASS_NAMES)) == C
    for a, b in sp.TWINS:
        assert sp.twin_of(a) == b and sp.twin_of(b) == a
        assert sp.BODY_PARTS[a] == sp.BODY_PARTS[b]
        da, db = set(sp.DISCRIMINATIVE_PARTS[a]), set(sp.DISCRIMINATIVE_PARTS[b])
        assert da and db and not da & db and not (da | db) & set(sp.BODY_PARTS[a])
    # a discriminative part belongs to exactly one class
    owners = [p for c in sp.CLASS_NAMES for p in sp.DISCRIMINATIVE_PARTS[c]]
    assert len(owners) == len(set(owners))
    assert set(owners) | {p for c in sp.CLASS_NAMES for p in sp.BODY_PARTS[c]} == set(sp.PART_NAMES)


# ------------------------------------------------------------------------------------------- determinism

def test_same_seed_identical_different_seed_different():
    a = sp.generate(n=30, points=128, seed=11, noise=0.01)
    b = sp.generate(n=30, points=128, seed=11, noise=0.01)
    c = sp.generate(n=30, points=128, seed=12, noise=0.01)
    assert _same(a, b)
    assert not np.array_equal(a.points, c.points)
    s1 = sp.generate(n=6, points=128, seed=1, scene=True)
    s2 = sp.generate(n=6, points=128, seed=1, scene=True)
    assert _same(s1, s2)


def test_noise_and_rotation_use_their_own_streams():
    base = sp.generate(n=2 * C, points=256, seed=4)
    noisy = sp.generate(n=2 * C, points=256, seed=4, noise=0.02)
    assert np.array_equal(base.parts, noisy.parts) and np.array_equal(base.labels, noisy.labels)
    diff = noisy.points - base.points
    assert abs(diff.std() - 0.02) < 0.001 and abs(diff.mean()) < 0.001
    # rotation about the up axis (z) leaves every z coordinate and every distance to the axis unchanged
    rot = sp.generate(n=2 * C, points=256, seed=4, rotate=True)
    np.testing.assert_allclose(rot.points[..., 2], base.points[..., 2], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(rot.points[..., :2], axis=-1),
                               np.linalg.norm(base.points[..., :2], axis=-1), atol=1e-6)
    assert np.abs(rot.points[..., :2] - base.points[..., :2]).max() > 0.3


# ---------------------------------------------------------------------------------------- shapes, dtypes

def test_shapes_dtypes_names_and_every_class(objects):
    ds = objects
    m, n = 4 * C, 512
    assert ds.points.shape == (m, n, 3) and ds.points.dtype == np.float32
    assert ds.normals.shape == (m, n, 3) and ds.normals.dtype == np.float32
    assert ds.labels.shape == (m,) and ds.labels.dtype == np.int64
    assert ds.parts.shape == (m, n) and ds.parts.dtype == np.int64
    assert ds.gt_mask.shape == (m, n) and ds.gt_mask.dtype == bool
    assert ds.class_names == sp.CLASS_NAMES and ds.part_names == sp.PART_NAMES
    assert np.array_equal(np.bincount(ds.labels, minlength=C), np.full(C, 4))  # balanced, every class
    assert all(name == f"{ds.class_names[c]}_{i:04d}" for i, (name, c) in enumerate(zip(ds.names, ds.labels)))
    assert ds.parts.min() >= 0 and ds.parts.max() < len(ds.part_names)
    assert ds.meta["params"]["seed"] == 5 and ds.meta["up_axis"] == "z"
    np.testing.assert_allclose(np.linalg.norm(ds.normals, axis=-1), 1.0, atol=1e-5)


def test_points_finite_centred_inside_unit_sphere(objects):
    r = np.linalg.norm(objects.points, axis=-1)
    assert np.isfinite(objects.points).all()
    assert r.max() <= 1.0 + 1e-5          # the bound of the twin-independent normalisation
    assert r.max(1).min() > 0.6           # and the objects fill a good part of it
    lo, hi = objects.points.min(1), objects.points.max(1)
    assert np.abs((lo + hi) / 2).max() < 0.25


def test_stratified_split():
    ds = sp.generate(n=10 * C, points=64, seed=0, test_fraction=0.3)
    for c in range(C):
        assert (ds.split[ds.labels == c] == "test").sum() == 3
    assert set(np.unique(ds.split)) == {"train", "test"}
    assert (sp.generate(n=C, points=64, test_fraction=0.0).split == "train").all()


def test_class_subset_in_given_order():
    ds = sp.generate(n=20, points=64, classes="stool+chair")
    assert ds.class_names == ["stool", "chair"] and set(ds.labels) == {0, 1}
    stool_parts = {sp.PART_NAMES[p] for p in np.unique(ds.parts[ds.labels == 0])}
    assert stool_parts == {"seat", "leg", "foot_ring"}


# -------------------------------------------------------------------------------- ground truth and twins

def test_gt_mask_is_the_union_of_the_discriminative_parts(objects):
    ds = objects
    for i, c in enumerate(ds.labels):
        disc = [sp.PART_NAMES.index(p) for p in sp.DISCRIMINATIVE_PARTS[ds.class_names[c]]]
        assert np.array_equal(ds.gt_mask[i], np.isin(ds.parts[i], disc))
    share = ds.gt_mask.mean(1)
    assert share.min() > 0.08 and share.max() < 0.35          # a reasonable share of every cloud


def test_twins_share_body_parts_and_not_each_others_evidence(objects):
    ds = objects
    present = {c: {ds.part_names[p] for p in np.unique(ds.parts[ds.labels == i])}
               for i, c in enumerate(ds.class_names)}
    for a, b in sp.TWINS:
        body = set(sp.BODY_PARTS[a])
        assert present[a] - set(sp.DISCRIMINATIVE_PARTS[a]) == body
        assert present[b] - set(sp.DISCRIMINATIVE_PARTS[b]) == body
        assert not present[a] & set(sp.DISCRIMINATIVE_PARTS[b])
        assert not present[b] & set(sp.DISCRIMINATIVE_PARTS[a])


@pytest.mark.parametrize("pair", range(len(sp.TWINS)))
def test_twin_bodies_and_normalisation_do_not_depend_on_the_twin(pair):
    """Same seed, all clouds twin A vs all twin B: identical body surfaces, poses and normalisation."""
    a, b = (np.full(5, sp.CLASS_NAMES.index(c)) for c in sp.TWINS[pair])

    def build(classes):
        return sp._build_objects(classes, False, np.random.default_rng(1), np.random.default_rng(2))

    ta, tb = build(a), build(b)
    for key in ("kind", "part", "params", "M", "b", "disc", "obj"):
        np.testing.assert_array_equal(ta[key], tb[key])
    body = ~ta["disc"]
    np.testing.assert_array_equal(ta["area"][body], tb["area"][body])
    # the two twins' parts are switched on/off
    assert ((ta["area"][~body] > 0) != (tb["area"][~body] > 0)).all()


# -------------------------------------------------------------------------------------- area weighting

def test_allocate_points_is_proportional_to_area():
    w = np.array([1.0, 2.0, 4.0, 0.0, 3.0, 3.0, 0.5])
    g = np.array([0, 0, 0, 0, 1, 1, 1])
    counts = geo.allocate_points(w, g, 1000)
    assert np.bincount(g, weights=counts).tolist() == [1000, 1000]
    expect = 1000 * w / np.bincount(g, weights=w)[g]
    assert np.abs(counts - expect).max() < 1.0
    assert counts[3] == 0 and abs(counts[1] - 2 * counts[0]) <= 2 and abs(counts[2] - 2 * counts[1]) <= 2
    with pytest.raises(InvalidArgumentError, match="weights"):
        geo.allocate_points([0.0, 0.0], [0, 0], 10)


def test_surface_areas_match_closed_forms():
    r, h, big = 0.3, 1.7, 0.9
    rows = np.array([
        [0.5, 1.0, 1.5, geo.BOX_ALL, 0, 0],            # box 1 x 2 x 3
        [0.5, 1.0, 1.5, 16 + 32, 0, 0],                # its top and bottom only
        [r, r, h, 1, 1, 0],                            # closed cylinder
        [r, 0.0, h, 1, 0, 0],                          # cone with its base
        [0.0, r, 0.0, 0, 0, 0],                        # flat disk (annulus with r0 = 0)
        [r, -1, 1, 0, 0, 0],                           # sphere
        [r, 0.0, 1.0, 0, 0, 0],                        # hemisphere
        [big, r, 0.0, 2 * np.pi, 0, 0],                # torus
        [big, r, 0.0, np.pi, 0, 0],                    # half torus
    ])
    kinds = [geo.BOX, geo.BOX, geo.FRUSTUM, geo.FRUSTUM, geo.FRUSTUM, geo.ZONE, geo.ZONE, geo.TORUS,
             geo.TORUS]
    expect = [2 * (1 * 2 + 2 * 3 + 1 * 3), 2 * 1 * 2, 2 * np.pi * r * h + 2 * np.pi * r * r,
              np.pi * r * np.hypot(r, h) + np.pi * r * r, np.pi * r * r, 4 * np.pi * r * r, 2 * np.pi * r * r,
              4 * np.pi ** 2 * big * r, 2 * np.pi ** 2 * big * r]
    np.testing.assert_allclose(geo.surface_area(kinds, rows), expect, rtol=1e-12)


def _binomial_ok(hits: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    return abs(hits - n * p) <= sigmas * np.sqrt(n * p * (1 - p))


def test_samples_lie_on_the_surfaces_with_uniform_density():
    rng = np.random.default_rng(0)
    n = 20000
    # box with faces of areas 2 (x faces), 1... : face shares proportional to area, points on the faces
    row = np.array([[0.5, 1.0, 0.25, geo.BOX_ALL - 2, 0, 0]])  # -x face missing
    p, nrm = geo.sample_surface(geo.BOX, np.repeat(row, n, 0), rng)
    faces = np.abs(p) >= np.array([0.5, 1.0, 0.25]) - 1e-12
    assert (faces.sum(1) >= 1).all() and (p[:, 0] > -0.5 + 1e-9).all()
    areas = np.array([4 * 1.0 * 0.25, 4 * 0.5 * 0.25, 4 * 0.5 * 1.0])   # x, y, z faces
    share = np.array([areas[0], 2 * areas[1], 2 * areas[2]]) / (areas[0] + 2 * areas[1] + 2 * areas[2])
    on = np.abs(nrm).argmax(1)
    for ax in range(3):
        assert _binomial_ok(int((on == ax).sum()), n, share[ax])
    # frustum: the lower half of the lateral surface has area share (r0 + rm) / (2 (r0 + r1))
    r0, r1, h = 0.6, 0.2, 1.0
    p, nrm = geo.sample_surface(geo.FRUSTUM, np.repeat([[r0, r1, h, 0, 0, 0]], n, 0), rng)
    rad = np.linalg.norm(p[:, :2], axis=1)
    np.testing.assert_allclose(rad, r0 + (r1 - r0) * p[:, 2] / h, atol=1e-9)
    assert _binomial_ok(int((p[:, 2] < h / 2).sum()), n, (r0 + (r0 + r1) / 2) / (2 * (r0 + r1)))
    np.testing.assert_allclose(np.einsum("ij,ij->i", nrm, np.c_[p[:, :2], np.zeros(n)]) > 0, True)
    # sphere zone: Archimedes, the height is uniform
    p, nrm = geo.sample_surface(geo.ZONE, np.repeat([[0.7, -0.5, 1.0, 0, 0, 0]], n, 0), rng)
    np.testing.assert_allclose(np.linalg.norm(p, axis=1), 0.7, atol=1e-9)
    np.testing.assert_allclose(nrm, p / 0.7, atol=1e-9)
    assert p[:, 2].min() >= -0.35 - 1e-9 and _binomial_ok(int((p[:, 2] < 0).sum()), n, 0.5 / 1.5)
    # torus: the outer half (distance from the axis > R) has area share 1/2 + r / (pi R)
    big, small = 0.8, 0.3
    p, nrm = geo.sample_surface(geo.TORUS, np.repeat([[big, small, 0, 2 * np.pi, 0, 0]], n, 0), rng)
    rho = np.linalg.norm(p[:, :2], axis=1)
    np.testing.assert_allclose((rho - big) ** 2 + p[:, 2] ** 2, small ** 2, atol=1e-9)
    assert _binomial_ok(int((rho > big).sum()), n, 0.5 + small / (np.pi * big))


def test_part_points_follow_area_in_generated_clouds():
    """The four identical legs of a chair get the same number of points (largest remainder: within 1)."""
    ds = sp.generate(n=6, points=2048, seed=9, classes=["chair"])
    leg = sp.PART_NAMES.index("leg")
    for i in range(len(ds)):
        p = ds.points[i][ds.parts[i] == leg]
        seat = ds.points[i][ds.parts[i] == sp.PART_NAMES.index("seat")]
        q = p[:, :2] - seat[:, :2].mean(0)        # legs sit in the four quadrants around the seat's centre
        quad = (q[:, 0] > 0) * 2 + (q[:, 1] > 0)
        counts = np.bincount(quad, minlength=4)
        assert counts.max() - counts.min() <= 1, counts


# ------------------------------------------------------------------------------------------------ scenes

def test_scene_labels_instances_and_ground_truth(scenes):
    ds = scenes
    m, n = 40, 1024
    assert ds.labels.shape == (m, C) and ds.labels.dtype == np.float32 and ds.multilabel
    assert ds.instance.shape == (m, n) and ds.instance_class.shape == (m, 3)
    assert np.array_equal(ds.gt_mask, ds.instance >= 0)
    assert np.array_equal(ds.parts < 0, ds.instance < 0)
    nobj = (ds.instance_class >= 0).sum(1)
    assert set(nobj) == {1, 2, 3}
    for i in range(m):
        k = nobj[i]
        assert (ds.instance_class[i, :k] >= 0).all() and (ds.instance_class[i, k:] == -1).all()
        hot = np.zeros(C, np.float32)
        hot[ds.instance_class[i, :k]] = 1
        assert np.array_equal(ds.labels[i], hot)
        assert set(np.unique(ds.instance[i])) == set(range(-1, k))
    r = np.linalg.norm(ds.points, axis=-1).max(1)
    np.testing.assert_allclose(r, 1.0, atol=1e-5)
    assert all(name == f"scene_{i:04d}" for i, name in enumerate(ds.names))


def test_scene_objects_stand_on_the_floor(scenes):
    ds = scenes
    for i in range(len(ds)):
        clutter_z = ds.points[i][ds.instance[i] < 0, 2]
        floor_z = clutter_z.min()                       # blobs rest on the floor disk, nothing is below it
        assert (np.abs(clutter_z - floor_z) < 1e-6).mean() * len(clutter_z) > 0.15 * ds.num_points
        for k in range(int((ds.instance_class[i] >= 0).sum())):
            z = ds.points[i][ds.instance[i] == k, 2]
            assert abs(z.min() - floor_z) < 1e-6


# ------------------------------------------------------------------------------------------------- cache

def test_cache_round_trip_and_regeneration(tmp_path, monkeypatch):
    path = tmp_path / "sp.npz"
    first = sp.generate(n=20, points=64, seed=3, cache=path)
    assert path.is_file()
    calls = []
    real = sp._generate
    monkeypatch.setattr(sp, "_generate", lambda p: calls.append(p) or real(p))
    again = sp.generate(n=20, points=64, seed=3, cache=path)
    assert not calls and _same(first, again) and again.meta == first.meta
    other = sp.generate(n=20, points=64, seed=4, cache=path)             # a parameter changed: regenerate
    assert len(calls) == 1 and not np.array_equal(other.points, first.points)
    assert _same(other, sp.generate(n=20, points=64, seed=4, cache=path)) and len(calls) == 1
    # scenes round-trip too; a folder gets one file per parameter set; a broken file is regenerated
    scene = sp.generate(n=4, points=64, scene=True, cache=tmp_path / "dir")
    assert _same(scene, sp.generate(n=4, points=64, scene=True, cache=tmp_path / "dir"))
    assert len(list((tmp_path / "dir").glob("shapeparts_*.npz"))) == 1
    path.write_bytes(b"not an npz")
    assert _same(first, sp.generate(n=20, points=64, seed=3, cache=path))


# ------------------------------------------------------------------------------------------ option parsing

def test_generate_from_options_parses_the_spec():
    ds = sp.generate_from_options({"n": "8", "points": "32", "seed": "3", "noise": "0.01", "rotate": "1",
                                   "scene": "no", "classes": "chair+stool", "test_fraction": "0.5"})
    ref = sp.generate(n=8, points=32, seed=3, noise=0.01, rotate=True, classes=["chair", "stool"],
                      test_fraction=0.5)
    assert _same(ds, ref)


@pytest.mark.parametrize("options, pattern", [
    ({"size": "3"}, r"shapeparts option key: got size; expected one of n, points, seed"),
    ({"n": "many"}, r"shapeparts option 'n': got many; expected an integer"),
    ({"noise": "x"}, r"'noise': got x; expected a number"),
    ({"rotate": "maybe"}, r"'rotate': got maybe; expected one of 1, true"),
    ({"classes": "chair+dog"}, r"'classes': got dog; expected class names .* chair, stool"),
    ({"n": "0"}, r"shapeparts option n: got 0; expected an integer >= 1"),
    ({"test_fraction": "1"}, r"test_fraction: got 1.0; expected a number in \[0, 1\)"),
])
def test_option_errors_name_key_value_and_accepted(options, pattern):
    with pytest.raises(InvalidArgumentError, match=pattern):
        sp.generate_from_options(options)


def test_generate_argument_errors():
    with pytest.raises(InvalidArgumentError, match="classes: got dog"):
        sp.generate(n=4, classes=["dog"])
    with pytest.raises(InvalidArgumentError, match="distinct"):
        sp.generate(n=4, classes=["chair", "chair"])
    with pytest.raises(InvalidArgumentError, match="noise"):
        sp.generate(n=4, noise=-1)
    with pytest.raises(InvalidArgumentError, match="scene"):
        sp.generate(n=4, scene="yes")
