"""Tests of pointlens.recon: renderer, baselines (K-means, MDS, oracle), statistics and a quick study run."""

from __future__ import annotations

import csv
import itertools
import json

import numpy as np
import pytest
import torch
from scipy import stats as sps

from pointlens.data.dataset import PointCloudDataset
from pointlens.errors import InvalidArgumentError
from pointlens.metrics.shape import voxel_iou, voxelize_points
from pointlens.recon import (
    METHODS,
    METRICS,
    StudyConfig,
    assign,
    camera_rotation,
    classical_mds,
    cluster_medoids,
    imbalanced_subset,
    kmeans,
    ks_test,
    network_input,
    oracle_nearest,
    pairwise_ks,
    pairwise_voxel_iou,
    random_views,
    render_depth,
    render_views,
    run_frame,
    run_study,
    silhouette,
    summarize,
    to_viewer_frame,
    write_study,
)
from pointlens.stats import spearman_test as spearman
from pointlens.utils.io import RunFolder

# ----------------------------------------------------------------------------------------------------
# renderer


def test_single_point_orthographic_pixel_and_depth():
    # x = 0.3, y = -0.55, z = 0.25 in a 20x20 image over [-1, 1]^2: col = floor(1.3 / 2 * 20) = 13,
    # row = floor((1 + 0.55) / 2 * 20) = 15, depth = 2 - 0.25 = 1.75
    depth = render_depth(torch.tensor([[[0.3, -0.55, 0.25]]]), image_size=20, camera_distance=2.0)
    assert depth.shape == (1, 20, 20)
    nz = torch.nonzero(depth)
    assert nz.tolist() == [[0, 15, 13]]
    assert depth[0, 15, 13].item() == pytest.approx(1.75)


def test_single_point_perspective_pixel_and_depth():
    # fov 90 -> tan(45) = 1; point (0.5, 0.25, 1) with camera at z = 3: depth 2, u = 0.25, v = 0.125
    # 16 px: col = floor(1.25 / 2 * 16) = 10, row = floor(0.875 / 2 * 16) = 7
    depth = render_depth(
        torch.tensor([[[0.5, 0.25, 1.0]]]),
        image_size=16,
        projection="perspective",
        camera_distance=3.0,
        fov_degrees=90.0,
    )
    assert torch.nonzero(depth).tolist() == [[0, 7, 10]]
    assert depth[0, 7, 10].item() == pytest.approx(2.0)


def test_nearest_of_two_points_on_one_ray_wins_in_any_order():
    a, b = [0.1, 0.2, 0.6], [0.1, 0.2, -0.4]  # same (x, y): same pixel; a is nearer the camera (z larger)
    for pts in ([a, b], [b, a]):
        depth = render_depth(torch.tensor([pts]), image_size=8)
        assert torch.count_nonzero(depth) == 1
        assert depth.max().item() == pytest.approx(2.0 - 0.6)


def test_silhouette_is_depth_positive_and_outside_points_dropped():
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(3, 200, 3, generator=g) * 2.4 - 1.2  # some points fall outside [-1, 1]^2
    depth = render_depth(pts, image_size=16, splat_radius=1)
    assert torch.equal(silhouette(depth), depth > 0)
    assert torch.count_nonzero(depth) > 0
    depth = render_depth(pts, image_size=16)
    inside = render_depth(pts[:, (pts[0, :, :2].abs() < 1).all(-1)][:1], image_size=16)
    assert torch.equal(depth[:1], inside)


def test_splat_radius_covers_block_with_same_depth():
    depth = render_depth(torch.tensor([[[0.0, 0.0, 0.0]]]), image_size=9, splat_radius=1)
    # (0, 0) -> col = floor(4.5) = 4, row = 4: the 3x3 block rows/cols 3..5
    assert torch.nonzero(depth).tolist() == [[0, r, c] for r in (3, 4, 5) for c in (3, 4, 5)]
    assert torch.allclose(depth[depth > 0], torch.full((9,), 2.0))


