"""Explainer training: exact resume, early stopping bookkeeping, save/load/apply, baselines as masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pointlens.data import load_dataset
from pointlens.errors import CheckpointError, InvalidArgumentError
from pointlens.explainer import (
    ExplainerConfig,
    attribution_masks,
    class_truth,
    create_explainer_network,
    evaluate_methods,
    explain_masks,
    load_explainer,
    minmax_normalise,
    train_explainer,
)
from pointlens.models import create_model


@pytest.fixture(scope="module")
def scenes():
    return load_dataset("shapeparts:scene=1,n=24,classes=chair+mug+lamp", split="all", num_points=64)


@pytest.fixture(scope="module")
def classifier(scenes):
    torch.manual_seed(0)
    return create_model("pointnet", scenes.num_classes, channels=(16, 32), head=(16,)).eval()


def _cfg(**kw):
    base = dict(network="pointnet-seg", network_kwargs={"local": [8, 16], "global_channels": [16], "head": [8]},
                epochs=3, batch_size=4, k=4, patience=10, seed=3)
    base.update(kw)
    return ExplainerConfig(**base)


def test_resume_ends_with_identical_weights(tmp_path, scenes, classifier):
    full = train_explainer(_cfg(), classifier, scenes, out_dir=tmp_path / "full")
    part = train_explainer(_cfg(), classifier, scenes, out_dir=tmp_path / "part", stop_after=1)
    assert len(part.history) == 1 and not (tmp_path / "part" / "explainer.pt").exists()
    resumed = train_explainer(_cfg(), classifier, scenes, out_dir=tmp_path / "part", resume=True)
    a, b = full.network.state_dict(), resumed.network.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["val"]["total"] for r in full.history] == [r["val"]["total"] for r in resumed.history]
    with pytest.raises(InvalidArgumentError):
        train_explainer(_cfg(lr=0.5), classifier, scenes, out_dir=tmp_path / "part", resume=True)


def test_early_stopping_keeps_best_weights(tmp_path, scenes, classifier):
    res = train_explainer(_cfg(epochs=8, patience=1, lr=0.05), classifier, scenes, out_dir=tmp_path)
    vals = [r["val"]["total"] for r in res.history]
    assert res.best_epoch == int(np.argmin(vals)) + 1 and res.best_val == pytest.approx(min(vals))
    if res.stopped_early:  # stopped: the last epoch did not improve on the best
        assert len(vals) < 8 and vals[-1] >= res.best_val
    loaded = load_explainer(tmp_path)
    sd, ld = res.network.state_dict(), loaded.network.state_dict()
    assert all(torch.equal(sd[k], ld[k]) for k in sd)
    m = explain_masks(loaded.network, scenes.points[:5])
    assert m.shape == (5, scenes.num_classes, 64) and float(m.min()) >= 0 and float(m.max()) <= 1
    with pytest.raises(CheckpointError):
        load_explainer(tmp_path / "nothing")


def test_networks_shapes_and_permutation_equivariance():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 40, 3, generator=g)
    perm = torch.randperm(40, generator=g)
    for name, kw in (("pointnet-seg", {}), ("dgcnn-seg", {"k": 5, "edge_channels": (8, 8), "emb_dims": 16})):
        net = create_explainer_network(name, 4, **kw).eval()
        out = net(x)
        assert out.shape == (2, 4, 40)
        assert torch.allclose(net(x[:, perm]), out[:, :, perm], atol=1e-5)
    with pytest.raises(InvalidArgumentError):
        create_explainer_network("segformer", 3)


def test_baseline_masks_and_truth(scenes, classifier):
    s = torch.tensor([[1.0, 3.0, 2.0], [5.0, 5.0, 5.0]])
    assert torch.allclose(minmax_normalise(s), torch.tensor([[0.0, 1.0, 0.5], [0.5, 0.5, 0.5]]))
    present = torch.from_numpy(scenes.labels[:4] > 0.5)
    m = attribution_masks("pointshift", classifier, scenes.points[:4], present)
    assert m.shape == (4, scenes.num_classes, 64)
    assert torch.all(m[~present] == 0) and torch.allclose(m[present].amax(-1), torch.ones(int(present.sum())))
    truth = class_truth(scenes)
    inst, icls = scenes.instance, scenes.instance_class
    b, i = 0, int(np.flatnonzero(inst[0] >= 0)[0])
    assert truth[b, icls[b, inst[b, i]], i] and truth[b].sum(0)[i] == 1
    assert not truth[0][:, inst[0] < 0].any()  # clutter belongs to no class
    # the union of the present classes' truth is the scene's gt_mask
    assert np.array_equal(truth.any(1), scenes.gt_mask)


def test_evaluate_methods_table(scenes, classifier):
    net = create_explainer_network("pointnet-seg", scenes.num_classes, local=(8,), global_channels=(8,), head=())
    sub = scenes.subset(slice(0, 6))
    table, masks = evaluate_methods(classifier, sub, ["explainer", "random"], networks={"explainer": net})
    assert list(table)[:4] == ["all-0", "all-0.5", "all-1", "ground-truth"]
    assert table["ground-truth"]["miou"] == pytest.approx(1.0) and table["ground-truth"]["mae"] == 0.0
    assert masks["explainer"].shape == (6, scenes.num_classes, 64)
    with pytest.raises(InvalidArgumentError):
        evaluate_methods(classifier, sub, ["rtis"])
