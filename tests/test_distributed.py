"""torchrun scale-out: the sharded benchmark equals the single-process one exactly; DDP training runs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")

SPEC = "shapeparts:n=40"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", POINTLENS_PROGRESS="0")
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _cli(args: list[str], nproc: int = 1, timeout: int = 120) -> subprocess.CompletedProcess:
    if nproc == 1:
        cmd = [sys.executable, "-m", "pointlens.cli.main", *args]
    else:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            str(nproc),
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            str(_free_port()),
            "-m",
            "pointlens.cli.main",
            *args,
        ]
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from pointlens.data import load_dataset
    from pointlens.models import save_checkpoint
    from pointlens.training import TrainConfig, train

    tr = load_dataset(SPEC, split="train", num_points=128)
    cfg = TrainConfig(
        model="pointnet",
        model_kwargs={"channels": (16, 32, 64), "head": (32,), "dropout": 0.0},
        epochs=3,
        batch_size=8,
        lr=3e-3,
        seed=0,
    )
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(path, train(cfg, tr).model, class_names=list(tr.class_names))
    return path


def test_torchrun_benchmark_equals_single_process(tmp_path, checkpoint):
    # 12 test clouds in chunks of 4 -> 3 chunks: rank 0 takes 2, rank 1 one; sanity: 2 chunks, one per rank.
    # rise is stochastic: its seeds come from the chunk, not the rank.
    args = [
        "benchmark",
        "--checkpoint",
        str(checkpoint),
        "--data",
        SPEC,
        "--points",
        "128",
        "--methods",
        "gradient,ig,occlusion,rise",
        "--option",
        "ig.steps=4",
        "--option",
        "rise.n_masks=16",
        "--chunk-size",
        "4",
        "--sanity-clouds",
        "8",
        "--deletion-steps",
        "4",
        "--fc-subsets",
        "8",
        "--sensitivity-samples",
        "2",
        "--quiet",
    ]
    single = _cli(args + ["--out", str(tmp_path / "one")])
    assert single.returncode == 0, single.stderr[-2000:]
    multi = _cli(args + ["--out", str(tmp_path / "two")], nproc=2)
    assert multi.returncode == 0, multi.stderr[-3000:]
    one = json.loads((tmp_path / "one" / "table.json").read_text())
    two = json.loads((tmp_path / "two" / "table.json").read_text())
    assert two == one  # exactly, every float
    assert (tmp_path / "one" / "table.csv").read_text() == (tmp_path / "two" / "table.csv").read_text()
    assert json.loads((tmp_path / "two" / "metrics.json").read_text())["world_size"] == 2
    assert not list((tmp_path / "two").rglob("*.tmp"))
    # the merged per-cloud cells are equal too (global order)
    import numpy as np

    for cell in (tmp_path / "one" / "cells").glob("*.npz"):
        with np.load(cell) as a, np.load(tmp_path / "two" / "cells" / cell.name) as b:
            assert sorted(a.files) == sorted(b.files)
            for k in a.files:
                np.testing.assert_array_equal(a[k], b[k])
    # resuming under torchrun recomputes nothing
    again = _cli(args + ["--out", str(tmp_path / "two")], nproc=2)
    assert again.returncode == 0, again.stderr[-2000:]
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert (
        metrics["computed_cells"] == [] and json.loads((tmp_path / "two" / "table.json").read_text()) == one
    )


@pytest.fixture(scope="module")
def ddp_train(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "train"
    res = _cli(
        [
            "train",
            "--model",
            "pointnet",
            "--data",
            "shapeparts:n=40",
            "--points",
            "64",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--out",
            str(out),
            "--json",
        ],
        nproc=2,
    )
    return out, res


def test_torchrun_training_writes_one_run_folder(ddp_train):
    from pointlens.models import load_checkpoint

    out, res = ddp_train
    assert res.returncode == 0, res.stderr[-3000:]
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1]
    assert (out / "config.json").is_file() and (out / "metrics.json").is_file()
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".*"))
    loaded = load_checkpoint(out / "checkpoint.pt")
    x = torch.zeros(2, 64, 3).uniform_(-0.5, 0.5)
    with torch.no_grad():
        assert loaded.model(x).shape == (2, len(loaded.class_names))


def test_torchrun_training_reports_once_and_consistently(ddp_train):
    from pointlens.data import load_dataset
    from pointlens.models import load_checkpoint
    from pointlens.training import evaluate

    out, res = ddp_train
    printed = [line for line in res.stdout.splitlines() if line.startswith("{")]
    assert len(printed) == 1  # only rank 0 prints the metrics object
    metrics = json.loads((out / "metrics.json").read_text())
    test = load_dataset("shapeparts:n=40", split="test", num_points=64)
    ev = evaluate(load_checkpoint(out / "checkpoint.pt").model, test)
    assert metrics["test"]["accuracy"] == ev.accuracy  # metrics.json describes the saved checkpoint