def test_zbuffer_matches_bruteforce_loop():
    g = torch.Generator().manual_seed(1)
    pts = torch.rand(2, 300, 3, generator=g) * 1.8 - 0.9
    depth = render_depth(pts, image_size=12)
    ref = torch.zeros(2, 12, 12)
    for b in range(2):
        for x, y, z in pts[b].tolist():
            c, r = int(np.floor((x + 1) / 2 * 12)), int(np.floor((1 - y) / 2 * 12))
            d = 2.0 - z
            if ref[b, r, c] == 0 or d < ref[b, r, c]:
                ref[b, r, c] = d
    assert torch.allclose(depth, ref)


def test_rotation_orthonormal_and_viewer_frame_rendering_consistent():
    views = random_views(6, seed=3)
    rot = camera_rotation(*views)
    eye = torch.eye(3).expand(6, 3, 3)
    assert torch.allclose(rot @ rot.transpose(1, 2), eye, atol=1e-6)
    assert torch.allclose(torch.linalg.det(rot), torch.ones(6), atol=1e-6)
    g = torch.Generator().manual_seed(2)
    pts = torch.randn(6, 150, 3, generator=g)
    pts = pts / pts.norm(dim=-1, keepdim=True) * 0.9
    rendered = render_views(pts, views, image_size=24, splat_radius=1)
    viewer = to_viewer_frame(pts, rendered.rotation)
    # viewer-frame shapes rendered with the identity camera == original shapes rendered with their cameras
    assert torch.allclose(
        render_depth(viewer, None, image_size=24, splat_radius=1), rendered.depth, atol=1e-6
    )
    assert torch.allclose(viewer.norm(dim=-1), pts.norm(dim=-1), atol=1e-5)


def test_camera_rotation_known_angles_and_seeded_views():
    # azimuth 90: the object's +x axis turns to the viewer's +z (towards the camera): R_y(-90) x = (0, 0, 1)
    r = camera_rotation([90.0], [0.0])[0]
    assert torch.allclose(r @ torch.tensor([1.0, 0, 0]), torch.tensor([0.0, 0, 1]), atol=1e-6)
    # elevation 90: looking straight down, the up axis y points at the camera
    r = camera_rotation([0.0], [90.0])[0]
    assert torch.allclose(r @ torch.tensor([0.0, 1, 0]), torch.tensor([0.0, 0, 1]), atol=1e-6)
    # z-up data (ShapeParts): elevation 90 looks down on +z, azimuth turns about z (z stays on the image's y)
    r = camera_rotation([0.0], [90.0], up="z")[0]
    assert torch.allclose(r @ torch.tensor([0.0, 0, 1]), torch.tensor([0.0, 0, 1]), atol=1e-6)
    for az in (0.0, 75.0, 200.0):
        r = camera_rotation([az], [0.0], up="z")[0]
        assert torch.allclose(r @ torch.tensor([0.0, 0, 1]), torch.tensor([0.0, 1, 0]), atol=1e-6)
    v1, v2 = random_views(5, seed=7), random_views(5, seed=7)
    assert torch.equal(v1.azimuth, v2.azimuth) and torch.equal(v1.elevation, v2.elevation)
    assert ((v1.elevation >= -20) & (v1.elevation <= 40)).all()


def test_network_input_channels():
    depth = torch.tensor([[[0.0, 1.0], [2.0, 3.0]]])
    img = network_input(depth)
    assert img.shape == (1, 2, 2, 2)
    assert torch.equal(img[0, 0], torch.tensor([[0.0, 1], [1, 1]]))
    assert torch.allclose(img[0, 1], torch.tensor([[0.0, 1.0], [0.55, 0.1]]))


