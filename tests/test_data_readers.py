"""Readers and the spec loader: round-trips of tiny fixture files, area sampling, errors, the real npz."""

from __future__ import annotations

import json
import sys
import types

import h5py
import numpy as np
import pytest
import torch

from pointlens.cli.main import main as cli_main
from pointlens.data import (
    PointCloudDataset,
    load_dataset,
    parse_spec,
    read_cloud_file,
    read_meshes,
    read_modelnet_h5,
    read_modelnet_txt,
    read_npz,
    read_off,
    sample_surface,
    save_dataset,
)
from pointlens.errors import DataError, InvalidArgumentError
from pointlens.ops import farthest_point_sampling

RNG = np.random.default_rng(0)

# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture
def h5_folder(tmp_path):
    """modelnet40_ply_hdf5_2048-like folder: 2 train files (5 + 4 clouds), 1 test file (3), 3 classes."""
    root = tmp_path / "modelnet40_ply_hdf5_2048"
    root.mkdir()
    rng = np.random.default_rng(1)
    arrays = {}
    for name, m in [("ply_data_train0.h5", 5), ("ply_data_train1.h5", 4), ("ply_data_test0.h5", 3)]:
        data = rng.normal(size=(m, 32, 3)).astype(np.float32) * 2 + 1
        label = rng.integers(0, 3, size=(m, 1)).astype(np.uint8)
        normal = rng.normal(size=(m, 32, 3)).astype(np.float32)
        with h5py.File(root / name, "w") as h:
            h["data"], h["label"], h["normal"] = data, label, normal
        arrays[name] = (data, label[:, 0].astype(np.int64), normal)
    (root / "train_files.txt").write_text("data/modelnet40_ply_hdf5_2048/ply_data_train0.h5\n"
                                          "data/modelnet40_ply_hdf5_2048/ply_data_train1.h5\n")
    (root / "test_files.txt").write_text("data/modelnet40_ply_hdf5_2048/ply_data_test0.h5\n")
    (root / "shape_names.txt").write_text("cone\ncup\nvase\n")
    return root, arrays


@pytest.fixture
def txt_folder(tmp_path):
    """modelnet40_normal_resampled-like folder with 12-line files of 6 comma-separated columns."""
    root = tmp_path / "modelnet40_normal_resampled"
    rng = np.random.default_rng(2)
    ids = {"train": ["airplane_0001", "night_stand_0001", "airplane_0002"], "test": ["night_stand_0002"]}
    clouds = {}
    for sid in ids["train"] + ids["test"]:
        cls = sid.rsplit("_", 1)[0]
        (root / cls).mkdir(parents=True, exist_ok=True)
        arr = rng.normal(size=(12, 6)).round(6).astype(np.float32)
        text = "\n".join(",".join(f"{v:.6f}" for v in row) for row in arr) + "\n"
        (root / cls / f"{sid}.txt").write_text(text)
        clouds[sid] = arr
    (root / "modelnet40_shape_names.txt").write_text("airplane\nnight_stand\n")
    for sp, lst in ids.items():
        (root / f"modelnet40_{sp}.txt").write_text("\n".join(lst) + "\n")
    return root, clouds


SQUARE_OFF = "OFF\n4 2 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n3 0 1 2\n3 0 2 3\n"


def _two_triangles_off(path):
    # triangle A: area 1 (in z=0), triangle B: area 3 (in z=5); ModelNet's merged header on the first line
    path.write_text("OFF6 2 0\n0 0 0\n2 0 0\n0 1 0\n0 0 5\n3 0 5\n0 2 5\n3 0 1 2\n3 3 4 5\n")
    return path


