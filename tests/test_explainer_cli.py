"""``pointlens explainer train|apply|evaluate``: run folders, the --json shape, and one-line errors (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pointlens.cli.main import main
from pointlens.models import create_model, save_checkpoint

DATA = "shapeparts:scene=1,n=30,classes=chair+mug+lamp"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("explainer_cli")
    torch.manual_seed(0)
    ckpt = root / "cls.pt"
    model = create_model("pointnet", 3, channels=(8, 16), head=(8,))
    save_checkpoint(ckpt, model, class_names=["chair", "mug", "lamp"])
    code = main(["explainer", "train", "--classifier", str(ckpt), "--data", DATA, "--points", "48", "--epochs", "2",
                 "--batch-size", "4", "--k", "4", "--network-option", "local=[8]", "--quiet", "--out",
                 str(root / "ex")])
    assert code == 0
    return root, ckpt


def _one_line(capsys, argv, *words):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)


def test_train_apply_evaluate(setup, capsys):
    root, ckpt = setup
    assert (root / "ex" / "explainer.pt").is_file() and (root / "ex" / "checkpoint.pt").is_file()
    capsys.readouterr()
    assert main(["explainer", "apply", "--explainer", str(root / "ex"), "--data", DATA, "--points", "48",
                 "--limit", "3", "--png", "2", "--quiet", "--out", str(root / "ap")]) == 0
    with np.load(root / "ap" / "masks.npz") as z:
        assert z["masks"].shape[:2] == (3, 3) and z["masks"].shape[2] == 48
    assert (root / "ap" / "masks_union.png").stat().st_size > 1000
    capsys.readouterr()
    assert main(["explainer", "evaluate", "--explainer", str(root / "ex"), "--data", DATA, "--points", "48",
                 "--limit", "4", "--methods", "explainer,random", "--json", "--quiet", "--out", str(root / "ev")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["all-0", "all-0.5", "all-1", "ground-truth", "explainer", "random"]
    assert all(set(v) == {"accuracy", "mae", "miou", "saliency", "class_specific"} for v in out.values())
    assert out["ground-truth"]["miou"] == 1.0 and out["ground-truth"]["mae"] == 0.0
    assert (root / "ev" / "table.csv").read_text().startswith("method,accuracy,mae,miou")
    assert "| explainer |" in (root / "ev" / "table.md").read_text()


def test_bad_input_one_line(setup, capsys, tmp_path):
    root, ckpt = setup
    _one_line(capsys, ["explainer", "evaluate", "--explainer", str(root / "ex"), "--data", DATA, "--points", "48",
                       "--methods", "explainer,magic", "--out", str(tmp_path / "e")], "magic")
    _one_line(capsys, ["explainer", "evaluate", "--explainer", str(root / "ex"), "--data", DATA, "--points", "48",
                       "--methods", "rtis", "--out", str(tmp_path / "e")], "--rtis")
    _one_line(capsys, ["explainer", "apply", "--explainer", str(tmp_path / "none"), "--data", DATA,
                       "--out", str(tmp_path / "a")], "explainer.pt")
    _one_line(capsys, ["explainer", "train", "--classifier", str(tmp_path / "missing.pt"), "--data", DATA,
                       "--points", "48", "--out", str(tmp_path / "t")], "missing.pt")
    _one_line(capsys, ["explainer", "train", "--classifier", str(ckpt), "--data", DATA, "--points", "48",
                       "--weight", "bogus=1", "--out", str(tmp_path / "t")], "weights")
    _one_line(capsys, ["explainer", "train", "--classifier", str(ckpt), "--data", "shapeparts:scene=1,n=30",
                       "--points", "48", "--out", str(tmp_path / "t")], "classes")
    _one_line(capsys, ["explainer", "train", "--classifier", str(ckpt), "--data", DATA, "--points", "48",
                       "--resume", "--out", str(tmp_path / "fresh")], "--resume")