def test_renderer_rejects_bad_input():
    with pytest.raises(InvalidArgumentError, match="projection"):
        render_depth(torch.zeros(1, 4, 3), projection="fisheye")
    with pytest.raises(InvalidArgumentError, match="rotation"):
        render_depth(torch.zeros(1, 4, 3), torch.ones(3, 3))
    with pytest.raises(InvalidArgumentError, match="points"):
        render_depth(torch.zeros(1, 3, 4))


# ----------------------------------------------------------------------------------------------------
# baselines


def test_classical_mds_recovers_configuration():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3)) * np.array([3.0, 1.5, 0.5])
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    res = classical_mds(d, 3)
    emb_d = np.linalg.norm(res.embedding[:, None] - res.embedding[None], axis=-1)
    assert np.allclose(emb_d, d, atol=1e-8)
    assert res.explained == pytest.approx(1.0)
    # up to a rigid motion: the orthogonal Procrustes fit of the centred configurations is exact
    xc = x - x.mean(0)
    u, _, vt = np.linalg.svd(res.embedding.T @ xc)
    assert np.allclose(res.embedding @ (u @ vt), xc, atol=1e-8)
    # a 2-D embedding keeps the two largest eigenvalues; its Gram matrix is the best rank-2 approximation
    res2 = classical_mds(d, 2)
    assert np.allclose(res2.embedding, res.embedding[:, :2])


def test_kmeans_inertia_decreases_and_assignment_is_bruteforce():
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0], [5, 5], [0, 6], [7, -1]])
    x = np.concatenate([c + rng.normal(scale=0.4, size=(25, 2)) for c in centres])
    res = kmeans(x, 4, seed=0)
    assert all(b <= a + 1e-9 for a, b in zip(res.history, res.history[1:]))
    brute = np.array([np.argmin([np.sum((p - c) ** 2) for c in res.centers]) for p in x])
    assert np.array_equal(res.labels, brute)
    assert np.array_equal(assign(x, res.centers), brute)
    assert res.inertia == pytest.approx(
        sum(np.sum((p - res.centers[lab]) ** 2) for p, lab in zip(x, res.labels))
    )
    # well separated blobs: every blob is one cluster, the centres are the blob means
    for i in range(4):
        assert len(set(res.labels[i * 25 : (i + 1) * 25])) == 1
        lab = res.labels[i * 25]
        assert np.allclose(res.centers[lab], x[res.labels == lab].mean(0))
    again = kmeans(x, 4, seed=0)
    assert np.array_equal(again.labels, res.labels)


def test_kmeans_reaches_bruteforce_optimum_on_tiny_problem():
    x = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [30.0]])
    best = min(
        sum(((x[lab == j] - x[lab == j].mean(0)) ** 2).sum() for j in range(3) if (lab == j).any())
        for lab in map(np.array, itertools.product(range(3), repeat=len(x)))
    )
    assert kmeans(x, 3, seed=0).inertia == pytest.approx(best)


def test_cluster_medoids_bruteforce():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(20, 3))
    labels = rng.integers(0, 3, size=20)
    med = cluster_medoids(x, labels, 4)
    assert med[3] == -1
    for j in range(3):
        members = np.flatnonzero(labels == j)
        cost = [sum(np.linalg.norm(x[i] - x[o]) for o in members) for i in members]
        assert med[j] == members[int(np.argmin(cost))]


def _random_grids(n, r=6, p=0.3, seed=0):
    return torch.rand(n, r, r, r, generator=torch.Generator().manual_seed(seed)) < p


def test_pairwise_voxel_iou_matches_voxel_iou():
    a, b = _random_grids(5, seed=1), _random_grids(7, seed=2)
    b[0] = False
    m = pairwise_voxel_iou(a, b, chunk=2)
    for i in range(5):
        for j in range(7):
            assert m[i, j].item() == pytest.approx(voxel_iou(a[i], b[j]).item(), abs=1e-6)
    empty = torch.zeros(2, 3, 3, 3, dtype=torch.bool)
    assert torch.equal(pairwise_voxel_iou(empty), torch.ones(2, 2))


