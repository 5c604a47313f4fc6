"""`pointlens maximize` / `pointlens autoencoder train` through the CLI: outputs, --json shapes, and bad input as one
stderr line with exit 2 (unknown class or layer with close matches, too few real instances, wrong AE points)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cli_helpers import expect_one_line, run_cli
from pointlens.models import create_model, save_checkpoint

N = 32


@pytest.fixture
def setup(tmp_path):
    rng = np.random.default_rng(0)
    m = 18
    labels = np.arange(m) % 3
    labels[-1] = 0                         # class 'bench' (2) gets 5 instances, 'chair' 7, 'airplane' 6
    pts = rng.uniform(-1, 1, size=(m, N, 3)).astype(np.float32)
    pts[labels == 1] *= 0.5
    data = tmp_path / "d.npz"
    np.savez(data, points=pts, labels=labels, class_names=np.array(["chair", "airplane", "bench"]),
             split=np.array(["train"] * m))
    torch.manual_seed(0)
    paths = {}
    for name in ("model", "ref"):
        model = create_model("pointnet", 3, channels=(8, 16), head=(8,))
        paths[name] = tmp_path / f"{name}.pt"
        save_checkpoint(paths[name], model, class_names=["chair", "airplane", "bench"])
    base = ["maximize", "--checkpoint", str(paths["model"]), "--data", f"npz:{data}", "--points", str(N),
            "--samples", "2", "--steps", "3", "--quiet"]
    return tmp_path, data, paths, base


def test_autoencoder_then_all_methods_write_every_output(capsys, setup):
    tmp, data, paths, base = setup
    code, err, out = run_cli(capsys, ["autoencoder", "train", "--data", f"npz:{data}", "--points", str(N),
                                      "--epochs", "1", "--batch-size", "4", "--out", str(tmp / "ae"), "--json",
                                      "--quiet"])
    assert code == 0, err
    assert json.loads(out)["epochs"] == 1
    argv = base + ["--method", "naive,generative,flow", "--classes", "bench", "--autoencoder", str(tmp / "ae"),
                   "--reference", str(paths["ref"]), "--out", str(tmp / "am"), "--json"]
    code, err, out = run_cli(capsys, argv)
    assert code == 0, err
    got = json.loads(out)
    assert set(got) == {"naive", "generative", "flow"}
    for per in got.values():
        assert set(per) == {"bench"}
        for v in per.values():
            assert set(v) == {"success", "chamfer", "fid", "m_is", "pcams", "diversity"}
            assert v["chamfer"] > 0 and v["fid"] >= 0 and v["m_is"] >= 1 - 1e-9
    z = np.load(tmp / "am" / "clouds.npz")
    assert z["flow_clouds"].shape == (2, N, 3) and z["generative_nearest_real"].shape == (2, N, 3)
    for f in ("gallery_naive.png", "gallery_flow.png", "gallery_generative.png", "metrics.json", "report.md"):
        assert (tmp / "am" / f).is_file(), f
    assert list((tmp / "am" / "flow_cache").glob("flow_*.pt"))


def test_sanity_curves_json(capsys, setup):
    tmp, _, _, base = setup
    code, err, out = run_cli(capsys, base + ["--method", "naive,flow", "--classes", "airplane", "--sanity",
                                             "--sanity-steps", "2", "--out", str(tmp / "s"), "--json"])
    assert code == 0, err
    curves = json.loads(out)
    assert set(curves) == {"naive", "flow"}
    assert list(curves["naive"]) == ["head.1", "features.0.conv"]    # first and last cascading step
    assert all(v >= 0 for c in curves.values() for v in c.values())
    assert (tmp / "s" / "sanity.png").is_file()
    assert json.loads((tmp / "s" / "sanity.json").read_text()) == curves


def test_bad_inputs_one_line_exit_2(capsys, setup, tmp_path):
    tmp, data, _, base = setup
    out = ["--out", str(tmp / "x")]
    expect_one_line(capsys, base + ["--classes", "chiar"] + out, "--classes", "did you mean chair")
    expect_one_line(capsys, base + ["--flow-layers", "featurs.1"] + out, "--flow-layers", "did you mean features.1")
    expect_one_line(capsys, base + ["--method", "flw"] + out, "--method", "did you mean flow")
    expect_one_line(capsys, base + ["--classes", "bench", "--k", "6"] + out, "bench", "5 real instance", "--k 5")
    expect_one_line(capsys, base + ["--option", "continuty=3"] + out, "--option", "did you mean continuity")
    expect_one_line(capsys, base + ["--method", "generative"] + out, "--autoencoder")
    code, err, _ = run_cli(capsys, ["autoencoder", "train", "--data", f"npz:{data}", "--points", "16", "--epochs",
                                    "1", "--batch-size", "4", "--out", str(tmp / "ae16"), "--quiet"])
    assert code == 0, err
    expect_one_line(capsys, base + ["--method", "generative", "--autoencoder", str(tmp / "ae16")] + out,
                    "decodes 16 points", f"--points {N}")
