"""The ``pointlens explain`` and ``pointlens drop`` commands.

The first tests replace the checkpoint/data loaders and the attribution factory with a toy model whose
evidence is known (so the numbers on stdout can be checked exactly); the last ones run the real loaders,
models and attributions end to end (ShapeParts, and the real ModelNet40 subset when ../shared/data is
present).
"""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from pointlens.cli.main import main
from pointlens.data.dataset import PointCloudDataset

N = 40
SPIKES = 4


class MaxX(nn.Module):
    """Class 1 iff the largest x exceeds 0.75; ``classes`` > 2 pads with constant logits."""

    def __init__(self, classes=2):
        super().__init__()
        self.classes = classes

    def forward(self, points):
        m = points[..., 0].max(dim=1).values
        out = torch.stack([0.75 - m, m - 0.75], dim=1) * 4.0
        if self.classes > 2:
            out = torch.cat([out, torch.full((len(m), self.classes - 2), -100.0)], dim=1)
        return out


class XScore:
    """A fake attribution: score = x coordinate (the toy model's evidence)."""

    def __init__(self):
        self.targets = []

    def attribute(self, points, target=None):
        self.targets.append(target)
        return points[..., 0].clone()


def toy_dataset(m=10):
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(m, N, 3, generator=g) - 0.5
    labels = torch.arange(m) % 2
    for i in range(1, m, 2):
        pts[i, torch.randperm(N, generator=g)[:SPIKES], 0] = 1.2
    return PointCloudDataset(points=pts.numpy(), labels=labels.numpy(), class_names=["flat", "spiky"])


@pytest.fixture
def fake(monkeypatch):
    """Patch the loaders and the method factory; returns a namespace to tweak the fakes."""
    import pointlens.attribution.registry as registry
    import pointlens.cli.common as common_cli

    state = SimpleNamespace(model=MaxX(), dataset=toy_dataset(), scorer=XScore(),
                            class_names=["flat", "spiky"])
    monkeypatch.setattr(common_cli, "load_checkpoint_for",
                        lambda args: SimpleNamespace(model=state.model, class_names=state.class_names,
                                                     config={}, meta={}))
    monkeypatch.setattr(common_cli, "load_data_for", lambda args, modalities=None: state.dataset)

    class XScoreMethod:  # registered like a real method: the CLI resolves every name through the registry
        def __new__(cls, model, **options):
            return state.scorer

    monkeypatch.setitem(registry._REGISTRY, "xscore", XScoreMethod)
    return state


def run_cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


DROP = ["drop", "--checkpoint", "fake.pt", "--data", "fake", "--points", N, "--quiet"]


def test_drop_json_output_and_files(fake, capsys, tmp_path):
    rc, out, err = run_cli(capsys, *DROP, "--methods", "xscore,random", "--budgets", "0,2,4,8",
                           "--per-step", "2", "--json", "--out", tmp_path)
    assert rc == 0, err
    curves = json.loads(out)  # nothing but the JSON object on stdout
    assert list(curves) == ["xscore-high", "xscore-low", "random-high", "random-low"]
    for curve in curves.values():
        assert list(curve) == ["0", "2", "4", "8"]
        assert curve["0"] == 1.0
    assert curves["xscore-high"] == {"0": 1.0, "2": 1.0, "4": 0.5, "8": 0.5}
    assert curves["xscore-low"] == {"0": 1.0, "2": 1.0, "4": 1.0, "8": 1.0}
    # The fake attribution was re-run on the shrinking cloud with the TRUE labels as target.
    assert all(torch.equal(t.cpu(), torch.from_numpy(fake.dataset.labels)) for t in fake.scorer.targets)
    assert len(fake.scorer.targets) == 2 * 4  # 2 modes x 4 steps x 1 batch
    assert json.loads((tmp_path / "curves.json").read_text()) == curves
    rows = list(csv.DictReader((tmp_path / "curves.csv").open()))
    assert len(rows) == 16 and set(rows[0]) == {"curve", "method", "mode", "budget", "accuracy"}
    assert {(r["curve"], r["budget"]): float(r["accuracy"]) for r in rows}[("xscore-high", "4")] == 0.5
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["curves"] == curves and metrics["n"] == 10 and metrics["per_step"] == 2
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["command"] == "drop" and config["arguments"]["budgets"] == "0,2,4,8"
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "dropped.npz").exists()


