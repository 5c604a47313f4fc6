"""Bad input ends with one clear line on stderr and exit status 2, never a traceback (issue 2, line 6)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from cli_helpers import expect_one_line
from pointlens.models import create_model, save_checkpoint


@pytest.fixture
def ckpt2(tmp_path):
    torch.manual_seed(0)
    model = create_model("pointnet", 2, channels=(8, 16), head=(8,))
    path = tmp_path / "two_classes.pt"
    save_checkpoint(path, model, class_names=["a", "b"])
    return path


def write_npz(path, m=6, n=32, classes=3, nan=False):
    pts = np.random.default_rng(0).normal(size=(m, n, 3)).astype(np.float32)
    if nan:
        pts[2, 5, 1] = np.nan
    np.savez(path, points=pts, labels=np.arange(m) % classes, class_names=np.array([f"c{i}" for i in range(classes)]))
    return path


def test_missing_files(capsys, tmp_path, ckpt2):
    expect_one_line(capsys, ["evaluate", "--checkpoint", str(tmp_path / "nope.pt"), "--data",
                             f"npz:{write_npz(tmp_path / 'd.npz', classes=2)}", "--split", "all", "--points", "16"],
                    "nope.pt")
    expect_one_line(capsys, ["evaluate", "--checkpoint", str(ckpt2), "--data", f"npz:{tmp_path / 'missing.npz'}"],
                    "missing.npz", "not found")


def test_truncated_npz_and_h5(capsys, tmp_path, ckpt2):
    good = write_npz(tmp_path / "good.npz", classes=2)
    (tmp_path / "cut.npz").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    expect_one_line(capsys, ["evaluate", "--checkpoint", str(ckpt2), "--data", f"npz:{tmp_path / 'cut.npz'}",
                             "--split", "all", "--points", "16"], "cut.npz")
    h5dir = tmp_path / "h5"
    h5dir.mkdir()
    with h5py.File(h5dir / "ply_data_test0.h5", "w") as h:
        h["data"] = np.zeros((4, 64, 3), np.float32)
        h["label"] = np.zeros((4, 1), np.int64)
    raw = (h5dir / "ply_data_test0.h5").read_bytes()
    (h5dir / "ply_data_test0.h5").write_bytes(raw[: len(raw) // 2])
    (h5dir / "test_files.txt").write_text("data/modelnet40_ply_hdf5_2048/ply_data_test0.h5\n")
    expect_one_line(capsys, ["evaluate", "--checkpoint", str(ckpt2), "--data", f"modelnet40-h5:{h5dir}",
                             "--points", "16"], "ply_data_test0.h5")


def test_off_without_faces(capsys, tmp_path, ckpt2):
    d = tmp_path / "meshes" / "box"
    d.mkdir(parents=True)
    (d / "box_0001.off").write_text("OFF\n3 0 0\n0 0 0\n1 0 0\n0 1 0\n")
    expect_one_line(capsys, ["evaluate", "--checkpoint", str(ckpt2), "--data", f"meshes:{tmp_path / 'meshes'}",
                             "--split", "all", "--points", "16"], "box_0001.off")


def test_checkpoint_of_another_class_count(capsys, tmp_path, ckpt2):
    err = expect_one_line(capsys, ["evaluate", "--checkpoint", str(ckpt2), "--data",
                                   f"npz:{write_npz(tmp_path / 'three.npz', classes=3)}", "--split", "all",
                                   "--points", "16"], "2 classes", "3")
    assert "--checkpoint" in err


def test_nan_coordinates(capsys, tmp_path, ckpt2):
    expect_one_line(capsys, ["evaluate", "--checkpoint", str(ckpt2), "--data",
                             f"npz:{write_npz(tmp_path / 'nan.npz', classes=2, nan=True)}", "--split", "all",
                             "--points", "16"], "NaN")


def test_not_a_plain_checkpoint(capsys, tmp_path):
    bad = tmp_path / "random.pt"
    bad.write_bytes(np.random.default_rng(0).bytes(1000))
    expect_one_line(capsys, ["evaluate", "--checkpoint", str(bad), "--data",
                             f"npz:{write_npz(tmp_path / 'd.npz', classes=2)}", "--split", "all", "--points", "16"],
                    "random.pt")


@pytest.mark.parametrize("command", [["train", "--out", "OUT"], ["demo", "--out", "OUT"],
                                     ["recon", "run", "--quick", "--out", "OUT"]])
def test_bad_device_is_one_line(capsys, tmp_path, command):
    argv = [str(tmp_path / "run") if a == "OUT" else a for a in command] + ["--device", "gpu"]
    expect_one_line(capsys, argv, "--device", "gpu")
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_stochastic_scores_do_not_depend_on_batching_or_order():
    """A cloud gets the same random / RISE scores alone, inside a batch, or after other clouds."""
    from pointlens.attribution import create_attribution

    torch.manual_seed(0)
    model = create_model("pointnet", 3, channels=(8, 16), head=(8,)).eval()
    x = torch.rand(5, 40, 3)
    for name, opts in (("random", {}), ("rise", {"n_masks": 16})):
        method = create_attribution(name, model, seed=3, **opts)
        together = method.attribute(x, target=0)
        alone = torch.cat([method.attribute(x[i:i + 1], target=0) for i in range(5)])
        reordered = method.attribute(x.flip(0), target=0).flip(0)
        torch.testing.assert_close(together, alone)
        torch.testing.assert_close(together, reordered)
        assert not torch.allclose(together, create_attribution(name, model, seed=4, **opts).attribute(x, target=0))


@pytest.mark.parametrize("argv", [
    ["explain", "--method", "pointshift", "--checkpoint", "x.pt"],
    ["drop", "--methods", "pointshift", "--checkpoint", "x.pt"],
    ["benchmark", "--checkpoint", "x.pt"],
    ["maximize", "--method", "flow", "--checkpoint", "x.pt"],
    ["autoencoder", "train", "--points", "64"],
])
def test_point_only_commands_refuse_image_data_in_one_line(capsys, tmp_path, argv):
    # refused from the spec alone, before the (missing) checkpoint is opened
    err = expect_one_line(capsys, argv + ["--data", "digitscenes:n=20,size=32", "--out", str(tmp_path / "o")],
                          "--data", "point-cloud data", "pointlens explainer")
    assert f"pointlens {argv[0]}" in err
