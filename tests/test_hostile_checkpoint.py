"""Hostile checkpoints (issue 15): a pickled payload never runs and is named as such; a flipped bit in a weight
and NaN weights are refused; configs outside their range are refused before anything is allocated; through the
CLI each gives exit 2 and one line on stderr."""

from __future__ import annotations

import io
import os
import resource
import struct
import time
import zipfile

import numpy as np
import pytest
import torch

from pointlens.cli.main import main as cli_main
from pointlens.errors import CheckpointError
from pointlens.models import create_model, load_checkpoint, save_checkpoint
from pointlens.models.checkpoint import weights_digest

KW = {"channels": (8, 16), "head": (8,)}


class Payload:
    """Unpickling this runs ``os.system('touch MARKER')`` -- unless the loader refuses it, as it must."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _good(tmp_path, name="good.pt"):
    torch.manual_seed(0)
    model = create_model("pointnet", 3, **KW)
    return save_checkpoint(tmp_path / name, model, class_names=["a", "b", "c"]), model


def _raw(path):
    return torch.load(path, weights_only=True)


def _data_offsets(path) -> list[tuple[str, int, int]]:
    """``(record name, first byte, size)`` of every tensor record inside a torch zip checkpoint."""
    out = []
    with open(path, "rb") as fh, zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if "/data/" in info.filename and info.compress_type == zipfile.ZIP_STORED:
                fh.seek(info.header_offset)
                head = fh.read(30)
                name_len, extra_len = struct.unpack("<HH", head[26:30])
                out.append((info.filename, info.header_offset + 30 + name_len + extra_len, info.file_size))
    return out


def _one_line(capfd, argv, needle):
    code = cli_main(argv)
    err = capfd.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err
    return err


def test_pickle_payload_never_runs_and_is_named(tmp_path, capfd):
    marker = tmp_path / "PWNED"
    for fmt, obj in [("pointlens", {"format": "pointlens-checkpoint", "version": 1, "model": Payload(marker)}),
                     ("learning3d", {"model": {"feature_model.conv1.weight": Payload(marker)}})]:
        path = tmp_path / f"evil_{fmt}.pt"
        torch.save(obj, path)
        with pytest.raises(CheckpointError, match=r"holds pickled objects \((posix|os|nt)\.system\)"):
            load_checkpoint(path, format=fmt)
        _one_line(capfd, ["evaluate", "--checkpoint", str(path), "--checkpoint-format", fmt, "--data",
                          "shapeparts:n=12", "--points", "64", "--quiet"], "holds pickled objects")
    assert not marker.exists()  # the side effect of the payload never happened
    control = tmp_path / "CONTROL"  # the check can fail: the unsafe loader does run such a payload
    torch.save({"x": Payload(control)}, tmp_path / "control.pt")
    torch.load(tmp_path / "control.pt", weights_only=False)
    assert control.exists()


def test_one_flipped_bit_in_a_weight_is_refused(tmp_path, capfd):
    path, model = _good(tmp_path)
    assert _raw(path)["weights_sha256"] == weights_digest(model.state_dict())
    records = _data_offsets(path)
    assert len(records) >= 4
    data = bytearray(path.read_bytes())
    for k, (_, start, size) in enumerate(records[:4]):  # a bit in four different tensors, one at a time
        flipped = bytearray(data)
        flipped[start + (k * 7919) % size] ^= 1 << (k % 8)
        bad = tmp_path / f"flip{k}.pt"
        bad.write_bytes(bytes(flipped))
        with pytest.raises(CheckpointError, match="do not match the digest"):
            load_checkpoint(bad)
    _one_line(capfd, ["evaluate", "--checkpoint", str(bad), "--data", "shapeparts:n=12", "--points", "64",
                      "--quiet"], "digest")
    assert load_checkpoint(path).class_names == ["a", "b", "c"]  # the unflipped file still loads


def test_nan_and_infinite_weights_are_refused(tmp_path, capfd):
    torch.manual_seed(0)
    model = create_model("pointnet", 3, **KW)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    path = save_checkpoint(tmp_path / "nan.pt", model, class_names=["a", "b", "c"])
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        load_checkpoint(path)
    _one_line(capfd, ["evaluate", "--checkpoint", str(path), "--data", "shapeparts:n=12", "--points", "64",
                      "--quiet"], "NaN or infinite")
    sd = {f"feature_model.conv{i}.weight": torch.randn(c, p, 1) for i, (c, p) in enumerate([(8, 3), (16, 8)], 1)}
    sd.update({"linear1.weight": torch.randn(3, 16), "linear1.bias": torch.tensor([0.0, float("inf"), 0.0])})
    torch.save(sd, tmp_path / "inf.t7")
    with pytest.raises(CheckpointError, match="'linear1.bias' has 1 NaN or infinite"):
        load_checkpoint(tmp_path / "inf.t7", format="learning3d")


@pytest.mark.parametrize("edit, needle", [
    (lambda r: r["model"].update(num_classes=10**12), "num_classes=1000000000000"),
    (lambda r: r["model"].update(num_classes="3"), "num_classes=3"),
    (lambda r: r["model"].update(kwargs=[1, 2]), "kwargs are a list"),
    (lambda r: r["model"].update(kwargs={"channels": [8, 2**40]}), "cannot rebuild|do not fit"),
    (lambda r: r.update(class_names=7), "class_names are a int"),
    (lambda r: r.update(class_names="abc"), "class_names are a str"),
    (lambda r: r.update(extra=[1]), "'extra' is a list"),
    (lambda r: r.update(model=5), "'model' is a int"),
    (lambda r: r.update(state_dict={**r["state_dict"], "x": 1}), "is not a tensor"),
])
def test_configs_out_of_range_are_refused_before_allocating(tmp_path, edit, needle):
    path, _ = _good(tmp_path)
    raw = _raw(path)
    raw.pop("weights_sha256")
    edit(raw)
    torch.save(raw, tmp_path / "bad.pt")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match=needle):
        load_checkpoint(tmp_path / "bad.pt")
    assert time.perf_counter() - t0 < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: no giant allocation


def test_a_checkpoint_without_digest_still_loads(tmp_path):
    path, model = _good(tmp_path)
    raw = _raw(path)
    raw.pop("weights_sha256")
    buf = io.BytesIO()
    torch.save(raw, buf)
    (tmp_path / "old.pt").write_bytes(buf.getvalue())
    loaded = load_checkpoint(tmp_path / "old.pt")
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(2, 64, 3)).astype(np.float32))
    model.eval()
    torch.testing.assert_close(loaded.model(x), model(x))