@pytest.fixture
def mesh_folder(tmp_path):
    root = tmp_path / "meshes"
    for cls in ("chair", "bowl"):
        for sp in ("train", "test"):
            (root / cls / sp).mkdir(parents=True)
    (root / "chair" / "train" / "chair_0001.off").write_text(SQUARE_OFF)
    _two_triangles_off(root / "chair" / "train" / "chair_0002.off")
    (root / "chair" / "test" / "chair_0003.off").write_text(SQUARE_OFF)
    (root / "bowl" / "train" / "bowl_0001.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    (root / "bowl" / "test" / "bowl_0002.ply").write_text(
        "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
        "element face 1\nproperty list uchar int vertex_indices\nend_header\n0 0 2\n1 0 2\n0 1 2\n3 0 1 2\n")
    return root


# ------------------------------------------------------------------------------------------------ spec


def test_parse_spec_forms():
    assert parse_spec("shapeparts") == ("shapeparts", None, {})
    assert parse_spec("ShapeParts:n=500, noise=0.01,") == ("shapeparts", None, {"n": "500", "noise": "0.01"})
    assert parse_spec("modelnet40-h5:/d/m40") == ("modelnet40-h5", "/d/m40", {})
    assert parse_spec("npz:C:/x/a.npz") == ("npz", "C:/x/a.npz", {})
    assert parse_spec("meshes: folder ") == ("meshes", "folder", {})
    with pytest.raises(InvalidArgumentError, match="modelnet40-txt"):
        parse_spec("modelnet:/x")
    with pytest.raises(InvalidArgumentError, match="PATH"):
        parse_spec("npz:")
    with pytest.raises(InvalidArgumentError, match="key=value"):
        parse_spec("shapeparts:n")
    with pytest.raises(InvalidArgumentError, match="spec"):
        parse_spec(3)


def test_shapeparts_is_delegated(monkeypatch):
    seen = {}

    def fake(options):
        seen.update(options)
        m, n = 6, int(options["points"])
        pts = np.random.default_rng(0).normal(size=(m, n, 3)).astype(np.float32)
        return PointCloudDataset(points=pts, labels=np.arange(m) % 2, class_names=["a", "b"],
                                 parts=np.tile(np.arange(n), (m, 1)), part_names=[str(i) for i in range(n)],
                                 gt_mask=np.tile(np.arange(n) % 2 == 0, (m, 1)),
                                 split=np.array(["train"] * 4 + ["test"] * 2))

    monkeypatch.setitem(sys.modules, "pointlens.data.shapeparts",
                        types.SimpleNamespace(generate_from_options=fake))
    ds = load_dataset("shapeparts:n=6,seed=3", split="test", num_points=20, sampling="random", seed=1)
    assert seen == {"n": "6", "seed": "3", "points": "20"}
    assert len(ds) == 2 and ds.num_points == 20 and list(ds.split) == ["test", "test"]
    ds2 = load_dataset("shapeparts:points=40", split="train", num_points=10, sampling="fps", normalize=False,
                       limit=3)
    assert len(ds2) == 3 and ds2.num_points == 10
    # per-point arrays follow the kept points (parts here = the original point index)
    raw = fake({"points": "40"})
    idx = farthest_point_sampling(torch.from_numpy(raw.points[:3]), 10).numpy()
    np.testing.assert_array_equal(ds2.parts, idx)
    np.testing.assert_array_equal(ds2.gt_mask, idx % 2 == 0)
    np.testing.assert_array_equal(ds2.points, np.take_along_axis(raw.points[:3], idx[..., None], 1))


# ------------------------------------------------------------------------------------------------ h5


def test_h5_round_trip(h5_folder):
    root, arrays = h5_folder
    tr = read_modelnet_h5(root, "train")
    want = np.concatenate([arrays["ply_data_train0.h5"][0], arrays["ply_data_train1.h5"][0]])
    np.testing.assert_array_equal(tr.points, want)
    np.testing.assert_array_equal(tr.labels, np.concatenate([arrays[k][1] for k in
                                                             ("ply_data_train0.h5", "ply_data_train1.h5")]))
    np.testing.assert_array_equal(tr.normals[:5], arrays["ply_data_train0.h5"][2])
    assert tr.class_names == ["cone", "cup", "vase"] and tr.names[5] == "ply_data_train1.h5:0"
    te = read_modelnet_h5(root, "test", max_points=10)
    np.testing.assert_array_equal(te.points, arrays["ply_data_test0.h5"][0][:, :10])
    al = read_modelnet_h5(root, "all", limit=7)
    assert len(al) == 7 and list(al.split) == ["train"] * 7
    assert len(read_modelnet_h5(root, None)) == 12


