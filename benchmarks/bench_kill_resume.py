"""Kill-and-resume (issue 15): a ``pointlens train`` run killed with SIGKILL at 20 random moments -- the first
kill inside its first checkpoint write -- and resumed after each kill ends with weights identical to an
uninterrupted run, and no ``*.tmp`` file remains in the run folder.

Usage: ``python benchmarks/run_all.py kill_resume [--quick]`` (quick: 3 kills).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KILLS = 20
TRAIN = ["train", "--data", "shapeparts:n=48", "--points", "128", "--epochs", "40", "--batch-size", "16",
         "--split", "all", "--quiet"]
# The test suite's hook: runs `pointlens` and SIGKILLs itself inside the first checkpoint write.
KILL_IN_FIRST_CHECKPOINT_WRITE = str(ROOT / "tests" / "kill_in_first_checkpoint_write.py")


def _env():
    return {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "OMP_NUM_THREADS": "1", "POINTLENS_PROGRESS": "0"}


def _argv(out: Path) -> list[str]:
    return [sys.executable, "-m", "pointlens.cli.main", *TRAIN, "--out", str(out)] + (
        ["--resume"] if (out / "checkpoint.pt").is_file() else [])


def _epoch(out: Path) -> int:
    import json

    try:
        return len(json.loads((out / "history.json").read_text()))
    except (OSError, ValueError):
        return 0


def run(quick: bool = False) -> str:
    import torch

    from pointlens.models import load_checkpoint

    kills = 3 if quick else KILLS
    rng = np.random.default_rng(2026)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="kill_resume_") as tmp:
        ref, out = Path(tmp) / "ref", Path(tmp) / "killed"
        t0 = time.perf_counter()
        subprocess.run(_argv(ref), env=_env(), check=True, capture_output=True)
        t_ref = time.perf_counter() - t0
        import json

        epoch_s = float(np.median([r["seconds"] for r in json.loads((ref / "history.json").read_text())]))
        startup = max(0.5, t_ref - 40 * epoch_s)
        hi = 1.5 * epoch_s
        log = []
        # kill 1: inside the first checkpoint write (the temporary file is half written when SIGKILL lands)
        p = subprocess.Popen([sys.executable, KILL_IN_FIRST_CHECKPOINT_WRITE, *TRAIN, "--out", str(out)],
                             env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        p.wait()
        log.append(("inside the first checkpoint write", p.returncode == -signal.SIGKILL,
                    len(list(out.glob(f".*.{p.pid}.*.tmp"))), _epoch(out)))
        attempts, finished_early = 1, False
        while len(log) < kills:
            attempts += 1
            t_start = time.time()
            proc = subprocess.Popen(_argv(out), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if rng.random() < 0.15:  # during start-up (imports, data loading)
                delay, where = float(rng.uniform(0.2, 3.0)), "s after start (start-up)"
            else:  # k = 0, 1 or 2 more epochs after the run folder is opened, then anywhere in the next 1.5 epochs
                while proc.poll() is None and not ((out / "config.json").is_file()
                                                   and (out / "config.json").stat().st_mtime >= t_start):
                    time.sleep(0.005)
                k, e0 = int(rng.integers(0, 3)), _epoch(out)
                while proc.poll() is None and _epoch(out) < e0 + k:
                    time.sleep(0.005)
                delay, where = float(rng.uniform(0.0, hi)), f"s after {k} more epoch(s) of this start"
            try:
                proc.wait(timeout=delay)
                finished_early = True  # the run completed before this kill
                break
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            log.append((f"{delay:.2f} {where}", True, len(list(out.glob(f".*.{proc.pid}.*.tmp"))), _epoch(out)))
        t1 = time.perf_counter()
        final = subprocess.run(_argv(out), env=_env(), capture_output=True, text=True)
        t_final = time.perf_counter() - t1
        a = load_checkpoint(ref / "checkpoint.pt").model.state_dict()
        b = load_checkpoint(out / "checkpoint.pt").model.state_dict()
        identical = final.returncode == 0 and a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        left = [p.name for p in out.rglob("*.tmp")]
    mid_write = sum(1 for _, _, t, _ in log if t)
    early = f" The run finished after {len(log)} kills, before the {kills}th." if finished_early else ""
    rows = [f"| {i + 1} | {when} | {'yes' if killed else 'no'} | {t} | {e} |" for i, (when, killed, t, e) in
            enumerate(log)]
    return "\n".join([
        "## Kill and resume: SIGKILL at random moments of a train run (issue 15)",
        "",
        f"`pointlens {' '.join(TRAIN)}` (PointNet, 40 epochs, a checkpoint written atomically after every epoch). "
        f"Uninterrupted run: {t_ref:.1f} s ({epoch_s:.2f} s per epoch, about {startup:.1f} s of start-up). The same "
        f"run was killed {len(log)} times with SIGKILL -- kill 1 inside its first checkpoint write, the others at a "
        "random moment: 15% uniformly in the first 0.2-3 s (start-up), else after 0, 1 or 2 more epochs of that "
        f"start (random) plus a uniform delay in [0, {hi:.1f}] s (1.5 epochs: inside an epoch or a checkpoint "
        f"write); {attempts} starts in "
        "all -- and restarted after each kill with `--resume` (afresh while no checkpoint existed); a final resume "
        f"ran to the end in {t_final:.1f} s.{early} Load average at start: {load[0]:.1f}.",
        "",
        "| kill | moment | killed | half-written `*.tmp` of the killed process | epochs done after the kill |",
        "|---:|---|---|---:|---:|",
        *rows,
        "",
        f"**Final weights identical to the uninterrupted run: {'yes' if identical else 'NO'}** (every tensor "
        f"`torch.equal`); kills that left a half-written temporary file: {mid_write}; `*.tmp` files in the run "
        f"folder at the end: {len(left)}{' ' + str(left) if left else ''}.",
    ])


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
