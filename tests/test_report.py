"""report.html from the files of a run folder: sections by artefact, missing / corrupt artefacts, the CLI.

The pages themselves are opened in a browser by tests/test_report_browser.py; here: what the page says.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from pointlens.cli.main import main
from pointlens.errors import DataError
from pointlens.report import build_report, is_run_folder
from pointlens.report.sections import Section, register_section, sections
from pointlens.utils.io import save_npz


def _run(folder, command, metrics=None, **arguments):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"command": command, "arguments": arguments, "seed": 0}))
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def _train_run(folder):
    conf = [[3, 1], [0, 4]]
    return _run(folder, "train", {"test": {"accuracy": 0.875, "mean_class_accuracy": 0.875, "n": 8,
                                           "per_class_accuracy": {"mug": 0.75, "cup": 1.0}, "confusion": conf},
                                  "class_names": ["mug", "cup"], "parameters": 1234,
                                  "model_config": {"name": "pointnet", "kwargs": {"channels": [8, 16]}},
                                  "history": [{"epoch": 1, "loss": 1.0, "train_accuracy": 0.5,
                                               "test": {"accuracy": 0.6}},
                                              {"epoch": 2, "loss": 0.5, "train_accuracy": 0.8}]},
                model="pointnet", data="shapeparts:n=10", points=64)


def _explain_run(folder, checkpoint=None):
    _run(folder, "explain", {"method": "gradient", "n": 2},
         checkpoint=checkpoint, data="shapeparts:n=10")
    rng = np.random.default_rng(0)
    save_npz(folder / "scores.npz", points=rng.normal(size=(2, 32, 3)).astype(np.float32),
             scores=rng.normal(size=(2, 32)).astype(np.float32), labels=np.array([0, 1]),
             predictions=np.array([0, 0]), gt_mask=rng.random((2, 32)) < 0.2, class_names=np.array(["mug", "cup"]))
    return folder


def test_model_card_and_training_from_files(tmp_path):
    train = _train_run(tmp_path / "train")
    page = build_report(train).read_text()
    assert "pointnet(channels=[8, 16])" in page and "1,234" in page and "0.875" in page
    assert '"type": "heatmap"' in page and "[0.75, 0.25]" in page  # confusion as row shares
    assert (train / "confusion_matrix.png").stat().st_size > 5000
    assert (train / "training_curves.png").stat().st_size > 5000
    assert (train / "plotly.min.js").stat().st_size > 1_000_000
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page


def test_explain_run_gets_the_card_of_its_checkpoint_and_linked_views(tmp_path):
    train = _train_run(tmp_path / "train")
    run = _explain_run(tmp_path / "explain", checkpoint=str(train / "checkpoint.pt"))
    page = build_report(run).read_text()
    assert "card from" in page and "0.875" in page             # the model card of the training run
    assert 'class="pl-grid"' in page and 'class="pl-gt"' in page  # 3D views with the ground-truth toggle
    spec = json.loads(page.split('id="grid1-data">', 1)[1].split("</script>", 1)[0])
    assert [m["name"] for m in spec["methods"]] == ["gradient"] and len(spec["clouds"]) == 2
    assert spec["methods"][0]["signed"] is True and sum(spec["clouds"][0]["gt"]) > 0
    assert (run / "saliency_gradient.png").is_file() and (run / "ground_truth_parts.png").is_file()


def test_missing_and_corrupt_artefacts_still_build_with_a_note(tmp_path):
    missing = _run(tmp_path / "explain", "explain", {"method": "gradient"})
    page = build_report(missing).read_text()
    assert "scores.npz is missing from" in page and 'class="missing"' in page
    corrupt = _explain_run(tmp_path / "corrupt")
    (corrupt / "scores.npz").write_bytes(b"not a zip file")
    page = build_report(corrupt).read_text()
    assert "scores.npz in" in page and "cannot be read" in page
    drop = _run(tmp_path / "drop", "drop", {"curves": None})
    (drop / "curves.json").write_text("{broken")
    (drop / "metrics.json").write_text("[1, 2")  # corrupt metrics.json: said on the page, sections go on
    page = build_report(drop).read_text()
    assert "curves.json in" in page and "not valid JSON" in page and "metrics.json in" in page
    bench = _run(tmp_path / "bench", "benchmark", {})
    (bench / "table.json").write_text(json.dumps({"rows": "nope"}))
    assert "has no &#x27;rows&#x27;" in build_report(bench).read_text()


def test_sections_with_their_numbers(tmp_path):
    drop = _run(tmp_path / "drop", "drop", {"n": 4, "num_points": 64, "per_step": 5})
    (drop / "curves.json").write_text(json.dumps({"pointshift-high": {"0": 1.0, "10": 0.25},
                                                  "pointshift-low": {"0": 1.0, "10": 0.75}}))
    page = build_report(drop).read_text()
    assert "<td>pointshift-high</td><td>1</td><td>0.25</td>" in page
    assert (drop / "accuracy_vs_points_dropped.png").is_file()
    bench = _run(tmp_path / "bench", "benchmark", {})
    table = {"columns": ["relevance_mass_accuracy", "sanity_pass"],
             "directions": {"relevance_mass_accuracy": "higher"}, "n_clouds": 4, "n_points": 64,
             "rows": [{"method": "ig", "relevance_mass_accuracy": 0.5, "sanity_pass": True},
                      {"method": "random", "relevance_mass_accuracy": 0.2, "sanity_pass": None}],
             "vs_random": {"ig": {"relevance_mass_accuracy": {"mean": 0.3, "low": 0.1, "high": 0.45, "n": 4,
                                                              "better": True}}}}
    (bench / "table.json").write_text(json.dumps(table))
    page = build_report(bench).read_text()
    assert "+0.3 [+0.1, +0.45]" in page and '<td class="good">0.5' in page and "error_x" in page
    metrics = _run(tmp_path / "metrics", "metrics shape", {"fscore@0.1": 0.5, "precision@0.1": 0.4,
                                                           "recall@0.1": 0.6, "chamfer": 0.01, "n_pred": 3,
                                                           "n_gt": 3}, pred="a.npy", gt="b.npy")
    page = build_report(metrics).read_text()
    assert "<td>0.1</td><td>0.5</td><td>0.4</td><td>0.6</td>" in page and "chamfer" in page


def test_composite_run_draws_its_stages_in_order(tmp_path):
    demo = _run(tmp_path / "demo", "demo", {"stages": ["train", "explain"],
                                            "stage_titles": {"train": "Training", "explain": "Looking"},
                                            "pending": ["FlowAM samples next"]})
    _train_run(demo / "train")
    _explain_run(demo / "explain")
    page = build_report(demo).read_text().split("</nav>", 1)[1]  # the page after its contents list
    assert page.index("model card") < page.index(">Training<") < page.index(">Looking<")
    assert 'src="explain/saliency_gradient.png"' in page and "FlowAM samples next" in page
    assert page.count("model card") == 1


def test_a_new_section_kind_is_one_registration(tmp_path):
    def build(run, page):
        page.text(f"samples: {run.json('samples.json')['n']}")

    register_section(Section("unit-maximize", "Activation maximisation", order=25, commands=("maximize",),
                             artefacts=("samples.json",), build=build))
    try:
        run = _run(tmp_path / "max", "maximize", {})
        (run / "samples.json").write_text(json.dumps({"n": 7}))
        page = build_report(run).read_text()
        assert "Activation maximisation" in page and "samples: 7" in page
        (run / "samples.json").unlink()
        assert "samples.json is missing" in build_report(run).read_text()
    finally:
        from pointlens.report import sections as registry

        registry._REGISTRY.pop("unit-maximize")
    assert "unit-maximize" not in [s.name for s in sections()]


def test_not_a_run_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    _run(tmp_path / "parent" / "child", "explain")  # a folder of runs is not itself a run
    assert not is_run_folder(tmp_path / "empty") and not is_run_folder(tmp_path / "parent")
    for target in (tmp_path / "empty", tmp_path / "nowhere", tmp_path / "parent"):
        assert main(["report", str(target)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("pointlens report: error:") and "\n" not in err and "run folder" in err
    with pytest.raises(DataError):
        build_report(tmp_path / "empty")


def test_commands_write_their_report_unless_no_report(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "a.npy", rng.random((16, 3)).astype(np.float32))
    base = ["metrics", "shape", "--pred", str(tmp_path / "a.npy"), "--gt", str(tmp_path / "a.npy"), "--quiet"]
    assert main([*base, "--out", str(tmp_path / "with")]) == 0
    assert main([*base, "--out", str(tmp_path / "without"), "--no-report"]) == 0
    assert (tmp_path / "with" / "report.html").is_file() and (tmp_path / "with" / "plotly.min.js").is_file()
    assert not (tmp_path / "without" / "report.html").exists()
    assert main(["report", str(tmp_path / "without"), "--quiet"]) == 0
    assert "Shape metrics" in (tmp_path / "without" / "report.html").read_text()


def test_demo_tour_includes_one_flowam_sample_per_class(tmp_path):
    """The demo's FlowAM stage: one cloud per class the training data has, each classified as its class, drawn
    in the page."""
    import json

    import numpy as np

    from pointlens.cli.main import main

    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--data", "shapeparts:n=84,points=128,classes=chair+stool+mug",
                 "--points", "128", "--epochs", "1", "--explain-clouds", "3", "--bench-clouds", "0",
                 "--quiet"]) == 0
    a = np.load(out / "maximize" / "clouds.npz")
    assert a["clouds"].shape == (3, 512, 3) and sorted(a["classes"].tolist()) == [0, 1, 2]
    assert np.isfinite(a["clouds"]).all() and ((a["probability"] > 0) & (a["probability"] <= 1)).all()
    assert "maximize" in json.loads((out / "metrics.json").read_text())["stages"]
    assert "maximize/flowam_samples.png" in (out / "report.html").read_text()