def test_h5_spec_samples_before_normalising(h5_folder):
    root, arrays = h5_folder
    raw = arrays["ply_data_test0.h5"][0]
    plain = load_dataset(f"modelnet40-h5:{root}", split="test", num_points=8, normalize=False)
    np.testing.assert_array_equal(plain.points, raw[:, :8])
    ds = load_dataset(f"modelnet40-h5:{root}", split="test", num_points=8)
    c = raw[:, :8].mean(1, keepdims=True)
    s = np.linalg.norm(raw[:, :8] - c, axis=-1).max(1)
    np.testing.assert_allclose(ds.points, (raw[:, :8] - c) / s[:, None, None], atol=1e-6)
    np.testing.assert_allclose(ds.points.mean(1), 0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(ds.points, axis=-1).max(1), 1, atol=1e-6)
    assert ds.meta["normalization"] == "unit_sphere" and ds.meta["source_points"] == 32
    # random: a seeded subset of each cloud, normals follow
    r = load_dataset(f"modelnet40-h5:{root}", split="test", num_points=8, sampling="random", seed=4,
                     normalize=False)
    for i in range(3):
        rows = [int(np.flatnonzero((raw[i] == p).all(1))[0]) for p in r.points[i]]
        assert len(set(rows)) == 8
        np.testing.assert_array_equal(r.normals[i], arrays["ply_data_test0.h5"][2][i][rows])
    again = load_dataset(f"modelnet40-h5:{root}", split="test", num_points=8, sampling="random", seed=4,
                         normalize=False)
    np.testing.assert_array_equal(r.points, again.points)
    f = load_dataset(f"modelnet40-h5:{root}", split="test", num_points=8, sampling="fps", normalize=False)
    idx = farthest_point_sampling(torch.from_numpy(raw), 8).numpy()
    np.testing.assert_array_equal(f.points, np.take_along_axis(raw, idx[..., None], 1))


def test_h5_errors(h5_folder, tmp_path):
    root, _ = h5_folder
    with pytest.raises(InvalidArgumentError, match="--points 32"):
        load_dataset(f"modelnet40-h5:{root}", num_points=64)
    with pytest.raises(DataError, match="folder not found.*train_files.txt"):
        load_dataset(f"modelnet40-h5:{tmp_path / 'nope'}")
    victim = root / "ply_data_test0.h5"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="ply_data_test0.h5"):
        read_modelnet_h5(root, "test")
    victim.unlink()
    with pytest.raises(DataError, match="ply_data_test0.h5: file not found"):
        read_modelnet_h5(root, "test")


def test_h5_nan_is_reported(tmp_path):
    root = tmp_path / "h5"
    root.mkdir()
    data = np.zeros((4, 10, 3), np.float32)
    data[2, 3, 1] = np.nan
    data[2, 7, 0] = np.nan
    with h5py.File(root / "ply_data_train0.h5", "w") as h:
        h["data"], h["label"] = data, np.zeros((4, 1), np.uint8)
    with pytest.raises(DataError, match=r"ply_data_train0.h5: 2 point\(s\) in 1 cloud\(s\)"):
        read_modelnet_h5(root, "train")  # no train_files.txt: found by glob


# ------------------------------------------------------------------------------------------------ txt