def test_oracle_nearest_picks_bruteforce_best():
    test, train = _random_grids(6, seed=3), _random_grids(15, p=0.25, seed=4)
    train[9] = test[2]  # an exact match must win with IoU 1
    idx, best = oracle_nearest(test, train)
    for i in range(6):
        scores = [voxel_iou(test[i], train[j]).item() for j in range(15)]
        assert idx[i] == int(np.argmax(scores))
        assert best[i] == pytest.approx(max(scores))
    assert idx[2] == 9 and best[2] == pytest.approx(1.0)


# ----------------------------------------------------------------------------------------------------
# statistics


def test_ks_and_spearman_match_scipy():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=30), rng.normal(0.5, size=25)
    r = ks_test(a, b)
    ref = sps.ks_2samp(a, b)
    assert (r.statistic, r.pvalue) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))
    # the statistic is the largest gap between the empirical CDFs
    grid = np.concatenate([a, b])
    gap = max(abs((a <= v).mean() - (b <= v).mean()) for v in grid)
    assert r.statistic == pytest.approx(gap)
    pairs = pairwise_ks({"x": a, "y": b, "z": a + 1})
    assert [(p["a"], p["b"]) for p in pairs] == [("x", "y"), ("x", "z"), ("y", "z")]
    assert pairs[0]["statistic"] == pytest.approx(ref.statistic)
    x, y = rng.normal(size=12), rng.normal(size=12)
    s = spearman(x, y)
    ref = sps.spearmanr(x, y)
    assert (s.statistic, s.pvalue) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))
    assert spearman([1, 2, 3, 4], [2, 4, 8, 16]).statistic == pytest.approx(1.0)
    assert np.isnan(spearman([5, 5, 5], [1, 2, 3]).statistic)
    with pytest.raises(InvalidArgumentError, match="a"):
        ks_test([], [1.0])


def test_imbalanced_subset():
    labels = np.repeat(np.arange(4), 20)
    keep = imbalanced_subset(labels, 4, 4.0, seed=0)
    counts = sorted(np.bincount(labels[keep], minlength=4).tolist())
    assert counts == [5, 10, 15, 20]
    assert np.array_equal(imbalanced_subset(labels, 4, 1.0), np.arange(80))


# ----------------------------------------------------------------------------------------------------
# the study


def _toy_dataset(per_class: int, points: int, seed: int) -> PointCloudDataset:
    """Three classes with random proportions: ellipsoid surfaces, box surfaces and flat discs."""
    rng = np.random.default_rng(seed)
    clouds, labels = [], []
    for c in range(3):
        for _ in range(per_class):
            scale = rng.uniform(0.4, 1.0, size=3)
            if c == 0:
                p = rng.normal(size=(points, 3))
                p /= np.linalg.norm(p, axis=1, keepdims=True)
            elif c == 1:
                p = rng.uniform(-1, 1, size=(points, 3))
                axis = rng.integers(0, 3, size=points)
                p[np.arange(points), axis] = np.sign(rng.uniform(-1, 1, size=points))
            else:
                ang, rad = rng.uniform(0, 2 * np.pi, points), np.sqrt(rng.uniform(0, 1, points))
                p = np.stack([rad * np.cos(ang), 0.1 * rng.uniform(-1, 1, points), rad * np.sin(ang)], 1)
            p = p * scale
            p -= p.mean(0)
            clouds.append(p / np.linalg.norm(p, axis=1).max())
            labels.append(c)
    return PointCloudDataset(
        points=np.stack(clouds), labels=np.array(labels), class_names=["ellipsoid", "box", "disc"]
    )


