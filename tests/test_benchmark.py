"""The explanation benchmark: every method x metric, values equal the metric functions, resume, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import pointlens.attribution.base as attribution_base
from pointlens.attribution import create_attribution, list_attributions
from pointlens.benchmark import (
    GROUP_COLUMNS,
    BenchmarkConfig,
    alternate_sampling,
    chunk_ranges,
    run_benchmark,
    shared_faithfulness_drops,
    table_markdown,
    table_rows_csv,
)
from pointlens.benchmark.engine import _fc_from_drops
from pointlens.data import load_dataset
from pointlens.errors import InvalidArgumentError
from pointlens.metrics.complexity import sparseness
from pointlens.metrics.faithfulness import deletion_curve, faithfulness_correlation
from pointlens.metrics.localisation import localisation_metrics
from pointlens.stats import bootstrap_mean_ci

SPEC = "shapeparts:n=40"
CHEAP = {
    "ig": {"steps": 4},
    "rise": {"n_masks": 16},
    "lime": {"n_samples": 16, "n_segments": 8},
    "smoothgrad": {"n_samples": 2},
    "occlusion-knn": {"centres": "fps", "n_centres": 8, "k": 8},
}
FAST = dict(
    chunk_size=4, sanity_clouds=4, deletion_steps=4, fc_subsets=8, sensitivity_samples=2, method_options=CHEAP
)


@pytest.fixture(scope="module")
def data():
    ds = load_dataset(SPEC, split="test", num_points=128)
    alt, _ = alternate_sampling(SPEC, ds, split="test", num_points=128)
    return ds, alt


@pytest.fixture(scope="module")
def model(data):
    from pointlens.training import TrainConfig, train

    tr = load_dataset(SPEC, split="train", num_points=128)
    cfg = TrainConfig(
        model="pointnet",
        model_kwargs={"channels": (16, 32, 64), "head": (32,), "dropout": 0.0},
        epochs=4,
        batch_size=8,
        lr=3e-3,
        seed=0,
    )
    return train(cfg, tr).model.eval()


def _table_values(table):
    return {(r["method"], c): r[c] for r in table["rows"] for c in table["columns"]}


def test_every_method_and_metric_is_finite(data, model):
    ds, alt = data
    res = run_benchmark(model, ds, BenchmarkConfig(methods="all", **FAST), alt_points=alt)
    t = res.table
    assert [r["method"] for r in t["rows"]] == list_attributions()
    want = [c for cols in GROUP_COLUMNS.values() for c in cols] + ["sanity_pass"]
    assert t["columns"] == want
    for (method, col), v in _table_values(t).items():
        if col == "sanity_pass":
            assert isinstance(v, bool), method
        else:
            assert v is not None and np.isfinite(v), (method, col)
    # random scores do not depend on the weights: they are identical after randomisation -> rho = 1, FAIL
    rnd = next(r for r in t["rows"] if r["method"] == "random")
    assert rnd["cascading_spearman"] == pytest.approx(1.0, abs=1e-12)
    assert rnd["sanity_pass"] is False
    assert "random ✗" in table_markdown(t) and "**FAIL** ✗" in table_markdown(t)
    from pointlens.metrics.sanity import randomisation_layers

    layers = [g.name for g in randomisation_layers(model)]
    assert res.curves["ig"]["layers"] == layers and isinstance(
        model.get_submodule(layers[0]), torch.nn.Linear
    )
    assert len(res.per_cloud[("ig", "sanity")]["cascading_spearman_curve"]) == 4  # 4 sanity clouds


def test_random_is_near_chance_on_localisation(data, model):
    ds, _ = data
    res = run_benchmark(model, ds, BenchmarkConfig(methods="random", metrics="localisation", chunk_size=4))
    row = res.table["rows"][0]
    assert res.table["columns"] == list(GROUP_COLUMNS["localisation"])
    frac = float(ds.gt_mask.mean())
    assert res.table["mask_fraction"] == pytest.approx(frac)
    assert row["relevance_mass_accuracy"] == pytest.approx(frac, abs=0.05)
    assert row["relevance_rank_accuracy"] == pytest.approx(frac, abs=0.06)
    assert row["auroc"] == pytest.approx(0.5, abs=0.08)


def test_table_compares_every_method_with_random_cloud_by_cloud(data, model):
    ds, _ = data
    cfg = BenchmarkConfig(methods="gradient,occlusion", metrics="localisation,deletion_auc,sanity", **FAST)
    res = run_benchmark(model, ds, cfg)
    t = res.table
    assert set(t["vs_random"]) == {"gradient", "occlusion"}  # random is the reference, not compared
    for method in ("gradient", "occlusion"):
        for c in list(GROUP_COLUMNS["localisation"]) + ["deletion_auc"]:
            g = "faithfulness" if c == "deletion_auc" else "localisation"
            diff = res.per_cloud[(method, g)][c] - res.per_cloud[("random", g)][c]
            mean, low, high, n = bootstrap_mean_ci(diff, seed=cfg.seed)
            e = t["vs_random"][method][c]
            assert (e["mean"], e["low"], e["high"], e["n"]) == pytest.approx((mean, low, high, n))
            assert e["better"] == (low > 0 if c != "deletion_auc" else high < 0)
        e = t["sanity_ci"][method]
        rho = res.per_cloud[(method, "sanity")]["cascading_spearman"]
        assert e["mean"] == pytest.approx(float(np.nanmean(rho)))
        assert e["verdict_certain"] == (e["low"] > 0.5 or e["high"] <= 0.5)
    assert t["sanity_ci"]["random"]["mean"] == 1.0  # random ignores the model
    md = table_markdown(t)
    assert "Against the random row" in md and "relevance_mass_accuracy − random" in md
    assert json.loads(json.dumps(t)) == t  # the uncertainty section is plain JSON


def test_cells_equal_the_metric_functions(data, model):
    """Per-cloud values are the library metrics applied chunk by chunk; the table is their mean."""
    ds, _ = data
    cfg = BenchmarkConfig(
        methods="gradient,rise", metrics="localisation,faithfulness,complexity", **{**FAST, "chunk_size": 5}
    )
    res = run_benchmark(model, ds, cfg)
    pts = torch.from_numpy(ds.points)
    labels = torch.from_numpy(ds.labels)
    mask = torch.from_numpy(ds.gt_mask)
    for method in ("gradient", "rise"):
        scores, aucs = [], []
        for ch in chunk_ranges(len(ds), 5):
            opts = dict(CHEAP.get(method, {}))  # stochastic methods seed each cloud from its geometry
            s = create_attribution(method, model, **opts).attribute(
                pts[ch.start : ch.stop], labels[ch.start : ch.stop]
            )
            scores.append(s)
            aucs.append(
                deletion_curve(model, pts[ch.start : ch.stop], s, labels[ch.start : ch.stop], steps=4).auc
            )
        scores = torch.cat(scores)
        loc = localisation_metrics(scores, mask)
        cell = res.per_cloud[(method, "localisation")]
        for k, v in loc.items():
            np.testing.assert_array_equal(cell[k], v.numpy())
        np.testing.assert_array_equal(
            res.per_cloud[(method, "faithfulness")]["deletion_auc"], torch.cat(aucs).numpy()
        )
        np.testing.assert_array_equal(
            res.per_cloud[(method, "complexity")]["sparseness"], sparseness(scores).numpy()
        )
        row = next(r for r in res.table["rows"] if r["method"] == method)
        assert row["auroc"] == pytest.approx(float(np.nanmean(loc["auroc"].numpy())), abs=1e-12)
    rise_all = create_attribution("rise", model, **CHEAP["rise"]).attribute(pts, labels)
    torch.testing.assert_close(
        torch.from_numpy(res.per_cloud[("rise", "localisation")]["auroc"]),
        localisation_metrics(rise_all, mask)["auroc"],
        rtol=0,
        atol=1e-6,
    )


def test_shared_faithfulness_drops_equal_the_direct_metric(data, model):
    ds, _ = data
    pts, labels = torch.from_numpy(ds.points[:6]), torch.from_numpy(ds.labels[:6])
    subsets, drops = shared_faithfulness_drops(model, pts, labels, n_subsets=10, subset_size=12, seed=7)
    for method in ("gradxinput", "random"):
        s = create_attribution(method, model).attribute(pts, labels)
        direct = faithfulness_correlation(model, pts, s, labels, n_subsets=10, subset_size=12, seed=7)
        torch.testing.assert_close(_fc_from_drops(s, subsets, drops), direct.correlation, rtol=0, atol=1e-12)


def test_alternate_sampling_is_the_same_shapes(data):
    ds, alt = data
    assert alt is not None and alt.shape == ds.points.shape
    assert not np.allclose(alt, ds.points)
    # every point of the second sampling lies close to the first sampling of the same cloud, not of another
    a, b = torch.from_numpy(ds.points), torch.from_numpy(alt)
    same = torch.cdist(b, a).amin(2).mean(1)
    other = torch.cdist(b, a.roll(1, 0)).amin(2).mean(1)
    assert bool((same < other).all())
    none, note = alternate_sampling("shapeparts:n=40,points=128", ds, split="test", num_points=128)
    assert none is None and "not available" in note


def _count_attribute_calls(monkeypatch):
    calls = []
    original = attribution_base.Attribution.attribute

    def counted(self, points, target=None):
        calls.append(self.name)
        return original(self, points, target)

    monkeypatch.setattr(attribution_base.Attribution, "attribute", counted)
    return calls


def test_resume_does_not_recompute(tmp_path, data, model, monkeypatch):
    ds, alt = data
    cfg = BenchmarkConfig(methods="gradient,critical", **FAST)
    first = run_benchmark(model, ds, cfg, out_dir=tmp_path, alt_points=alt)
    assert len(list((tmp_path / "cells").glob("*.npz"))) == 3 * 5
    assert sorted(p.stem for p in (tmp_path / "scores").glob("*.npz")) == ["critical", "gradient", "random"]

    def boom(self, points, target=None):
        raise AssertionError("a finished cell was recomputed")

    monkeypatch.setattr(attribution_base.Attribution, "attribute", boom)
    again = run_benchmark(model, ds, cfg, out_dir=tmp_path, alt_points=alt)
    assert again.computed == [] and len(again.reused) == 15
    assert again.table == first.table


def test_interrupted_run_resumes(tmp_path, data, model, monkeypatch):
    ds, alt = data
    cfg = BenchmarkConfig(methods="gradxinput", metrics="localisation,complexity,faithfulness", **FAST)
    reference = run_benchmark(model, ds, cfg, alt_points=alt).table

    import pointlens.metrics.faithfulness as faith

    def crash(*a, **k):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(faith, "deletion_curve", crash)
    with pytest.raises(RuntimeError, match="interrupted"):
        run_benchmark(model, ds, cfg, out_dir=tmp_path, alt_points=alt)
    monkeypatch.undo()
    finished = sorted(p.stem for p in (tmp_path / "cells").glob("*.npz"))
    assert finished == ["gradxinput__localisation"]  # groups run in order: the crash hit faithfulness
    calls = _count_attribute_calls(monkeypatch)
    resumed = run_benchmark(model, ds, cfg, out_dir=tmp_path, alt_points=alt)
    assert calls == ["random"] * 3  # the cached gradxinput scores are reused; random's 3 chunks are new
    assert set(resumed.computed) == {
        "gradxinput/faithfulness",
        "gradxinput/complexity",
        "random/scores",
        "random/localisation",
        "random/complexity",
        "random/faithfulness",
    }
    assert resumed.table == reference


def test_changed_settings_are_refused(tmp_path, data, model):
    ds, _ = data
    cfg = BenchmarkConfig(methods="gradient", metrics="complexity", chunk_size=4)
    run_benchmark(model, ds, cfg, out_dir=tmp_path)
    with pytest.raises(InvalidArgumentError, match="different settings"):
        run_benchmark(
            model,
            ds,
            BenchmarkConfig(methods="gradient", metrics="complexity", chunk_size=4, seed=1),
            out_dir=tmp_path,
        )
    with pytest.raises(InvalidArgumentError, match="different settings"):
        run_benchmark(
            model,
            ds,
            BenchmarkConfig(
                methods="gradient", metrics="complexity", chunk_size=4, method_options={"random": {"seed": 5}}
            ),
            out_dir=tmp_path,
        )
    res = run_benchmark(
        model,
        ds,
        BenchmarkConfig(methods="gradient", metrics="complexity", chunk_size=4, seed=1),
        out_dir=tmp_path,
        restart=True,
    )
    assert "gradient/complexity" in res.computed
    # adding a method to a finished run reuses its cells
    more = run_benchmark(
        model,
        ds,
        BenchmarkConfig(methods="gradient,critical", metrics="complexity", chunk_size=4, seed=1),
        out_dir=tmp_path,
    )
    assert set(more.reused) >= {"gradient/complexity", "random/complexity"}


def test_bad_config_names_the_argument():
    with pytest.raises(InvalidArgumentError, match="methods"):
        BenchmarkConfig(methods="nope").validate()
    with pytest.raises(InvalidArgumentError, match="metrics"):
        BenchmarkConfig(metrics="accuracy").validate()
    with pytest.raises(InvalidArgumentError, match="chunk_size"):
        BenchmarkConfig(chunk_size=0).validate()
    cfg = BenchmarkConfig(methods="ig", metrics="auroc,deletion_auc").validate()
    assert cfg.methods == ("ig", "random") and cfg.groups() == ["localisation", "faithfulness"]
    assert cfg.columns("localisation") == ["auroc"]


def test_cli_writes_tables_and_plots(tmp_path, data, model, capsys):
    from pointlens.cli.main import main
    from pointlens.models import save_checkpoint

    ds, _ = data
    ckpt = tmp_path / "model.pt"
    save_checkpoint(ckpt, model, class_names=list(ds.class_names))
    out = tmp_path / "run"
    argv = [
        "benchmark",
        "--checkpoint",
        str(ckpt),
        "--data",
        SPEC,
        "--points",
        "128",
        "--methods",
        "gradient",
        "--metrics",
        "localisation,complexity,robustness",
        "--chunk-size",
        "4",
        "--sensitivity-samples",
        "1",
        "--out",
        str(out),
        "--json",
        "--quiet",
    ]
    assert main(argv) == 0
    table = json.loads(capsys.readouterr().out)
    for name in ("table.csv", "table.json", "table.md", "heatmap.png", "config.json", "metrics.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "table.json").read_text()) == table
    assert (out / "table.csv").read_text() == table_rows_csv(table)
    assert table["rows"][0]["resampling_consistency"] is not None  # ShapeParts regenerated with 2N points
    assert main(argv[:-4] + ["--seed", "3", "--out", str(out), "--quiet"]) == 2
    assert "different settings" in capsys.readouterr().err


def test_model_that_needs_k_points_runs_the_faithfulness_metrics(data):
    """A DGCNN refuses clouds smaller than k: deletion keeps k points, so every cell still runs (the default
    benchmark used to crash on DGCNN at its last deletion step, which left one point)."""
    from pointlens.models import create_model

    ds, alt = data
    torch.manual_seed(0)
    dg = create_model("dgcnn", ds.num_classes, k=48, emb_dims=16, channels=(8, 8), head=(16,), dropout=0.0).eval()
    cfg = BenchmarkConfig(methods="pointshift,occlusion", metrics="faithfulness", chunk_size=2, sanity_clouds=2,
                          deletion_steps=4, fc_subsets=4)
    res = run_benchmark(dg, ds.subset(range(2)), cfg, alt_points=alt[:2])
    for row in res.table["rows"]:
        assert np.isfinite(row["deletion_auc"]) and np.isfinite(row["insertion_auc"]), row
    fractions = res.per_cloud[("pointshift", "faithfulness")]["fractions"]
    np.testing.assert_allclose(fractions[0], [0.0, 0.25, 0.5, (128 - 48) / 128, (128 - 48) / 128])