def test_txt_round_trip(txt_folder):
    root, clouds = txt_folder
    ds = read_modelnet_txt(root, "train")
    np.testing.assert_allclose(ds.points[1], clouds["night_stand_0001"][:, :3], atol=1e-6)
    np.testing.assert_allclose(ds.normals[2], clouds["airplane_0002"][:, 3:], atol=1e-6)
    assert list(ds.labels) == [0, 1, 0] and list(ds.names)[1] == "night_stand_0001"
    al = load_dataset(f"modelnet40-txt:{root}", split="all", num_points=5, normalize=False)
    assert list(al.split) == ["train"] * 3 + ["test"]
    np.testing.assert_allclose(al.points[3], clouds["night_stand_0002"][:5, :3], atol=1e-6)


def test_txt_reads_only_needed_lines(txt_folder):
    root, clouds = txt_folder
    with open(root / "airplane" / "airplane_0001.txt", "a") as f:
        f.write("this,is,not,a,point,!\n")
    ds = load_dataset(f"modelnet40-txt:{root}", split="train", num_points=12, normalize=False)
    np.testing.assert_allclose(ds.points[0], clouds["airplane_0001"][:, :3], atol=1e-6)
    with pytest.raises(DataError, match="airplane_0001.txt: line 13"):
        load_dataset(f"modelnet40-txt:{root}", split="train", num_points=12, sampling="random")


def test_txt_ragged_files_are_sampled(txt_folder):
    root, clouds = txt_folder
    extra = np.full((3, 6), 0.5, np.float32)
    (root / "airplane" / "airplane_0002.txt").write_text(
        "\n".join(",".join(map(str, r)) for r in np.concatenate([clouds["airplane_0002"], extra])) + "\n")
    ds = load_dataset(f"modelnet40-txt:{root}", split="train", num_points=10, sampling="random",
                      normalize=False)
    assert ds.points.shape == (3, 10, 3)
    full = np.concatenate([clouds["airplane_0002"], extra])[:, :3]
    assert all(((full - p) ** 2).sum(1).min() < 1e-10 for p in ds.points[2])
    with pytest.raises(InvalidArgumentError, match="has 12 points"):
        load_dataset(f"modelnet40-txt:{root}", split="train", num_points=13)


def test_txt_missing_pieces(txt_folder):
    root, _ = txt_folder
    (root / "modelnet40_test.txt").unlink()
    with pytest.raises(DataError, match="modelnet40_test.txt: file not found; expected"):
        read_modelnet_txt(root, "test")
    (root / "airplane" / "airplane_0001.txt").unlink()
    with pytest.raises(DataError, match="airplane_0001.txt: file not found"):
        read_modelnet_txt(root, "train")


# ------------------------------------------------------------------------------------------------ meshes


def test_off_parser_malformed_header_and_polygons(tmp_path):
    v, f = read_off(_two_triangles_off(tmp_path / "a.off"))
    assert v.shape == (6, 3) and f.tolist() == [[0, 1, 2], [3, 4, 5]]
    quad = tmp_path / "q.off"
    quad.write_text("# comment\nOFF\n4 1 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3\n")
    v, f = read_off(quad)
    assert f.tolist() == [[0, 1, 2], [0, 2, 3]]
    empty = tmp_path / "empty.off"
    empty.write_text("OFF\n3 0 0\n0 0 0\n1 0 0\n0 1 0\n")
    with pytest.raises(DataError, match="empty.off: the OFF file has no faces"):
        read_off(empty)
    cut = tmp_path / "cut.off"
    cut.write_text("OFF\n4 2 0\n0 0 0\n1 0 0\n")
    with pytest.raises(DataError, match="cut.off: truncated"):
        read_off(cut)


