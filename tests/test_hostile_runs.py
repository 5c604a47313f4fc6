"""Run folders under hostile interruptions (issue 15): a train run killed with SIGKILL -- during its first
checkpoint write, or at a random moment later -- and then resumed ends with weights identical to an uninterrupted
run, and no ``*.tmp`` file remains. Stale temporary files are removed only when their writer is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from pointlens.cli.main import main as cli_main
from pointlens.models import load_checkpoint
from pointlens.utils.io import RunFolder, atomic_open, remove_stale_tmp, save_json

SRC = Path(__file__).resolve().parents[1] / "src"
TRAIN = ["train", "--data", "shapeparts:n=16", "--points", "32", "--epochs", "2", "--batch-size", "8",
         "--split", "all", "--quiet"]
# Runs `pointlens` but SIGKILLs itself inside the first checkpoint write (after half a file is written).
KILL_IN_FIRST_CHECKPOINT_WRITE = str(Path(__file__).resolve().parent / "kill_in_first_checkpoint_write.py")


def _env():
    return {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "OMP_NUM_THREADS": "1", "POINTLENS_PROGRESS": "0"}


def _weights(folder: Path) -> dict:
    return load_checkpoint(folder / "checkpoint.pt").model.state_dict()


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Weights of the uninterrupted run (one thread, like the killed subprocesses: the same arithmetic)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    ref = tmp_path_factory.mktemp("ref")
    assert cli_main([*TRAIN, "--out", str(ref)]) == 0
    yield _weights(ref)
    torch.set_num_threads(before)


def _resume(out: Path) -> None:
    """Finish an interrupted run in-process: ``--resume`` when a checkpoint exists, else start again."""
    argv = [*TRAIN, "--out", str(out)] + (["--resume"] if (out / "checkpoint.pt").is_file() else [])
    assert cli_main(argv) == 0


@pytest.mark.slow
def test_killed_during_the_first_checkpoint_write_then_resumed(tmp_path, reference):
    out = tmp_path / "killed"
    proc = subprocess.run([sys.executable, KILL_IN_FIRST_CHECKPOINT_WRITE, *TRAIN, "--out", str(out)],
                          env=_env(), capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    left = list(out.glob(".checkpoint.pt.*.tmp"))
    assert len(left) == 1 and not (out / "checkpoint.pt").exists()  # the kill really hit the first write
    _resume(out)
    assert not list(out.rglob("*.tmp"))
    assert _same(_weights(out), reference)


@pytest.mark.slow
def test_killed_at_a_random_moment_after_the_first_epoch_then_resumed(tmp_path, reference):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "pointlens.cli.main", *TRAIN, "--out", str(out)], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (out / "checkpoint.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(float(np.random.default_rng(5).uniform(0, 0.2)))  # somewhere in epoch 2 or its checkpoint
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _resume(out)
    assert not list(out.rglob("*.tmp"))
    assert _same(_weights(out), reference)


def test_stale_tmp_files_are_removed_only_when_their_writer_is_gone(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / f".metrics.json.{dead}.abc123.tmp"
    live = tmp_path / f".metrics.json.{os.getppid()}.xyz789.tmp"  # a live writer (our parent process)
    old_style = tmp_path / ".history.json.k2j3h4.tmp"
    for p in (stale, live, old_style):
        p.write_text("{half")
    save_json(tmp_path / "result.json", {"a": 1})
    assert remove_stale_tmp(tmp_path) == [stale]
    assert live.exists() and old_style.exists() and (tmp_path / "result.json").exists()
    os.utime(old_style, (time.time() - 3600, time.time() - 3600))
    RunFolder(tmp_path, "test")  # opening a run folder cleans it
    assert not old_style.exists() and live.exists()
    stale.write_text("{half")
    with atomic_open(tmp_path / "metrics.json", "w") as f:  # the next write of the same target cleans its own
        f.write("{}")
    assert not stale.exists() and (tmp_path / "metrics.json").read_text() == "{}"


def test_an_interrupted_write_leaves_the_previous_result_intact(tmp_path):
    save_json(tmp_path / "m.json", {"v": 1})
    with pytest.raises(RuntimeError), atomic_open(tmp_path / "m.json", "w") as f:
        f.write('{"v": 2')
        raise RuntimeError("interrupted")
    assert (tmp_path / "m.json").read_text().strip().endswith("}") and not list(tmp_path.glob("*.tmp"))
