"""``pointlens explainer train|apply|evaluate`` on image data (digitscenes): the same commands as for clouds, the
default network follows the modality, PNG overlays, the report section, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cli_helpers import expect_one_line
from pointlens.cli.main import main
from pointlens.models import create_model, save_checkpoint

DATA = "digitscenes:n=40,size=32,seed=3"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("explainer_images_cli")
    torch.manual_seed(0)
    ckpt = root / "cnn.pt"
    save_checkpoint(ckpt, create_model("cnn", 10, channels=(8, 8, 8)), class_names=[str(d) for d in range(10)])
    for name, extra in (("ex", []), ("rt", ["--objective", "rtis", "--fill", "blur"])):
        code = main(["explainer", "train", "--classifier", str(ckpt), "--data", DATA, "--epochs", "1",
                     "--batch-size", "8", "--network-option", "width=4", "--quiet", "--out", str(root / name),
                     *extra])
        assert code == 0
    return root, ckpt


def test_train_apply_evaluate_images(setup, capsys):
    root, ckpt = setup
    cfg = json.loads((root / "ex" / "metrics.json").read_text())
    assert cfg["modality"] == "image" and cfg["network"] == "unet"  # the default network follows the data
    assert main(["explainer", "apply", "--explainer", str(root / "ex"), "--data", DATA, "--limit", "3", "--png", "2",
                 "--points", "7", "--quiet", "--out", str(root / "ap")]) == 0  # --points is ignored for images
    with np.load(root / "ap" / "masks.npz") as z:
        assert z["masks"].shape == (3, 10, 32, 32) and z["images"].shape == (3, 3, 32, 32)
        assert z["present"].shape == (3, 10)
    assert (root / "ap" / "overlays.png").stat().st_size > 1000
    capsys.readouterr()
    assert main(["explainer", "evaluate", "--explainer", str(root / "ex"), "--rtis", str(root / "rt"), "--data",
                 DATA, "--limit", "4", "--methods", "explainer,rtis", "--png", "1", "--json", "--quiet", "--out",
                 str(root / "ev")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["all-0", "all-0.5", "all-1", "ground-truth", "explainer", "rtis"]
    assert out["ground-truth"]["miou"] == 1.0 and out["ground-truth"]["mae"] == 0.0
    assert (root / "ev" / "overlays_0.png").stat().st_size > 1000
    assert "overlays_0.png" in (root / "ev" / "report.md").read_text()
    page = (root / "ev" / "report.html").read_text()
    assert "Trained explainer masks" in page and "overlays_0.png" in page and "Explanation benchmark" not in page


def test_image_bad_input_one_line(setup, capsys, tmp_path):
    root, ckpt = setup
    expect_one_line(capsys, ["explainer", "train", "--classifier", str(ckpt), "--data", DATA, "--network",
                             "pointnet-seg", "--out", str(tmp_path / "t")], "--network", "unet")
    expect_one_line(capsys, ["explainer", "evaluate", "--explainer", str(root / "ex"), "--data", DATA,
                             "--methods", "explainer,pointshift", "--out", str(tmp_path / "e")], "pointshift")
    expect_one_line(capsys, ["explainer", "apply", "--explainer", str(root / "ex"), "--data",
                             "shapeparts:scene=1,n=30,classes=chair+mug+lamp", "--out", str(tmp_path / "a")],
                    "--data", "image")
    expect_one_line(capsys, ["explainer", "train", "--classifier", str(ckpt), "--data", "digitscenes:n=40,size=36",
                             "--out", str(tmp_path / "t2")], "divisible")
