"""Hostile data files through the readers and the CLI (issue 15): every category of the report gives exit 2 and
exactly one line on stderr naming the file -- or, where the input is valid after all (one-hot labels, integral
float labels), the correct result."""

from __future__ import annotations

import json
import logging
import warnings
import zipfile

import h5py
import numpy as np
import pytest

from pointlens.cli.main import main as cli_main
from pointlens.data import load_dataset, read_cloud_file, read_mesh, read_npz
from pointlens.errors import DataError, PointlensError
from pointlens.models import create_model, save_checkpoint

RNG = np.random.default_rng(0)
M, N = 6, 32


def _pts(m=M, n=N):
    return RNG.normal(size=(m, n, 3)).astype(np.float32)


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def _huge_npy_bytes(shape=(2**20, 2**20, 3), dtype="<f4") -> bytes:
    """An .npy whose header declares ``shape`` (11 TiB by default) followed by 64 bytes of data."""
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode()
    header += b" " * ((64 - (10 + len(header) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\0" * 64


def _h5_folder(root, data=None, label=None, *, names=None, normal=None, group=False):
    root.mkdir(parents=True, exist_ok=True)
    with h5py.File(root / "ply_data_train0.h5", "w") as h:
        if group:
            h.create_group("data").create_dataset("x", data=_pts())
        else:
            h["data"] = _pts() if data is None else data
        h["label"] = (np.arange(M) % 3).astype(np.uint8)[:, None] if label is None else label
        if normal is not None:
            h["normal"] = normal
    (root / "train_files.txt").write_text("ply_data_train0.h5\n")
    (root / "shape_names.txt").write_bytes(b"a\nb\nc\n" if names is None else names)
    return root


def _one_line_refusal(capfd, argv, *needles):
    """Run the CLI in-process; assert exit 2, exactly one stderr line, no Python warning or log record."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = cli_main(argv)
    err = capfd.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert not [w for w in caught if "pointlens" not in str(w.filename)], [str(w.message) for w in caught]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def ckpt3(tmp_path_factory):
    """A tiny 3-class PointNet checkpoint (untrained: only the plumbing is tested)."""
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    model = create_model("pointnet", 3, channels=(8, 16), head=(8,))
    save_checkpoint(path, model, class_names=["a", "b", "c"])
    return path


# ---------------------------------------------------------------------------------------- hostile files

def _cases(tmp):
    """(name, spec, needle) for every category of the report that a data spec reaches."""
    t = tmp
    labels = np.arange(M) % 3
    cases = []

    def add(name, spec, needle):
        cases.append((name, spec, needle))

    p = t / "huge.npz"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("points.npy", _huge_npy_bytes())
        zf.writestr("labels.npy", _huge_npy_bytes((M,), "<i8"))
    add("npz huge declared shape", f"npz:{p}", "declares shape")
    h = _h5_folder(t / "h5huge", data=None)
    with h5py.File(h / "ply_data_train0.h5", "a") as f:
        del f["data"]
        f.create_dataset("data", shape=(2**20, 2**20, 3), dtype="f4", chunks=(1, 1024, 3))
    add("h5 huge declared shape", f"modelnet40-h5:{h}", "declares shape")
    h = _h5_folder(t / "h5names", names=b"a\nb\xff\xfe\nc\n")
    add("h5 non-UTF-8 class names", f"modelnet40-h5:{h}", "line 2 is not UTF-8")
    h = _h5_folder(t / "h5flip")
    raw = bytearray((h / "ply_data_train0.h5").read_bytes())
    for i in range(0, 800, 7):  # flip bits across the superblock and object headers
        raw[i] ^= 0x5A
    (h / "ply_data_train0.h5").write_bytes(bytes(raw))
    add("bit-flipped h5", f"modelnet40-h5:{h}", "ply_data_train0.h5")
    add("h5 data as a group", f"modelnet40-h5:{_h5_folder(t / 'h5group', group=True)}", "is a group")
    add("h5 normals of the wrong shape",
        f"modelnet40-h5:{_h5_folder(t / 'h5nrm', normal=_pts(M, N - 1))}", "'normal' has shape")
    add("h5 float labels", f"modelnet40-h5:{_h5_folder(t / 'h5fl', label=labels + 0.5)}", "non-integral")
    add("h5 label 2^62", f"modelnet40-h5:{_h5_folder(t / 'h5big', label=np.full(M, 2**62))}", "class index")
    add("npz label 2^62", f"npz:{_npz(t / 'big.npz', points=_pts(), labels=np.full(M, 2**62))}", "class index")
    add("npz float labels", f"npz:{_npz(t / 'fl.npz', points=_pts(), labels=labels + 0.25)}", "non-integral")
    add("npz datetime64 points",
        f"npz:{_npz(t / 'dt.npz', points=np.zeros((M, N, 3), 'datetime64[D]'), labels=labels)}", "datetimes")
    add("npz bytes points", f"npz:{_npz(t / 'by.npz', points=np.array([b'x' * 9] * M), labels=labels)}",
        "bytes")
    obj = np.empty((M, N, 3), dtype=object)
    obj.fill(1.0)
    add("npz object points", f"npz:{_npz(t / 'ob.npz', points=obj, labels=labels)}", "Python objects")
    rec = np.zeros((M, N), dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    add("npz structured points", f"npz:{_npz(t / 'st.npz', points=rec, labels=labels)}", "structured")
    add("npz bytes labels", f"npz:{_npz(t / 'bl.npz', points=_pts(), labels=np.array([b'a'] * M))}", "bytes")
    mh = np.eye(3)[labels]
    mh[2, 1] = np.nan
    add("npz NaN in multi-hot labels", f"npz:{_npz(t / 'mh.npz', points=_pts(), labels=mh)}", "NaN")
    add("npz class_names='abc'",
        f"npz:{_npz(t / 'abc.npz', points=_pts(), labels=labels, class_names=np.array('abc'))}", "1-D list")
    add("npz class_names=5",
        f"npz:{_npz(t / 'five.npz', points=_pts(), labels=labels, class_names=np.array(5))}", "class_names")
    p = _npz(t / "nu.npz", points=_pts(), labels=labels, class_names=np.array([b"a", b"\xff", b"c"]))
    add("npz non-UTF-8 class names", f"npz:{p}", "not UTF-8")
    add("npz normals of the wrong shape",
        f"npz:{_npz(t / 'nrm.npz', points=_pts(), labels=labels, normals=_pts(M, N)[..., :2])}", "'normals'")
    add("npz gt_mask of the wrong shape",
        f"npz:{_npz(t / 'gt.npz', points=_pts(), labels=labels, gt_mask=np.ones((M, N + 1), bool))}", "'gt_mask'")
    add("npz parts of the wrong shape",
        f"npz:{_npz(t / 'pa.npz', points=_pts(), labels=labels, parts=np.ones((M,), int))}", "'parts'")
    add("npz (3, N) points",
        f"npz:{_npz(t / 'tr.npz', points=_pts(1, 500)[0].T.copy(), labels=labels[:1])}", "channels-first")
    add("npz truncated", f"npz:{t / 'trunc.npz'}", "trunc.npz")
    data = (t / "fl.npz").read_bytes()
    (t / "trunc.npz").write_bytes(data[: len(data) // 2])
    # text folders
    for name, body, needle in [("txt NUL bytes", b"1,2,3\n4,5\x00,6\n7,8,9\n", "line 2 contains a NUL byte"),
                               ("txt empty field", b"1,2,3\n1,,2,3,,4\n7,8,9\n", "line 2 has an empty field"),
                               ("txt not UTF-8", b"1,2,3\n4,5,6\n\xff\xfe,1,1\n", "line 3 is not UTF-8")]:
        root = t / name.replace(" ", "_")
        (root / "cube").mkdir(parents=True)
        (root / "modelnet40_shape_names.txt").write_text("cube\n")
        (root / "modelnet40_train.txt").write_text("cube_0001\n")
        (root / "modelnet40_test.txt").write_text("cube_0001\n")
        (root / "cube" / "cube_0001.txt").write_bytes(body)
        add(name, f"modelnet40-txt:{root}", needle)
    root = t / "txtnames"
    (root / "cube").mkdir(parents=True)
    (root / "modelnet40_shape_names.txt").write_bytes(b"cu\xc3be\n")
    (root / "modelnet40_train.txt").write_text("cube_0001\n")
    add("txt non-UTF-8 class names", f"modelnet40-txt:{root}", "line 1 is not UTF-8")
    # meshes
    tri = "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n" \
          "element face 1\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n1 0 0\n0 1 0\n"
    for name, suffix, body, needle in [
        ("PLY face index out of range", ".ply", tri + "3 0 1 7\n", "vertex index 7"),
        ("PLY face index -1", ".ply", tri + "3 0 1 -1\n", "vertex index -1"),
        ("PLY huge vertex count", ".ply", tri.replace("vertex 3", "vertex 99999999999") + "3 0 1 2\n",
         "declares"),
        ("OBJ face index out of range", ".obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n", "ex"),
        ("OFF negative counts", ".off", "OFF\n-3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n", "counts must be >= 0"),
        ("OFF face index out of range", ".off", "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 3\n", "vertex index 3"),
        ("OFF negative face index", ".off", "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 -1\n", "vertex index -1"),
    ]:
        root = t / name.replace(" ", "_")
        (root / "tri").mkdir(parents=True)
        (root / "tri" / f"m{suffix}").write_text(body)
        add(name, f"meshes:{root}", needle)
    return cases


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return _cases(tmp_path_factory.mktemp("hostile"))


def test_every_category_is_refused_in_one_line_by_data_info(cases, capfd):
    assert len(cases) == 35
    for name, spec, needle in cases:
        line = _one_line_refusal(capfd, ["data", "info", spec, "--points", "8"], needle)
        path = spec.split(":", 1)[1]
        assert path.split("/")[-1] in line or path in line, (name, line)


def test_the_refusals_are_the_same_through_evaluate_explain_and_train(cases, ckpt3, capfd, tmp_path):
    for _, spec, needle in cases[::5]:  # every fifth category through the three other commands
        split = ["--split", "all"]
        _one_line_refusal(capfd, ["evaluate", "--checkpoint", str(ckpt3), "--data", spec, "--points", "8",
                                  *split, "--quiet"], needle)
        _one_line_refusal(capfd, ["explain", "--method", "gradient", "--checkpoint", str(ckpt3), "--data", spec,
                                  "--points", "8", *split, "--out", str(tmp_path / "ex"), "--quiet"], needle)
        _one_line_refusal(capfd, ["train", "--data", spec, "--limit", "2", "--points", "8", "--epochs", "1",
                                  *split, "--out", str(tmp_path / "tr"), "--quiet"], needle)


def test_no_logging_record_escapes_a_refusal(cases, caplog):
    caplog.set_level(logging.DEBUG)
    for _, spec, _ in cases:
        with pytest.raises(PointlensError):
            load_dataset(spec, split="all", num_points=8)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# ------------------------------------------------------------------------------------ valid after all

def test_one_hot_h5_labels_are_read_as_class_indices(tmp_path, capfd):
    labels = np.array([2, 0, 1, 1, 0, 2])
    root = _h5_folder(tmp_path / "onehot", label=np.eye(3, dtype=np.uint8)[labels])
    ds = load_dataset(f"modelnet40-h5:{root}", split="train", num_points=N, normalize=False)
    np.testing.assert_array_equal(ds.labels, labels)
    assert ds.labels.dtype == np.int64 and ds.num_classes == 3
    assert cli_main(["data", "info", f"modelnet40-h5:{root}", "--points", "8", "--split", "train", "--json"]) == 0
    out = json.loads(capfd.readouterr().out)
    assert {k: v["total"] for k, v in out["per_class"].items()} == {"a": 2, "b": 2, "c": 2}


def test_integral_float_labels_and_multi_hot_rows_are_kept_exactly(tmp_path):
    labels = np.array([2, 0, 1, 1, 0, 2])
    ds = read_npz(_npz(tmp_path / "f.npz", points=_pts(), labels=labels.astype(np.float64)), split="all")
    np.testing.assert_array_equal(ds.labels, labels)
    mh = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [0, 0, 0], [1, 1, 1]], dtype=np.float64)
    ds = read_npz(_npz(tmp_path / "m.npz", points=_pts(), labels=mh), split="all")
    assert ds.multilabel and ds.labels.dtype == np.float32
    np.testing.assert_array_equal(ds.labels, mh)
    assert ds.class_names == ["class_0", "class_1", "class_2"]


def test_npy_checks_run_before_allocation(tmp_path):
    p = tmp_path / "huge.npy"
    p.write_bytes(_huge_npy_bytes())
    with pytest.raises(DataError, match="declares shape"):
        read_cloud_file(p)
    np.save(tmp_path / "t.npy", _pts(1, 500)[0].T)
    with pytest.raises(DataError, match="channels-first"):
        read_cloud_file(tmp_path / "t.npy")
    np.save(tmp_path / "dt.npy", np.zeros((10, 3), "datetime64[s]"))
    with pytest.raises(DataError, match="datetimes"):
        read_cloud_file(tmp_path / "dt.npy")
    good = _pts(2, 50)
    np.save(tmp_path / "g.npy", good)
    np.testing.assert_array_equal(read_cloud_file(tmp_path / "g.npy"), good[0])


def test_obj_relative_negative_indices_are_valid_but_out_of_range_ones_are_not(tmp_path):
    p = tmp_path / "rel.obj"
    p.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf -3 -2 -1\n")  # OBJ's relative indices: the last three vertices
    v, f = read_mesh(p)
    np.testing.assert_array_equal(f, [[0, 1, 2]])
    p.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf -3 -2 -9\n")
    with pytest.raises(DataError):
        read_mesh(p)


def test_limit_never_changes_the_class_count(tmp_path):
    labels = np.array([0, 0, 0, 1, 2, 4])  # the first three clouds hold only class 0
    p = _npz(tmp_path / "c.npz", points=_pts(), labels=labels)
    ds = load_dataset(f"npz:{p}", split="all", num_points=8, limit=3)
    assert len(ds) == 3 and ds.num_classes == 5


def test_text_parsing_is_strict_but_keeps_headers_and_comments(tmp_path):
    p = tmp_path / "c.xyz"
    p.write_text("4\nheader line\n0 0 0  # origin\n1,2,3\n4 5 6\n7, 8, 9\n")
    np.testing.assert_array_equal(read_cloud_file(p), [[0, 0, 0], [1, 2, 3], [4, 5, 6], [7, 8, 9]])
