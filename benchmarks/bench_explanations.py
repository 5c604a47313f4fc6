"""Benchmark: time the default explanation benchmark (``pointlens benchmark``), single process vs. torchrun.

The default benchmark = 200 ShapeParts test clouds of 1,024 points, a PointNet, 8 methods (pointshift,
gradient, gradxinput, ig with 16 steps, occlusion, critical, gradcam, random), every metric group, the sanity
metrics on 32 clouds. The PointNet comes from ``$POINTLENS_BENCH_CHECKPOINT`` or is trained here with a
small budget (:func:`pointlens.training.train`). The command runs twice as a user would run it: one
process, then ``torchrun --nproc-per-node 2``, both with one thread per process (``OMP_NUM_THREADS=1``, what
torchrun sets); the section reports both wall times and whether the two tables are equal.

``run(quick=True)`` uses 16 clouds of 256 points and 8 sanity clouds, to check that the script works.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _checkpoint(workdir: Path, quick: bool) -> tuple[Path, str]:
    given = os.environ.get("POINTLENS_BENCH_CHECKPOINT")
    if given:
        return Path(given), f"`{given}` (POINTLENS_BENCH_CHECKPOINT)"
    from pointlens.data import load_dataset
    from pointlens.models import save_checkpoint
    from pointlens.training import TrainConfig, evaluate, train

    spec = "shapeparts:n=200" if quick else "shapeparts"
    points, epochs = (256, 1) if quick else (512, 4)
    tr = load_dataset(spec, split="train", num_points=points)
    te = load_dataset(spec, split="test", num_points=points)
    t0 = time.perf_counter()
    res = train(TrainConfig(model="pointnet", epochs=epochs, batch_size=32, seed=0), tr)
    acc = evaluate(res.model, te).accuracy
    path = workdir / "pointnet.pt"
    save_checkpoint(path, res.model, class_names=list(tr.class_names))
    return path, (f"PointNet trained here on `{spec}` ({len(tr)} clouds of {points} points, {epochs} epochs, "
                  f"{time.perf_counter() - t0:.0f} s; test accuracy {acc:.3f})")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    return time.perf_counter() - t0


def run(quick: bool = False) -> str:
    """Time the default benchmark single-process and under torchrun (2 processes); returns Markdown."""
    with tempfile.TemporaryDirectory(prefix="bench_explanations_") as tmp:
        work = Path(tmp)
        ckpt, ckpt_note = _checkpoint(work, quick)
        spec = "shapeparts:n=200" if quick else "shapeparts"
        args = ["benchmark", "--checkpoint", str(ckpt), "--data", spec, "--split", "test", "--quiet"]
        if quick:
            args += ["--points", "256", "--limit", "16", "--sanity-clouds", "8"]
        else:
            args += ["--points", "1024", "--limit", "200", "--sanity-clouds", "32"]
        # torchrun starts every process with OMP_NUM_THREADS=1; the single process gets the same thread count,
        # so the two tables can be compared exactly (float reductions depend on the thread count).
        env = dict(os.environ, POINTLENS_PROGRESS="0", OMP_NUM_THREADS="1")
        env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
        single = _run([sys.executable, "-m", "pointlens.cli.main", *args, "--out", str(work / "one")], env)
        multi = _run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr",
                      "127.0.0.1", "--master-port", str(_free_port()), "-m", "pointlens.cli.main", *args,
                      "--out", str(work / "two")], env)
        one = json.loads((work / "one" / "table.json").read_text())
        two = json.loads((work / "two" / "table.json").read_text())
        table_md = (work / "one" / "table.md").read_text().strip()
    lines = [
        "## Explanation benchmark (`pointlens benchmark`)",
        "",
        f"{one['n_clouds']} ShapeParts test clouds of {one['n_points']} points, methods "
        f"{', '.join(r['method'] for r in one['rows'])}, every metric group, sanity metrics on "
        f"{one['n_sanity_clouds']} clouds. Model: {ckpt_note}.",
        "",
        "| run | wall time (s) | table equal to single process |",
        "|---|---|---|",
        f"| 1 process (1 thread) | {single:.1f} | — |",
        f"| torchrun, 2 processes (1 thread each) | {multi:.1f} | {'yes' if one == two else 'NO'} |",
        "",
        f"Speed-up with 2 processes: {single / multi:.2f}x (wall times include start-up and data loading).",
        "",
        "The table (single process):",
        "",
        table_md,
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
