"""Training is reproducible and resumable; evaluation numbers equal hand computations."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pointlens.data.dataset import PointCloudDataset
from pointlens.training import TrainConfig, evaluate, train
from pointlens.training.evaluate import accuracy_report


def toy_dataset(m=48, n=64, seed=0) -> PointCloudDataset:
    """Two separable classes: points on a sphere vs points in a flat disc."""
    g = np.random.default_rng(seed)
    pts = g.normal(size=(m, n, 3))
    pts /= np.linalg.norm(pts, axis=-1, keepdims=True)
    labels = np.arange(m) % 2
    pts[labels == 1, :, 2] *= 0.05
    split = np.where(np.arange(m) < m * 3 // 4, "train", "test")
    return PointCloudDataset(points=pts.astype(np.float32), labels=labels, class_names=["ball", "disc"], split=split)


def small_cfg(**kw):
    base = dict(model="pointnet", model_kwargs={"channels": (16, 32, 64), "head": (32,), "dropout": 0.1},
                epochs=2, batch_size=8, lr=3e-3, seed=3)
    base.update(kw)
    return TrainConfig(**base)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_same_seed_same_weights():
    ds = toy_dataset()
    a = train(small_cfg(), ds.subset(ds.split == "train")).model
    b = train(small_cfg(), ds.subset(ds.split == "train")).model
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    c = train(small_cfg(seed=4), ds.subset(ds.split == "train")).model
    assert not all(torch.equal(wa[k], v) for k, v in _weights(c).items())


def test_resume_continues_exactly(tmp_path):
    ds = toy_dataset()
    tr, te = ds.subset(ds.split == "train"), ds.subset(ds.split == "test")
    full = train(small_cfg(epochs=3), tr, te, out_dir=tmp_path / "full")

    def interrupt(record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(small_cfg(epochs=3), tr, te, out_dir=tmp_path / "cut", on_epoch=interrupt)
    resumed = train(small_cfg(epochs=3), tr, te, out_dir=tmp_path / "cut", resume=True)
    wf, wr = _weights(full.model), _weights(resumed.model)
    assert all(torch.equal(wf[k], wr[k]) for k in wf)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]
    hist = json.loads((tmp_path / "cut" / "history.json").read_text())
    assert len(hist) == 3


def test_resume_refuses_other_settings(tmp_path):
    from pointlens.errors import InvalidArgumentError

    ds = toy_dataset()
    train(small_cfg(epochs=1), ds, out_dir=tmp_path)
    with pytest.raises(InvalidArgumentError, match="different settings.*lr"):
        train(small_cfg(epochs=2, lr=1e-2), ds, out_dir=tmp_path, resume=True)


def test_learns_separable_toy_and_evaluate_matches_manual():
    ds = toy_dataset(m=64)
    tr, te = ds.subset(ds.split == "train"), ds.subset(ds.split == "test")
    res = train(small_cfg(epochs=6), tr, te)
    ev = evaluate(res.model, te)
    assert ev.accuracy >= 0.9
    with torch.no_grad():
        pred = res.model(torch.from_numpy(te.points)).argmax(1).numpy()
    assert ev.accuracy == pytest.approx(float((pred == te.labels).mean()))
    assert ev.confusion.sum() == len(te) and np.trace(ev.confusion) == int((pred == te.labels).sum())


def test_accuracy_report_closed_form():
    acc, mca, per, conf = accuracy_report([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], ["a", "b", "c", "d"])
    assert acc == pytest.approx(4 / 6)
    assert per == {"a": 0.5, "b": 0.5, "c": 1.0}  # "d" is absent from the labels
    assert mca == pytest.approx((0.5 + 0.5 + 1.0) / 3)
    assert conf[0].tolist() == [1, 0, 1, 0] and conf[1].tolist() == [1, 1, 0, 0]
