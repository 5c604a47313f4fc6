"""Checkpoints: round trips, safe loading of bad files, learning3d import (synthetic and the real file)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pointlens.errors import CheckpointError, InvalidArgumentError
from pointlens.models import MODELNET40_CLASSES, create_model, load_checkpoint, save_checkpoint

SMALL = {
    "pointnet": {"channels": (16, 16, 16, 32, 64), "head": (32, 16), "feature_transform": True},
    "pointnet2": {
        "npoints": (32, 8),
        "nsamples": (8, 16),
        "mlps": ((8, 16), (16, 32)),
        "global_mlp": (32, 64),
        "head": (32, 16),
        "reference_points": 64,
    },
    "dgcnn": {"k": 6, "emb_dims": 32, "channels": (8, 8, 16, 16), "head": (32, 16)},
}


class NotPlain:
    """A class instance: pickling it into a checkpoint must make safe loading refuse the file."""

    def __init__(self):
        self.value = 3


def randomized(name: str, num_classes: int = 4, **extra) -> nn.Module:
    model = create_model(name, num_classes, **{**SMALL[name], **extra})
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for t in list(model.parameters()) + [b for b in model.buffers() if b.is_floating_point()]:
            t.copy_(torch.rand(t.shape, generator=g) * 0.5 + (0.5 if t.dim() == 1 else -0.25))
    return model


def cloud(b=2, n=40):
    x = torch.randn(b, n, 3)
    return x / x.norm(dim=-1).amax(dim=1, keepdim=True)[..., None]


def is_plain(obj) -> bool:
    if obj is None or isinstance(obj, (str, bool, int, float, torch.Tensor)):
        return True
    if isinstance(obj, (list, tuple)):
        return all(is_plain(v) for v in obj)
    if isinstance(obj, dict):
        return all(isinstance(k, (str, int)) and is_plain(v) for k, v in obj.items())
    return False


def test_pointnet2_normalize_xyz_survives_the_round_trip(tmp_path):
    model = randomized("pointnet2", normalize_xyz=True).eval()
    loaded = load_checkpoint(save_checkpoint(tmp_path / "n.pt", model, class_names=list("abcd")))
    assert loaded.config["kwargs"]["normalize_xyz"] is True and loaded.model.sa[0].normalize_xyz
    x = cloud()
    torch.testing.assert_close(loaded.model(x), model(x))


@pytest.mark.parametrize("name", ["pointnet", "pointnet2", "dgcnn"])
def test_round_trip_gives_identical_logits(tmp_path, name):
    model = randomized(name).eval()
    names = ["a", "b", "c", "d"]
    path = save_checkpoint(
        tmp_path / "sub" / "m.pt",
        model,
        class_names=names,
        extra={"epoch": 3, "acc": np.float32(0.5), "hist": np.arange(3), "tag": (1, 2)},
    )
    assert path.is_file() and sorted(p.name for p in path.parent.iterdir()) == ["m.pt"]  # no temp files left
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "pointlens-checkpoint" and raw["version"] == 1
    assert raw["model"] == model.config and is_plain(raw)
    model.train()  # the caller's mode does not leak into the file
    loaded = load_checkpoint(path)
    assert not loaded.model.training
    assert loaded.class_names == names and loaded.config == model.config
    assert loaded.meta["normalization"] == "unit_sphere" and loaded.meta["extra"]["epoch"] == 3
    assert loaded.meta["extra"]["acc"] == pytest.approx(0.5) and loaded.meta["extra"]["tag"] == (1, 2)
    assert torch.equal(loaded.meta["extra"]["hist"], torch.arange(3))
    x = cloud()
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[k], v), k


def test_class_names_and_num_classes_checks(tmp_path):
    model = randomized("pointnet", 3)
    with pytest.raises(InvalidArgumentError, match="class_names: got 2 names"):
        save_checkpoint(tmp_path / "x.pt", model, class_names=["a", "b"])
    with pytest.raises(InvalidArgumentError, match="normalization"):
        save_checkpoint(tmp_path / "x.pt", model, class_names=list("abc"), normalization="zscore")
    with pytest.raises(InvalidArgumentError, match="extra"):
        save_checkpoint(tmp_path / "x.pt", model, class_names=["a", "b", "c"], extra={"obj": NotPlain()})
    with pytest.raises(InvalidArgumentError, match="model"):
        save_checkpoint(tmp_path / "x.pt", nn.Linear(3, 3), class_names=["a", "b", "c"])
    assert not (tmp_path / "x.pt").exists()
    path = save_checkpoint(tmp_path / "ok.pt", model, class_names=["a", "b", "c"], normalization="none")
    assert load_checkpoint(path, class_names=["x", "y", "z"]).class_names == ["x", "y", "z"]
    assert load_checkpoint(path).meta["normalization"] == "none"
    with pytest.raises(InvalidArgumentError, match="class_names"):
        load_checkpoint(path, class_names=["x"])
    with pytest.raises(CheckpointError, match="3 classes; num_classes=5"):
        load_checkpoint(path, num_classes=5)
    with pytest.raises(InvalidArgumentError, match="format"):
        load_checkpoint(path, format="onnx")
    with pytest.raises(InvalidArgumentError, match="device"):
        load_checkpoint(path, device="nonsense-device")


def test_missing_file(tmp_path):
    path = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError, match=r"nope\.pt: checkpoint file not found"):
        load_checkpoint(path)


def test_files_that_are_not_plain_checkpoints(tmp_path):
    good = save_checkpoint(tmp_path / "good.pt", randomized("pointnet"), class_names=list("abcd"))
    data = good.read_bytes()
    cases = {
        "random.pt": np.random.default_rng(0).bytes(5000),
        "truncated.pt": data[: len(data) // 2],
        "empty.pt": b"",
        "text.pt": b"this is not a checkpoint\n",
    }
    for fname, content in cases.items():
        (tmp_path / fname).write_bytes(content)
        with pytest.raises(CheckpointError, match=f"{fname}: not a readable torch checkpoint"):
            load_checkpoint(tmp_path / fname)
    torch.save({"format": "pointlens-checkpoint", "obj": NotPlain()}, tmp_path / "pickled.pt")
    torch.save(nn.Linear(2, 2), tmp_path / "module.pt")
    for fname in ("pickled.pt", "module.pt"):
        with pytest.raises(CheckpointError, match=f"{fname}: not a plain checkpoint"):
            load_checkpoint(tmp_path / fname)


def test_wrong_keys_and_shapes(tmp_path):
    model = randomized("pointnet")
    raw = torch.load(save_checkpoint(tmp_path / "m.pt", model, class_names=list("abcd")), weights_only=True)

    raw.pop("weights_sha256")  # edited by hand below, so the digest written with the weights no longer applies
    bad = dict(raw, state_dict=dict(raw["state_dict"]))
    del bad["state_dict"]["head.2.weight"]
    bad["state_dict"]["head.9.weight"] = torch.zeros(1)
    torch.save(bad, tmp_path / "keys.pt")
    with pytest.raises(
        CheckpointError, match=r"missing keys: head\.2\.weight.*unexpected keys: head\.9\.weight"
    ):
        load_checkpoint(tmp_path / "keys.pt")

    bad = dict(
        raw, model={**raw["model"], "kwargs": {**raw["model"]["kwargs"], "channels": [16, 16, 16, 32, 48]}}
    )
    torch.save(bad, tmp_path / "shapes.pt")
    with pytest.raises(
        CheckpointError,
        match=r"shape mismatches.*features\.4\.conv\.weight \(64, 32, 1\) vs "
        r"\(48, 32, 1\)",
    ):
        load_checkpoint(tmp_path / "shapes.pt")

    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a pointlens checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    torch.save(dict(raw, version=99), tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(tmp_path / "future.pt")
    torch.save(dict(raw, model={**raw["model"], "name": "nonexistent"}), tmp_path / "name.pt")
    with pytest.raises(CheckpointError, match="cannot rebuild"):
        load_checkpoint(tmp_path / "name.pt")


def learning3d_state(model: nn.Module) -> dict:
    """Rename a plain pointlens PointNet's weights to learning3d's key names (the inverse mapping)."""
    sd = {}
    for k, v in model.state_dict().items():
        parts = k.split(".")
        if parts[0] == "features":
            sd[f"feature_model.{parts[2]}{int(parts[1]) + 1}.{parts[3]}"] = v
        elif parts[0] == "head" and parts[2] in ("linear", "bn"):
            sd[f"{parts[2]}{int(parts[1]) + 1}.{parts[3]}"] = v
        else:  # final linear: head.2.weight -> linear3.weight
            sd[f"linear{int(parts[1]) + 1}.{parts[2]}"] = v
    return sd


@pytest.mark.parametrize("wrap", ["bare", "model", "state_dict+module"])
def test_learning3d_synthetic(tmp_path, wrap):
    model = create_model("pointnet", 40, channels=(8, 8, 8, 16, 32), head=(16, 12), dropout=0.7)
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-0.3, 0.3)
    model.eval()
    sd = learning3d_state(model)
    assert len(sd) == 51 and "feature_model.bn5.running_var" in sd and "linear3.bias" in sd
    obj = {
        "bare": sd,
        "model": {"model": sd, "epoch": 12, "best_acc": 0.8},
        "state_dict+module": {"state_dict": {f"module.{k}": v for k, v in sd.items()}},
    }[wrap]
    torch.save(obj, tmp_path / "l3d.t7")
    loaded = load_checkpoint(tmp_path / "l3d.t7", format="learning3d")
    assert loaded.class_names == MODELNET40_CLASSES and loaded.class_names[39] == "xbox"
    assert (
        loaded.config["kwargs"]["channels"] == [8, 8, 8, 16, 32] and loaded.config["kwargs"]["dropout"] == 0.7
    )
    assert loaded.model.pointwise_until_pool and not loaded.model.training
    if wrap == "model":
        assert loaded.meta["epoch"] == 12
    x = cloud(3, 50)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))
    if wrap == "bare":  # the pointlens reader points to the right format
        with pytest.raises(CheckpointError, match="format='learning3d'"):
            load_checkpoint(tmp_path / "l3d.t7")


def test_learning3d_errors(tmp_path):
    torch.save({"foo.weight": torch.zeros(2)}, tmp_path / "x.t7")
    with pytest.raises(CheckpointError, match="not a learning3d PointNet"):
        load_checkpoint(tmp_path / "x.t7", format="learning3d")
    model = create_model("pointnet", 10, channels=(8, 8, 8, 16, 32), head=(16, 12))
    sd = learning3d_state(model)
    sd["feature_model.stn.weight"] = torch.zeros(3)
    torch.save(sd, tmp_path / "extra.t7")
    with pytest.raises(CheckpointError, match=r"unexpected keys: feature_model\.stn\.weight"):
        load_checkpoint(tmp_path / "extra.t7", format="learning3d")
    del sd["feature_model.stn.weight"]
    torch.save(sd, tmp_path / "ten.t7")
    assert load_checkpoint(tmp_path / "ten.t7", format="learning3d").class_names[-1] == "class_9"
    with pytest.raises(CheckpointError, match="10 classes; num_classes=40"):
        load_checkpoint(tmp_path / "ten.t7", format="learning3d", num_classes=40)


def test_learning3d_real_checkpoint_accuracy(learning3d_checkpoint, modelnet_npz):
    loaded = load_checkpoint(learning3d_checkpoint, format="learning3d")
    assert loaded.config["kwargs"]["channels"] == [64, 64, 64, 128, 1024]
    assert loaded.config["kwargs"]["head"] == [512, 256] and loaded.config["num_classes"] == 40
    assert len(loaded.model.state_dict()) == 51
    data = np.load(modelnet_npz)
    test = data["split"] == "test"
    assert int(test.sum()) == 147
    assert [str(s) for s in data["shape_names"]] == MODELNET40_CLASSES
    pts = torch.from_numpy(data["points"][test][:, :1024, :3].astype(np.float32))
    pts = pts - pts.mean(dim=1, keepdim=True)
    pts = pts / pts.norm(dim=-1).amax(dim=1)[:, None, None]
    with torch.no_grad():  # 3 batches of 49: bounded memory
        pred = torch.cat([loaded.model(c) for c in pts.split(49)]).argmax(dim=1).numpy()
    acc = float((pred == data["labels"][test]).mean())
    assert acc >= 0.93, acc


def test_optimizer_state_round_trips_through_extra(tmp_path):
    model = randomized("pointnet")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.8, 0.9))
    for _ in range(2):
        model(cloud(4, 30)).logsumexp(1).mean().backward()
        opt.step()
    path = save_checkpoint(tmp_path / "o.pt", model, class_names=list("abcd"),
                           extra={"optimizer": opt.state_dict(), "names": np.array(["x", "y"])})
    loaded = load_checkpoint(path)
    assert loaded.meta["extra"]["names"] == ["x", "y"]
    fresh_model = loaded.model.train()
    fresh = torch.optim.Adam(fresh_model.parameters(), lr=0.5)
    fresh.load_state_dict(loaded.meta["extra"]["optimizer"])       # integer keys survive the round trip
    assert fresh.param_groups[0]["lr"] == 1e-3 and tuple(fresh.param_groups[0]["betas"]) == (0.8, 0.9)
    for p_old, p_new in zip(model.parameters(), fresh_model.parameters()):
        s_old, s_new = opt.state[p_old], fresh.state[p_new]
        assert torch.equal(s_old["exp_avg"], s_new["exp_avg"]) and torch.equal(s_old["step"], s_new["step"])