def test_drop_same_seed_same_numbers_and_saved_clouds(fake, capsys, tmp_path):
    args = [*DROP, "--methods", "random", "--mode", "high", "--budgets", "0,5,11", "--per-step", "3",
            "--save-clouds", "--json"]
    rc, out1, _ = run_cli(capsys, *args, "--out", tmp_path / "a", "--seed", "3")
    rc2, out2, _ = run_cli(capsys, *args, "--out", tmp_path / "b", "--seed", "3")
    assert rc == rc2 == 0 and out1 == out2
    a, b = np.load(tmp_path / "a" / "dropped.npz"), np.load(tmp_path / "b" / "dropped.npz")
    assert a["random-high_11"].shape == (10, N - 11, 3)
    assert a["random-high_0"].shape == (10, N, 3)
    np.testing.assert_array_equal(a["random-high_removed"], b["random-high_removed"])
    # The saved clouds are the original clouds without the removed points.
    pts = fake.dataset.points
    np.testing.assert_array_equal(a["random-high_11"],
                                  np.take_along_axis(pts, a["random-high_11_kept"][..., None], 1))
    for i in range(10):
        assert set(a["random-high_removed"][i]) | set(a["random-high_11_kept"][i]) == set(range(N))


@pytest.mark.parametrize("extra, needle", [
    (["--budgets", "10,5"], "--budgets"),
    (["--budgets", "0,-5"], "--budgets"),
    (["--budgets", "0,a"], "--budgets"),
    (["--budgets", f"0,{N}"], "at least one point must remain"),
    (["--per-step", "0"], "--per-step"),
    (["--methods", "xscore,nope"], "random, xscore"),  # the registry's names, listed
    (["--methods", "xscore,xscore"], "each method once"),
    (["--methods", "xscore", "--score-once", "random"], "--score-once"),
])
def test_drop_bad_arguments_exit_2_with_one_line(fake, capsys, tmp_path, extra, needle):
    args = [*DROP, "--methods", "xscore", "--budgets", "0,4", "--out", tmp_path / "o"]
    rc, out, err = run_cli(capsys, *args, *extra)
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err
    assert err.startswith("pointlens drop: error:")


def test_class_count_mismatch_is_one_clear_error(fake, capsys, tmp_path):
    fake.model = MaxX(classes=3)
    fake.class_names = ["a", "b", "c"]
    for argv in ([*DROP, "--methods", "random", "--budgets", "0,2"],
                 ["explain", "--method", "xscore", "--checkpoint", "fake.pt", "--data", "fake", "--quiet"]):
        rc, out, err = run_cli(capsys, *argv, "--out", tmp_path / "o")
        assert rc == 2 and out == ""
        assert len(err.strip().splitlines()) == 1
        assert "predicts 3 classes" in err and "has 2 classes" in err


