"""Issue 5, line 1: the benchmark table with EVERY attribution method, for PointNet and for DGCNN on ShapeParts.

Uses the checkpoints of ``bench_train_accuracy`` (``runs/bench_train/<model>``; run it first) and the real CLI.
Every method of the local-attribution issue (12, incl. the random reference) x every metric group. The
expensive black-box methods make this much slower than the default 8-method benchmark, so it runs on fewer
clouds (PointNet 16 of 1,024 points, DGCNN 16 of 512 points; sanity metrics on 8 and 4) with cheaper options
for RISE, LIME, SmoothGrad and k-NN occlusion. DGCNN has no fast leave-one-out (its points interact before the
pool), so exact occlusion costs N forward passes per cloud, repeated for every jittered copy and every
randomised layer of the sanity metrics: that is what limits DGCNN's sizes here (each pass uses the fused
eval-mode EdgeConv, docs/models.md). Each size has its own output folder, so a finished run is resumed, never
mixed with another size.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs"
CHEAP = ["rise.n_masks=128", "lime.n_samples=96", "lime.n_segments=16", "smoothgrad.n_samples=8",
         "occlusion-knn.centres=fps", "occlusion-knn.n_centres=32", "ig.steps=16"]


def one(model: str, points: int, limit: int, sanity: int, quick: bool) -> tuple[str, float, str]:
    ckpt = RUNS / "bench_train" / model / "checkpoint.pt"
    if not ckpt.is_file():
        return f"missing {ckpt} (run bench_train_accuracy first)", 0.0, ""
    limit, sanity = (4, 2) if quick else (limit, sanity)
    out = RUNS / f"bench_explanations_all_{model}_{limit}x{points}_s{sanity}"
    args = ["benchmark", "--checkpoint", str(ckpt), "--data", "shapeparts", "--split", "test", "--points",
            str(points), "--limit", str(limit), "--sanity-clouds", str(sanity),
            "--methods", "all", "--metrics", "all", "--out", str(out), "--quiet"]
    for o in CHEAP:
        args += ["--option", o]
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "pointlens.cli.main", *args], capture_output=True, text=True)
    took = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-3000:])
    shown = "pointlens " + " ".join(args).replace(str(ROOT) + "/", "")
    return (out / "table.md").read_text().strip(), took, shown


def run(quick: bool = False) -> str:
    lines = ["## Every attribution method x every explanation metric, PointNet and DGCNN (issue 5)", ""]
    for model, points, limit, sanity in (("pointnet", 1024, 16, 8), ("dgcnn", 512, 16, 4)):
        table, took, cmd = one(model, points, limit, sanity, quick)
        lines += [f"### {model}", "", f"{took / 60:.1f} min: `{cmd}`", "", table, ""]
    return "\n".join(lines)
