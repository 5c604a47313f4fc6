"""Shape metrics: equality with brute-force numpy references, hand-computed presets, voxel counts, the CLI."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from pointlens.errors import InvalidArgumentError
from pointlens.metrics import shape
from pointlens.metrics.shape import (
    chamfer_distance,
    compare_shapes,
    fscore,
    hausdorff_distance,
    iou_points,
    nn_distances,
    normalize_unit_cube,
    voxel_iou,
    voxelize_mesh,
    voxelize_points,
)

BACKENDS = ["torch", "kdtree"]


# ----------------------------------------------------------------------------------------- references


def np_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Full (N, M) Euclidean distance matrix in float64."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))


def np_fscore(a, b, thr):
    d = np_dist(a, b)
    d_ab, d_ba = d.min(1), d.min(0)
    out = []
    for t in thr:
        p = float(np.mean(d_ab < t))
        r = float(np.mean(d_ba < t))
        out.append((2 * p * r / (p + r) if p + r > 0 else 0.0, p, r))
    return np.array(out)  # (T, 3)


def np_chamfer(a, b, squared, point_reduction, direction_reduction, weights):
    d = np_dist(a, b)
    d_ab, d_ba = d.min(1), d.min(0)
    if squared:
        d_ab, d_ba = d_ab ** 2, d_ba ** 2
    red = np.mean if point_reduction == "mean" else np.sum
    w1, w2 = weights
    v = w1 * red(d_ab) + w2 * red(d_ba)
    return v / (w1 + w2) if direction_reduction == "mean" else v


def np_hausdorff(a, b, one_sided):
    d = np_dist(a, b)
    h_ab = d.min(1).max()
    return h_ab if one_sided else max(h_ab, d.min(0).max())


def clouds(b=3, n=50, m=70, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, n, 3, generator=g), torch.rand(b, m, 3, generator=g)


# A tiny example whose distances can be written down (see test_presets_by_hand).
A = torch.tensor([[[0.0, 0, 0], [2, 0, 0]], [[0, 0, 0], [0, 0, 1]]])
B = torch.tensor([[[0.0, 0, 0], [0, 1, 0], [0, 0, 3]], [[0, 0, 0], [0, 0, 1], [0, 0, 2]]])


# ---------------------------------------------------------------------------------- nearest neighbour


@pytest.mark.parametrize("backend", BACKENDS)
def test_nn_distances_match_brute_force(backend):
    a, b = clouds()
    res = nn_distances(a, b, backend=backend)
    assert res.dist.shape == (3, 50) and res.idx.shape == (3, 50) and res.dist.dtype == torch.float32
    for i in range(3):
        d = np_dist(a[i], b[i])
        np.testing.assert_array_equal(res.idx[i].numpy(), d.argmin(1))
        np.testing.assert_allclose(res.dist[i].numpy(), d.min(1), rtol=1e-6, atol=1e-7)


def test_kdtree_path_equals_chunked_path():
    a, b = clouds(b=2, n=300, m=250, seed=3)
    # a tiny memory budget forces about ten query rows per block: dozens of chunks
    t = nn_distances(a, b, backend="torch", memory_budget=20_000)
    k = nn_distances(a, b, backend="kdtree")
    torch.testing.assert_close(t.idx, k.idx, rtol=0, atol=0)
    torch.testing.assert_close(t.dist, k.dist, rtol=0, atol=0)  # same neighbour -> same recomputed distance
    big = nn_distances(a, b, backend="torch")
    torch.testing.assert_close(big.idx, k.idx, rtol=0, atol=0)
    ft = fscore(a, b, [0.02, 0.05], backend="torch", memory_budget=20_000)
    fk = fscore(a, b, [0.02, 0.05], backend="kdtree")
    for x, y in zip(ft, fk):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_auto_backend_choice_follows_the_crossover():
    cpu = torch.device("cpu")
    n = int(np.sqrt(shape.KDTREE_MIN_PAIRS))
    assert shape.distances._choose_backend("auto", cpu, n + 1, n + 1) == "kdtree"
    assert shape.distances._choose_backend("auto", cpu, 10, 10) == "torch"
    assert shape.distances._choose_backend("auto", torch.device("cuda"), 10**5, 10**5) == "torch"
    assert shape.distances._choose_backend("torch", cpu, 10**5, 10**5) == "torch"


# -------------------------------------------------------------------------------------------- F-score


@pytest.mark.parametrize("backend", BACKENDS)
def test_fscore_matches_numpy_reference(backend):
    a, b = clouds(seed=1)
    thr = [0.02, 0.05, 0.1, 0.3]
    res = fscore(a, b, thr, backend=backend)
    assert res.fscore.shape == res.precision.shape == res.recall.shape == (3, 4)
    for i in range(3):
        ref = np_fscore(a[i].numpy(), b[i].numpy(), thr)
        np.testing.assert_allclose(res.fscore[i].numpy(), ref[:, 0], rtol=1e-6)
        np.testing.assert_allclose(res.precision[i].numpy(), ref[:, 1], rtol=1e-6)
        np.testing.assert_allclose(res.recall[i].numpy(), ref[:, 2], rtol=1e-6)


def test_precision_is_about_predicted_points_and_recall_about_gt():
    # 1 predicted point on the gt, the gt has 4 points of which only that one is near the prediction
    pred = torch.tensor([[[0.0, 0, 0]]])
    gt = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]])
    f, p, r = fscore(pred, gt, 0.5)
    assert float(p) == 1.0 and float(r) == 0.25
    assert float(f) == pytest.approx(2 * 0.25 / 1.25)


@pytest.mark.parametrize("backend", BACKENDS)
def test_threshold_is_strict(backend):
    # distances are exact in float32: the gt point is at exactly 0.5 from the prediction
    pred = torch.tensor([[[0.0, 0, 0]]])
    gt = torch.tensor([[[0.5, 0, 0]]])
    res = fscore(pred, gt, [0.5, np.nextafter(0.5, 1.0), 0.25], backend=backend)
    np.testing.assert_array_equal(res.precision.numpy(), [[0.0, 1.0, 0.0]])
    np.testing.assert_array_equal(res.recall.numpy(), [[0.0, 1.0, 0.0]])
    np.testing.assert_array_equal(res.fscore.numpy(), [[0.0, 1.0, 0.0]])  # F = 0 when P + R = 0


def test_fscore_by_hand():
    res = fscore(A, B, [1.0, 1.5])
    # pair 0: pred->gt distances (0, 2), gt->pred (0, 1, 3); strict: at d=1 recall 1/3, at 1.5 recall 2/3
    np.testing.assert_allclose(res.precision[0].numpy(), [0.5, 0.5])
    np.testing.assert_allclose(res.recall[0].numpy(), [1 / 3, 2 / 3], rtol=1e-6)
    np.testing.assert_allclose(res.fscore[0].numpy(), [2 / 5, 4 / 7], rtol=1e-6)
    # pair 1: pred->gt (0, 0), gt->pred (0, 0, 1)
    np.testing.assert_allclose(res.recall[1].numpy(), [2 / 3, 1.0], rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_identical_clouds(backend):
    a, _ = clouds(seed=2)
    perm = a[:, torch.randperm(a.shape[1])]  # same set, another order
    f = fscore(a, perm, [1e-6, 0.01], backend=backend)
    assert torch.equal(f.fscore, torch.ones(3, 2))
    for preset in shape.CHAMFER_PRESETS:
        assert float(chamfer_distance(a, perm, preset=preset, backend=backend).abs().max()) == 0.0
    assert torch.equal(hausdorff_distance(a, perm, backend=backend), torch.zeros(3))


# -------------------------------------------------------------------------------------------- Chamfer


def test_presets_by_hand():
    # pair 0: a->b distances (0, 2), b->a (0, 1, 3): squared means 4/2 = 2 and 10/3; plain means 1 and 4/3
    # pair 1: a->b (0, 0), b->a (0, 0, 1): squared means 0 and 1/3; plain 0 and 1/3
    torch.testing.assert_close(chamfer_distance(A, B, preset="pytorch3d"), torch.tensor((16 / 3 + 1 / 3) / 2))
    torch.testing.assert_close(chamfer_distance(A, B, preset="kaolin"), torch.tensor([16 / 3, 1 / 3]))
    torch.testing.assert_close(chamfer_distance(A, B, preset="kaolin", weights=(2.0, 0.5)),
                               torch.tensor([2 * 2 + 0.5 * 10 / 3, 0.5 / 3]))
    torch.testing.assert_close(chamfer_distance(A, B, preset="plain"), torch.tensor([7 / 6, 1 / 6]))
    torch.testing.assert_close(chamfer_distance(A, B, preset="pytorch3d", point_reduction="sum"),
                               torch.tensor((4 + 10 + 1) / 2))
    assert chamfer_distance(A, B).shape == (2,)  # default preset: plain


@pytest.mark.parametrize("preset", ["plain", "pytorch3d", "kaolin"])
def test_chamfer_every_option_matches_numpy(preset):
    a, b = clouds(seed=4)
    options = itertools.product([None, False, True], [None, "mean", "sum"], [None, "sum", "mean"],
                                [None, (1.0, 1.0), (0.3, 2.0)], ["preset", "mean", "sum", None])
    for squared, pred_red, dir_red, weights, batch_red in options:
        got = chamfer_distance(a, b, preset=preset, squared=squared, point_reduction=pred_red,
                               direction_reduction=dir_red, weights=weights, batch_reduction=batch_red,
                               backend="torch")
        eff = dict(shape.CHAMFER_PRESETS[preset])
        for key, val in (("squared", squared), ("point_reduction", pred_red),
                         ("direction_reduction", dir_red), ("weights", weights)):
            if val is not None:
                eff[key] = val
        if batch_red != "preset":
            eff["batch_reduction"] = batch_red
        per = np.array([np_chamfer(a[i].numpy(), b[i].numpy(), eff["squared"], eff["point_reduction"],
                                   eff["direction_reduction"], eff["weights"]) for i in range(3)])
        ref = {"mean": per.mean(), "sum": per.sum(), None: per}[eff["batch_reduction"]]
        np.testing.assert_allclose(got.numpy(), ref, rtol=2e-5, err_msg=str(eff))


def test_chamfer_gradient_closed_form():
    # d/da_i of mean_i ||a_i - b_nn(i)||^2 + mean_j ||b_j - a_nn(j)||^2
    a, b = clouds(b=1, n=30, m=40, seed=5)
    a = a.clone().requires_grad_(True)
    chamfer_distance(a, b, preset="pytorch3d").backward()
    an, bn = a.detach()[0].double().numpy(), b[0].double().numpy()
    d = np_dist(an, bn)
    expect = 2 * (an - bn[d.argmin(1)]) / len(an)
    for j, i in enumerate(d.argmin(0)):
        expect[i] += 2 * (an[i] - bn[j]) / len(bn)
    np.testing.assert_allclose(a.grad[0].numpy(), expect, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------------------ Hausdorff


@pytest.mark.parametrize("backend", BACKENDS)
def test_hausdorff_matches_numpy(backend):
    a, b = clouds(seed=6)
    sym = hausdorff_distance(a, b, backend=backend)
    one = hausdorff_distance(a, b, one_sided=True, backend=backend)
    other = hausdorff_distance(b, a, one_sided=True, backend=backend)
    for i in range(3):
        assert float(sym[i]) == pytest.approx(np_hausdorff(a[i], b[i], False), rel=1e-6)
        assert float(one[i]) == pytest.approx(np_hausdorff(a[i], b[i], True), rel=1e-6)
    torch.testing.assert_close(sym, torch.maximum(one, other), rtol=0, atol=0)
    torch.testing.assert_close(hausdorff_distance(A, B), torch.tensor([3.0, 1.0]))
    torch.testing.assert_close(hausdorff_distance(A, B, one_sided=True), torch.tensor([2.0, 0.0]))


# --------------------------------------------------------------------------------------------- ragged


@pytest.mark.parametrize("backend", BACKENDS)
def test_ragged_lists_equal_per_item_results(backend):
    g = torch.Generator().manual_seed(7)
    la = [torch.rand(n, 3, generator=g) for n in (20, 55, 31)]
    lb = [torch.rand(m, 3, generator=g) for m in (40, 12, 31)]
    nn = nn_distances(la, lb, backend=backend)
    f = fscore(la, lb, [0.05, 0.2], backend=backend)
    c = chamfer_distance(la, lb, preset="pytorch3d", backend=backend)
    k = chamfer_distance(la, lb, preset="kaolin", backend=backend)
    h = hausdorff_distance(la, lb, backend=backend)
    rep = compare_shapes(la, lb, [0.05, 0.2], backend=backend)
    for i, (p, q) in enumerate(zip(la, lb)):
        one = nn_distances(p[None], q[None], backend=backend)
        assert torch.equal(nn.dist[i], one.dist[0]) and torch.equal(nn.idx[i], one.idx[0])
        fi = fscore(p[None], q[None], [0.05, 0.2], backend=backend)
        assert torch.equal(f.fscore[i], fi.fscore[0]) and torch.equal(f.recall[i], fi.recall[0])
        assert torch.equal(k[i], chamfer_distance(p[None], q[None], preset="kaolin", backend=backend)[0])
        assert torch.equal(h[i], hausdorff_distance(p[None], q[None], backend=backend)[0])
        assert torch.equal(rep["fscore"][i], fi.fscore[0])
        assert int(rep["n_pred"][i]) == len(p) and int(rep["n_gt"][i]) == len(q)
    torch.testing.assert_close(c, k.mean())  # pytorch3d = batch mean of the kaolin values (w1 = w2 = 1)
    # numpy arrays and batched/list mixes are accepted too
    torch.testing.assert_close(fscore([p.numpy() for p in la], lb, [0.05, 0.2]).fscore, f.fscore)


def test_compare_shapes_agrees_with_single_metrics():
    a, b = clouds(seed=8)
    rep = compare_shapes(a, b, [0.05, 0.1], chamfer_preset="kaolin", backend="torch")
    f = fscore(a, b, [0.05, 0.1], backend="torch")
    assert torch.equal(rep["fscore"], f.fscore) and torch.equal(rep["precision"], f.precision)
    assert torch.equal(rep["chamfer"], chamfer_distance(a, b, preset="kaolin", backend="torch"))
    assert torch.equal(rep["hausdorff"], hausdorff_distance(a, b, backend="torch"))
    assert rep["n_pred"].tolist() == [50] * 3 and rep["n_gt"].tolist() == [70] * 3


# -------------------------------------------------------------------------------------- normalisation


def test_normalize_unit_cube_and_scale_invariance():
    a, b = clouds(seed=9)
    nb = normalize_unit_cube(b)
    lo, hi = nb.amin(1), nb.amax(1)
    torch.testing.assert_close((hi - lo).amax(-1), torch.ones(3))  # longest side 1
    torch.testing.assert_close((hi + lo) / 2, torch.zeros(3, 3), atol=1e-6, rtol=0)  # box centred
    assert float(nb.abs().max()) <= 0.5 + 1e-6
    # metrics of (s x + t) after normalising with the gt's transform equal those of x
    s, t = 7.5, torch.tensor([3.0, -2.0, 10.0])
    f1 = fscore(normalize_unit_cube(a, reference=b), nb, [0.02, 0.1])
    f2 = fscore(normalize_unit_cube(a * s + t, reference=b * s + t), normalize_unit_cube(b * s + t),
                [0.02, 0.1])
    torch.testing.assert_close(f1.fscore, f2.fscore, atol=1e-6, rtol=0)
    lst = normalize_unit_cube(list(a), reference=list(b))
    torch.testing.assert_close(torch.stack(lst), normalize_unit_cube(a, reference=b))


# --------------------------------------------------------------------------------------------- voxels


def test_voxelize_points_indices_and_bounds():
    pts = torch.tensor([[[-0.5, -0.5, -0.5], [0.5, 0.5, 0.5], [0.0, 0.0, 0.0], [0.6, 0.0, 0.0],
                         [-0.26, 0.1, 0.24]]])
    g = voxelize_points(pts, 4)
    assert g.shape == (1, 4, 4, 4) and g.dtype == torch.bool
    expect = torch.zeros(4, 4, 4, dtype=torch.bool)
    # voxel side 0.25: -0.5 -> 0; 0.5 (upper face) -> 3; 0.0 -> 2; 0.6 is outside;
    # (-0.26, 0.1, 0.24) -> (0, 2, 2)
    for ijk in [(0, 0, 0), (3, 3, 3), (2, 2, 2), (0, 2, 2)]:
        expect[ijk] = True
    assert torch.equal(g[0], expect)
    box = voxelize_points(pts, 2, bounds=((-1, -1, -1), (1, 1, 1)))  # a bigger box: 0.6 now inside
    assert int(box.sum()) == 3 and bool(box[0, 1, 1, 1]) and bool(box[0, 0, 0, 0]) and bool(box[0, 0, 1, 1])


def test_voxel_iou_self_disjoint_and_partial():
    a = torch.zeros(2, 4, 4, 4, dtype=torch.bool)
    b = torch.zeros(2, 4, 4, 4, dtype=torch.bool)
    a[0, 0, 0, :3] = True  # 3 voxels
    b[0, 0, 0, 1:] = True  # 3 voxels, 2 shared: IoU = 2 / 4
    a[1, 0, 0, 0] = True
    b[1, 3, 3, 3] = True  # disjoint
    torch.testing.assert_close(voxel_iou(a, b), torch.tensor([0.5, 0.0]))
    torch.testing.assert_close(voxel_iou(a, a), torch.ones(2))
    assert float(voxel_iou(a[0], b[0])) == 0.5 and voxel_iou(a[0], b[0]).shape == ()
    empty = torch.zeros(4, 4, 4, dtype=torch.bool)
    assert float(voxel_iou(empty, empty)) == 1.0


def test_iou_points():
    a, b = clouds(b=2, n=200, m=200, seed=10)
    a, b = a - 0.5, b - 0.5
    torch.testing.assert_close(iou_points(a, a, 8), torch.ones(2))
    ga, gb = voxelize_points(a, 8), voxelize_points(b, 8)
    ref = (ga & gb).flatten(1).sum(1).double() / (ga | gb).flatten(1).sum(1).double()
    torch.testing.assert_close(iou_points(a, b, 8), ref.float())


def test_voxelize_mesh_cube_counts():
    import trimesh

    cube = trimesh.creation.box(extents=(0.5, 0.5, 0.5))  # [-0.25, 0.25]^3, 12 triangles
    # R = 10 over [-0.5, 0.5]: voxel side 0.1; faces at +-0.25 fall in voxels 2 and 7 -> a 6^3 block
    filled = voxelize_mesh(cube.vertices, cube.faces, 10, fill=True)
    shell = voxelize_mesh(cube.vertices, cube.faces, 10, fill=False)
    assert filled.shape == (10, 10, 10) and int(filled.sum()) == 6 ** 3
    assert bool(filled[2:8, 2:8, 2:8].all())
    assert int(shell.sum()) == 6 ** 3 - 4 ** 3 and not bool(shell[3:7, 3:7, 3:7].any())
    unit = trimesh.creation.box(extents=(1.0, 1.0, 1.0))  # the unit cube fills the whole grid
    assert int(voxelize_mesh(unit.vertices, unit.faces, 16).sum()) == 16 ** 3
    assert int(voxelize_mesh(torch.tensor(unit.vertices), torch.tensor(unit.faces), 16, fill=False).sum()) \
        == 16 ** 3 - 14 ** 3


# --------------------------------------------------------------------------------------------- errors


def test_errors_name_the_argument():
    a, b = clouds()
    cases = [
        (lambda: fscore(a, b[:2]), "batch sizes"),
        (lambda: fscore(a, b, 0.0), "thresholds"),
        (lambda: fscore(a, b, []), "thresholds"),
        (lambda: fscore(a, torch.zeros(3, 0, 3)), "gt"),
        (lambda: fscore(torch.rand(3, 3, 10), b), "pred"),
        (lambda: nn_distances(a, b, backend="faiss"), "backend"),
        (lambda: chamfer_distance(a, b, preset="open3d"), "preset"),
        (lambda: chamfer_distance(a, b, point_reduction="max"), "point_reduction"),
        (lambda: chamfer_distance(a, b, batch_reduction="median"), "batch_reduction"),
        (lambda: chamfer_distance(a, b, weights=(1.0,)), "weights"),
        (lambda: chamfer_distance(list(a), list(b)[:2]), "2 clouds"),
        (lambda: voxelize_points(a, 0), "resolution"),
        (lambda: voxelize_points(a, 4, bounds=(1, -1)), "bounds"),
        (lambda: voxel_iou(torch.zeros(4, 4, 4), torch.zeros(5, 5, 5)), "a/b"),
        (lambda: voxelize_mesh(np.zeros((3, 3)), np.array([[0, 1, 5]]), 4), "faces"),
    ]
    for fn, needle in cases:
        with pytest.raises(InvalidArgumentError, match=needle):
            fn()


# ------------------------------------------------------------------------------------------------ CLI


def _cli(argv, capsys):
    from pointlens.cli.main import main

    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_shape_json_matches_library(tmp_path, capsys):
    a, b = clouds(b=1, n=300, m=400, seed=11)
    np.save(tmp_path / "pred.npy", a[0].numpy() * 4 + 1)
    np.savetxt(tmp_path / "gt.txt", b[0].numpy() * 4 + 1)
    files = ["--pred", str(tmp_path / "pred.npy"), "--gt", str(tmp_path / "gt.txt")]
    rc, out, _ = _cli(["metrics", "shape", *files,
                       "--threshold", "0.01,0.05", "--normalize", "unit-cube", "--json",
                       "--out", str(tmp_path / "run")], capsys)
    assert rc == 0
    got = json.loads(out)
    pa = normalize_unit_cube(a * 4 + 1, reference=b * 4 + 1)
    pb = normalize_unit_cube(b * 4 + 1)
    ref = fscore(pa, pb, [0.01, 0.05])
    assert got["fscore@0.05"] == pytest.approx(float(ref.fscore[0, 1]), abs=1e-6)
    assert got["precision@0.01"] == pytest.approx(float(ref.precision[0, 0]), abs=1e-6)
    assert got["recall@0.05"] == pytest.approx(float(ref.recall[0, 1]), abs=1e-6)
    assert got["chamfer"] == pytest.approx(float(chamfer_distance(pa, pb)[0]), rel=1e-5)
    assert got["hausdorff"] == pytest.approx(float(hausdorff_distance(pa, pb)[0]), rel=1e-5)
    assert got["n_pred"] == 300 and got["n_gt"] == 400
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["n_gt"] == 400
    assert (tmp_path / "run" / "config.json").is_file()
    rc, out, _ = _cli(["metrics", "shape", *files,
                       "--chamfer-preset", "pytorch3d", "--iou-resolution", "8"], capsys)
    assert rc == 0 and "fscore" in out and "chamfer (pytorch3d)" in out and "voxel IoU" in out


def test_cli_shape_errors(tmp_path, capsys):
    good = tmp_path / "good.npy"
    np.save(good, np.random.rand(10, 3).astype(np.float32))
    np.save(tmp_path / "bad.npy", np.random.rand(10, 2))
    np.save(tmp_path / "empty.npy", np.zeros((0, 3)))
    for argv, needle in [
        (["--pred", str(tmp_path / "missing.npy"), "--gt", str(good)], ("--pred", "not found")),
        (["--pred", str(good), "--gt", str(tmp_path / "bad.npy")], ("--gt", "(10, 2)")),
        (["--pred", str(tmp_path / "empty.npy"), "--gt", str(good)], ("--pred", "empty.npy")),
        (["--pred", str(good), "--gt", str(good), "--threshold", "0.01,abc"], ("--threshold", "0.01,abc")),
        (["--pred", str(good), "--gt", str(good), "--threshold", "-1"], ("--threshold", "positive")),
    ]:
        rc, _, err = _cli(["metrics", "shape", *argv], capsys)
        assert rc == 2 and all(n in err for n in needle) and len(err.strip().splitlines()) == 1, err