def test_explain_writes_scores_renders_and_metrics(fake, capsys, tmp_path):
    rc, out, err = run_cli(capsys, "explain", "--method", "xscore", "--checkpoint", "fake.pt",
                           "--data", "fake", "--points", N, "--target", "true", "--renders", "3", "--json",
                           "--quiet", "--out", tmp_path)
    assert rc == 0, err
    metrics = json.loads(out)
    assert metrics["method"] == "xscore" and metrics["n"] == 10 and metrics["target"] == "true"
    assert metrics["clean_accuracy"] == 1.0 and metrics["time_s"] >= 0
    z = np.load(tmp_path / "scores.npz")
    assert set(z.files) == {"points", "scores", "labels", "predictions", "target", "class_names"}
    assert list(z["class_names"]) == list(fake.dataset.class_names)  # for the report's titles
    np.testing.assert_array_equal(z["scores"], fake.dataset.points[..., 0])
    np.testing.assert_array_equal(z["target"], fake.dataset.labels)
    np.testing.assert_array_equal(z["predictions"], fake.dataset.labels)
    assert (tmp_path / "scores.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    assert json.loads((tmp_path / "config.json").read_text())["command"] == "explain"
    assert "xscore" in (tmp_path / "report.html").read_text()  # the report, written by cli/main after the run


def test_explain_targets_and_errors(fake, capsys, tmp_path):
    base = ["explain", "--checkpoint", "fake.pt", "--data", "fake", "--quiet", "--renders", "0"]
    rc, _, err = run_cli(capsys, *base, "--method", "xscore", "--target", "1", "--out", tmp_path / "a")
    assert rc == 0, err
    assert fake.scorer.targets[-1] == 1
    assert np.load(tmp_path / "a" / "scores.npz")["target"].tolist() == [1] * 10
    assert not (tmp_path / "a" / "scores.png").exists()
    rc, _, _ = run_cli(capsys, *base, "--method", "xscore", "--out", tmp_path / "b")
    assert rc == 0 and fake.scorer.targets[-1] is None
    for extra, needle in ((["--method", "nope"], "xscore"),
                          (["--method", "xscore", "--target", "5"], "[0, 1]"),
                          (["--method", "xscore", "--target", "best"], "--target"),
                          (["--method", "xscore", "--option", "novalue"], "--option")):
        rc, out, err = run_cli(capsys, *base, *extra, "--out", tmp_path / "c")
        assert rc == 2 and out == "" and needle in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------------- end to end
def _need_real_modules():
    import pointlens.data as data
    import pointlens.models as models

    return models, data


def test_end_to_end_on_shapeparts(capsys, tmp_path):
    models, data = _need_real_modules()
    spec = "shapeparts:n=30,seed=1"
    ds = data.load_dataset(spec, split=None, num_points=64, limit=6)
    torch.manual_seed(0)
    model = models.create_model("pointnet", len(ds.class_names))
    ckpt = models.save_checkpoint(tmp_path / "m.pt", model, class_names=list(ds.class_names))
    common = ["--checkpoint", ckpt, "--data", spec, "--split", "all", "--points", "64", "--limit", "6",
              "--quiet"]
    rc, out, err = run_cli(capsys, "drop", *common, "--methods", "pointshift,random,critical", "--budgets",
                           "0,8,16", "--per-step", "4", "--json", "--out", tmp_path / "drop")
    assert rc == 0, err
    curves = json.loads(out)
    assert set(curves) == {f"{m}-{d}" for m in ("pointshift", "random", "critical") for d in ("high", "low")}
    zero = {c["0"] for c in curves.values()}
    assert len(zero) == 1  # budget 0 is the clean accuracy, whatever the method
    assert all(0.0 <= v <= 1.0 for c in curves.values() for v in c.values())
    rc, out, err = run_cli(capsys, "explain", *common, "--method", "pointshift", "--json", "--out",
                           tmp_path / "explain")
    assert rc == 0, err
    z = np.load(tmp_path / "explain" / "scores.npz")
    assert z["scores"].shape == (6, 64) and np.isfinite(z["scores"]).all()
    # A checkpoint with another class count is refused with one line.
    other = models.save_checkpoint(tmp_path / "o.pt", models.create_model("pointnet", 3),
                                   class_names=list("abc"))
    rc, out, err = run_cli(capsys, "drop", *common[2:], "--checkpoint", other, "--methods", "random",
                           "--budgets", "0,8", "--out", tmp_path / "x")
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1 and "classes" in err


def test_drop_on_real_modelnet_subset(capsys, tmp_path, modelnet_npz, learning3d_checkpoint):
    _need_real_modules()
    rc, out, err = run_cli(capsys, "drop", "--checkpoint", learning3d_checkpoint, "--checkpoint-format",
                           "learning3d", "--data", f"npz:{modelnet_npz}", "--split", "test", "--points",
                           "1024", "--limit", "4", "--methods", "pointshift,random", "--mode", "both",
                           "--budgets", "0,20", "--per-step", "10", "--alpha", "1", "--json", "--quiet",
                           "--out", tmp_path)
    assert rc == 0, err
    curves = json.loads(out)
    assert set(curves) == {"pointshift-high", "pointshift-low", "random-high", "random-low"}
    assert all(list(c) == ["0", "20"] for c in curves.values())
    assert len({c["0"] for c in curves.values()}) == 1