def test_area_sampling_follows_area(tmp_path):
    v, f = read_off(_two_triangles_off(tmp_path / "a.off"))
    pts, nrm = sample_surface(v, f, 8000, seed=0, return_normals=True)
    on_big = pts[:, 2] > 2.5
    assert abs(on_big.mean() - 0.75) < 0.02  # areas 1 and 3
    small, big = pts[~on_big], pts[on_big]
    assert np.allclose(small[:, 2], 0) and np.allclose(big[:, 2], 5)
    # inside each triangle: x, y >= 0 and x / 2 + y <= 1 (small), x / 3 + y / 2 <= 1 (big)
    assert (small[:, :2] >= 0).all() and (small[:, 0] / 2 + small[:, 1] <= 1 + 1e-6).all()
    assert (big[:, 0] / 3 + big[:, 1] / 2 <= 1 + 1e-6).all()
    # uniform inside a triangle: the centroid of the samples is the triangle's centroid
    np.testing.assert_allclose(big[:, :2].mean(0), [1.0, 2 / 3], atol=0.03)
    np.testing.assert_allclose(np.abs(nrm[:, 2]), 1.0)
    np.testing.assert_array_equal(pts, sample_surface(v, f, 8000, seed=0))
    with pytest.raises(DataError, match="zero surface area"):
        sample_surface(np.zeros((3, 3)), np.array([[0, 1, 2]]), 5)


def test_mesh_folder_reader(mesh_folder):
    ds = read_meshes(mesh_folder, "all", num_points=64, seed=1)
    assert ds.class_names == ["bowl", "chair"]
    assert list(ds.names) == ["bowl/test/bowl_0002", "bowl/train/bowl_0001", "chair/test/chair_0003",
                              "chair/train/chair_0001", "chair/train/chair_0002"]
    assert list(ds.split) == ["test", "train", "test", "train", "train"]
    np.testing.assert_allclose(ds.points[0][:, 2], 2.0)  # ply triangle at z = 2
    assert (ds.points[1][:, :2].sum(1) <= 1 + 1e-6).all()  # obj triangle
    sq = ds.points[3]
    assert (sq >= -1e-7).all() and (sq[:, :2] <= 1 + 1e-7).all() and np.allclose(sq[:, 2], 0)
    train = read_meshes(mesh_folder, "train", num_points=64, seed=1)
    np.testing.assert_array_equal(train.points, ds.points[[1, 3, 4]])  # same mesh, same points
    spec = load_dataset(f"meshes:{mesh_folder}", split="test", num_points=16, sampling="fps", seed=1)
    assert spec.points.shape == (2, 16, 3) and spec.meta["source_points"] == 64


def test_mesh_folder_errors(mesh_folder, tmp_path):
    (mesh_folder / "bowl" / "train" / "bad.off").write_text("OFF\n3 0 0\n0 0 0\n1 0 0\n0 1 0\n")
    with pytest.raises(DataError, match="bad.off: the OFF file has no faces"):
        read_meshes(mesh_folder, "train", num_points=8)
    flat = tmp_path / "flat" / "cls"
    flat.mkdir(parents=True)
    (flat / "a.off").write_text(SQUARE_OFF)
    assert len(read_meshes(flat.parent, None, num_points=4)) == 1
    with pytest.raises(InvalidArgumentError, match="no train/test sub-folders"):
        load_dataset(f"meshes:{flat.parent}", split="train")
    with pytest.raises(DataError, match="a.off: mesh directly in .*class is unknown"):
        read_meshes(flat, "all")
    (tmp_path / "void").mkdir()
    with pytest.raises(DataError, match="void: no .off/.ply/.obj mesh found; expected PATH/<class>"):
        read_meshes(tmp_path / "void", "all")


# ------------------------------------------------------------------------------------------------ npz