def test_quick_study_end_to_end(tmp_path):
    train, test = _toy_dataset(10, 160, seed=0), _toy_dataset(3, 160, seed=1)
    cfg = StudyConfig.quick(imbalance=2.0)
    results = run_study(train, test, ("object", "viewer"), cfg)
    metrics = write_study(results, RunFolder(tmp_path, "recon run"))
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert {r["method"] for r in rows} == set(METHODS)
    assert {r["frame"] for r in rows} == {"object", "viewer"}
    assert len(rows) == 2 * len(METHODS) * (1 + 3)
    assert all(np.isfinite(float(r[m])) for r in rows for m in METRICS)
    for name in (
        "results.json",
        "results.md",
        "metrics.json",
        "per_class_object.png",
        "distributions_viewer.png",
        "scores_viewer.npz",
    ):
        assert (tmp_path / name).is_file()
    assert json.loads((tmp_path / "results.json").read_text()) == json.loads(
        (tmp_path / "metrics.json").read_text()
    )
    md = (tmp_path / "results.md").read_text()
    assert all(m in md for m in METHODS)
    s = metrics["frames"]["viewer"]
    assert (
        s["per_class"]["ellipsoid"]["n_train"]
        + s["per_class"]["box"]["n_train"]
        + s["per_class"]["disc"]["n_train"]
        == s["n_train"]
        == 10 + 8 + 5
    )
    for metric in METRICS:
        assert len(s["ks_tests"][metric]) == 6
    # the oracle is the best training shape by IoU, so no recognition baseline beats it on IoU, shape by shape
    for r in results.values():
        for name in ("clustering", "retrieval"):
            assert (r.scores["oracle-nn"]["iou"] >= r.scores[name]["iou"] - 1e-6).all()
        assert all(
            0 <= r.scores[m]["fscore@1%"].min() <= r.scores[m]["fscore@1%"].max() <= 1 for m in METHODS
        )
    # object frame: the oracle's IoU is recomputed independently from the chosen training shapes
    r = results["object"]
    keep = imbalanced_subset(train.labels, 3, 2.0, cfg.seed)
    tr = torch.from_numpy(train.points[keep]) * 0.5
    gt = torch.from_numpy(test.points) * 0.5
    out = tr[r.choices["oracle-nn"], :128]  # every method outputs cfg.output_points = 128 points
    ref = voxel_iou(voxelize_points(out, 16), voxelize_points(gt, 16))
    assert np.allclose(r.scores["oracle-nn"]["iou"], ref.numpy(), atol=1e-6)


def test_quick_frame_is_deterministic():
    train, test = _toy_dataset(6, 64, seed=2), _toy_dataset(2, 64, seed=3)
    cfg = StudyConfig.quick(epochs=1, imbalance=1.0)
    a, b = run_frame(train, test, "viewer", cfg), run_frame(train, test, "viewer", cfg)
    for meth in METHODS:
        for metric in METRICS:
            assert np.array_equal(a.scores[meth][metric], b.scores[meth][metric])
    assert summarize(a)["overall"] == summarize(b)["overall"]


def test_study_rejects_bad_options():
    train = _toy_dataset(2, 32, seed=0)
    with pytest.raises(InvalidArgumentError, match="frame"):
        run_frame(train, train, "world")
    with pytest.raises(InvalidArgumentError, match="epochs"):
        run_frame(train, train, "object", StudyConfig(epochs=0))
    with pytest.raises(InvalidArgumentError, match="imbalance"):
        StudyConfig(imbalance=0.5).validate()


def test_cli_quick(tmp_path, capsys):
    from pointlens.cli.main import main

    rc = main(
        [
            "recon",
            "run",
            "--quick",
            "--frame",
            "object",
            "--out",
            str(tmp_path),
            "--json",
            "--no-plots",
            "--quiet",
            "--data",
            "shapeparts:n=40",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["frames"]["object"]["overall"]) == set(METHODS)
    assert (tmp_path / "config.json").is_file() and (tmp_path / "results.csv").is_file()


def test_cli_bad_frame_exits_2(tmp_path):
    from pointlens.cli.main import main

    with pytest.raises(SystemExit) as e:
        main(["recon", "run", "--frame", "world", "--out", str(tmp_path)])
    assert e.value.code == 2
