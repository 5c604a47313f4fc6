"""Multi-label classifiers for the explainer: training on ShapeParts scenes (BCE) and mAP / per-class F1."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score

from pointlens.data import load_dataset
from pointlens.training import MultiLabelEvalResult, TrainConfig, average_precision, evaluate, multilabel_report, train


def test_average_precision_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.random(30) < 0.3
        y[0] = True
        s = np.round(rng.normal(size=30), 1)  # many ties
        assert average_precision(s, y) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert np.isnan(average_precision([0.1, 0.2], [False, False]))


def test_multilabel_report_against_sklearn():
    rng = np.random.default_rng(1)
    y = rng.random((40, 4)) < 0.4
    z = rng.normal(size=(40, 4)) + 2 * y
    rep = multilabel_report(z, y.astype(np.float32), ["a", "b", "c", "d"])
    assert rep.map == pytest.approx(average_precision_score(y, z, average="macro"), abs=1e-12)
    f1 = f1_score(y, z > 0, average=None)
    assert [rep.per_class_f1[k] for k in "abcd"] == pytest.approx(list(f1), abs=1e-12)
    assert rep.accuracy == pytest.approx(float(((z > 0) == y).all(1).mean()))


def test_train_and_evaluate_on_scenes(tmp_path):
    data = "shapeparts:scene=1,n=40,classes=chair+mug+lamp"
    tr = load_dataset(data, split="train", num_points=64)
    te = load_dataset(data, split="test", num_points=64)
    cfg = TrainConfig(model="pointnet", model_kwargs={"channels": [16, 32], "head": [16]}, epochs=2, batch_size=8)
    res = train(cfg, tr, te, out_dir=tmp_path)
    assert set(res.final) == {"map", "mean_f1", "accuracy", "n"} and res.final["n"] == len(te)
    ev = evaluate(res.model, te)
    assert isinstance(ev, MultiLabelEvalResult) and 0 <= ev.map <= 1
    assert ev.to_dict()["map"] == ev.map