def _dataset(m=6, n=20):
    rng = np.random.default_rng(3)
    return PointCloudDataset(
        points=rng.normal(size=(m, n, 3)), labels=rng.integers(0, 3, m), class_names=["a", "b", "c"],
        normals=rng.normal(size=(m, n, 3)).astype(np.float32), parts=rng.integers(-1, 4, (m, n)),
        part_names=list("pqrs"),
        gt_mask=rng.random((m, n)) > 0.5, instance=rng.integers(-1, 2, (m, n)),
        instance_class=rng.integers(-1, 3, (m, 2)), names=np.array([f"s{i}" for i in range(m)]),
        split=np.array(["train", "test"] * (m // 2)), meta={"origin": "test"})


def test_npz_round_trip(tmp_path):
    ds = _dataset()
    path = save_dataset(ds, tmp_path / "c.npz")
    back = read_npz(path, "all")
    for key in ("points", "labels", "normals", "parts", "gt_mask", "instance", "instance_class", "names",
                "split"):
        np.testing.assert_array_equal(getattr(back, key), getattr(ds, key), err_msg=key)
    assert back.class_names == ds.class_names and back.part_names == ds.part_names
    assert back.gt_mask.dtype == bool and back.meta["cached_meta"] == {"origin": "test"}
    te = load_dataset(f"npz:{path}", split="test", num_points=20, normalize=False, limit=2)
    np.testing.assert_array_equal(te.points, ds.points[[1, 3]])
    with pytest.raises(InvalidArgumentError, match="num_points: got 21; expected at most 20"):
        load_dataset(f"npz:{path}", num_points=21)


def test_npz_generic_layout(tmp_path):
    pts = np.random.default_rng(4).normal(size=(3, 10, 6)).astype(np.float16)
    path = tmp_path / "g.npz"
    np.savez(path, points=pts, labels=np.array([0, 2, 1]), shape_names=np.array(["x", "y", "z"]),
             split=np.array([b"train", b"test", b"train"]))
    ds = read_npz(path, "train")
    np.testing.assert_array_equal(ds.points, pts[[0, 2], :, :3].astype(np.float32))
    np.testing.assert_array_equal(ds.normals, pts[[0, 2], :, 3:].astype(np.float32))
    assert ds.class_names == ["x", "y", "z"] and list(ds.labels) == [0, 1]
    np.savez(tmp_path / "nosplit.npz", points=pts, labels=np.array([0, 1, 1]))
    assert read_npz(tmp_path / "nosplit.npz", None).class_names == ["class_0", "class_1"]
    with pytest.raises(InvalidArgumentError, match="no 'split' array"):
        read_npz(tmp_path / "nosplit.npz", "train")


def test_npz_errors(tmp_path):
    path = save_dataset(_dataset(m=40, n=200), tmp_path / "t.npz")
    data = path.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cut.npz: cannot read"):
        load_dataset(f"npz:{cut}", split="all")
    np.savez(tmp_path / "nolab.npz", points=np.zeros((2, 4, 3)))
    with pytest.raises(DataError, match="no 'labels' array"):
        read_npz(tmp_path / "nolab.npz")
    pts = np.zeros((3, 5, 3))
    pts[1, :2] = np.nan
    pts[2, 4, 2] = np.inf
    np.savez(tmp_path / "nan.npz", points=pts, labels=np.zeros(3, int))
    with pytest.raises(DataError, match=r"nan.npz: 3 point\(s\) in 2 cloud\(s\) have NaN"):
        read_npz(tmp_path / "nan.npz", None)
    np.savez(tmp_path / "obj.npz", points=np.zeros((1, 4, 3)), labels=np.zeros(1, int),
             names=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="obj.npz"):
        read_npz(tmp_path / "obj.npz", None)
    with pytest.raises(DataError, match="missing.npz: file not found"):
        load_dataset(f"npz:{tmp_path / 'missing.npz'}")


def test_real_modelnet_subset(modelnet_npz):
    spec = f"npz:{modelnet_npz}"
    test = load_dataset(spec, split="test")
    train = load_dataset(spec, split="train", limit=50)
    assert len(test) == 147 and test.num_classes == 40 and test.points.shape == (147, 1024, 3)
    assert len(read_npz(modelnet_npz, "train")) == 915
    assert test.class_names[0] == "airplane" and (test.labels == 0).sum() == 100
    np.testing.assert_allclose(test.points.mean(1), 0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(test.points, axis=-1).max(1), 1, atol=1e-5)
    assert len(train) == 50 and test.normals.shape == (147, 1024, 3)


# --------------------------------------------------------------------------------------------- single files


def test_read_cloud_file_formats(tmp_path):
    cloud = np.random.default_rng(5).normal(size=(30, 6)).astype(np.float32).round(4)
    np.save(tmp_path / "a.npy", cloud)
    np.save(tmp_path / "b.npy", np.stack([cloud, cloud + 1]))
    np.savez(tmp_path / "c.npz", points=np.stack([cloud, cloud + 1]))
    (tmp_path / "d.txt").write_text("\n".join(",".join(map(str, r)) for r in cloud))
    (tmp_path / "e.xyz").write_text("30\n" + "\n".join(" ".join(map(str, r[:3])) for r in cloud))
    (tmp_path / "f.csv").write_text("x,y,z\n" + "\n".join(",".join(map(str, r[:3])) for r in cloud))
    ply = ("ply\nformat ascii 1.0\nelement vertex 30\nproperty float x\nproperty float y\nproperty float z\n"
           "end_header\n" + "\n".join(" ".join(map(str, r[:3])) for r in cloud) + "\n")
    (tmp_path / "g.ply").write_text(ply)
    for name in ("a.npy", "b.npy", "c.npz", "d.txt", "e.xyz", "f.csv", "g.ply"):
        got = read_cloud_file(tmp_path / name)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, cloud[:, :3], atol=1e-6, err_msg=name)
    np.testing.assert_allclose(read_cloud_file(tmp_path / "d.txt", num_points=7), cloud[:7, :3], atol=1e-6)
    (tmp_path / "sq.off").write_text(SQUARE_OFF)
    sq = read_cloud_file(tmp_path / "sq.off", num_points=100, seed=2)
    assert sq.shape == (100, 3) and np.allclose(sq[:, 2], 0)
    assert (sq >= -1e-7).all() and (sq <= 1 + 1e-7).all()
    np.testing.assert_array_equal(sq, read_cloud_file(tmp_path / "sq.off", num_points=100, seed=2))
    assert read_cloud_file(tmp_path / "sq.off").shape == (2048, 3)
    with pytest.raises(InvalidArgumentError, match="at most 30"):
        read_cloud_file(tmp_path / "a.npy", num_points=31)
    (tmp_path / "h.stl").write_text("solid")
    with pytest.raises(InvalidArgumentError, match=r"\.xyz"):
        read_cloud_file(tmp_path / "h.stl")
    with pytest.raises(DataError, match="zz.npy: file not found"):
        read_cloud_file(tmp_path / "zz.npy")


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_info_and_cache(tmp_path, capsys):
    src = save_dataset(_dataset(), tmp_path / "src.npz")
    assert cli_main(["data", "info", f"npz:{src}", "--points", "10", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    ds = _dataset()
    assert info["clouds"] == 6 and info["splits"] == {"train": 3, "test": 3}
    for c, name in enumerate(ds.class_names):
        assert info["per_class"][name]["total"] == int((ds.labels == c).sum())
        assert info["per_class"][name]["test"] == int(((ds.labels == c) & (ds.split == "test")).sum())
    out = tmp_path / "cache.npz"
    assert cli_main(["data", "cache", f"npz:{src}", "--points", "10", "--sampling", "fps", "--out",
                     str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    back = load_dataset(f"npz:{out}", split="all", num_points=10)
    want = load_dataset(f"npz:{src}", split="all", num_points=10, sampling="fps")
    np.testing.assert_allclose(back.points, want.points, atol=1e-6)
    np.testing.assert_array_equal(back.parts, want.parts)
    assert cli_main(["data", "info", "nope:x"]) == 2
    assert "spec: got nope:x" in capsys.readouterr().err
