"""Issue 3, line 3: salient-point dropping on ShapeParts for trained PointNet, PointNet++ and DGCNN.

Uses the checkpoints written by ``bench_train_accuracy`` (``runs/bench_train/<model>/checkpoint.pt``; run that
first). Each model is evaluated on the ShapeParts test clouds at the point count it was trained with; PointNet++ and
DGCNN on the first 100 test clouds (each re-scoring step is a full forward + backward pass of a slow CPU model).
Point-shift uses the authors' powers (alpha = 1 for PointNet and PointNet++, 6 for DGCNN).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs" / "bench_train"
PLAN = [("pointnet", 1.0, None), ("pointnet2", 1.0, 100), ("dgcnn", 6.0, 100)]
BUDGETS = (0, 25, 50, 100, 150, 200)


def measure(name: str, alpha: float, limit, per_step: int, quick: bool = False):
    """Drop curves of ``runs/bench_train/<name>`` on the ShapeParts test split (point-shift high/low, random,
    critical high/low except for PointNet++). Returns ``(curves, n_points, n_clouds, seconds)`` or None when the
    checkpoint is missing."""
    import torch

    from pointlens.attribution import create_attribution
    from pointlens.data import load_dataset
    from pointlens.models import load_checkpoint
    from pointlens.perturb.dropping import run_drop_experiment

    ck_path = RUNS / name / "checkpoint.pt"
    if not ck_path.is_file():
        return None
    cfg = json.loads((RUNS / name / "config.json").read_text())["arguments"]
    ck = load_checkpoint(ck_path)
    n_points = cfg["points"]
    data = load_dataset(cfg["data"], split="test", num_points=n_points, limit=16 if quick else limit)
    pts, lab = torch.from_numpy(data.points), torch.from_numpy(data.labels)
    methods = {"pointshift": create_attribution("pointshift", ck.model, alpha=alpha), "random": "random"}
    if name != "pointnet2":  # PointNet++'s global pool sees sampled centres, not input points
        methods["critical"] = create_attribution("critical", ck.model)
    t0 = time.perf_counter()
    curves = run_drop_experiment(ck.model, pts, lab, methods, modes=("high", "low"), budgets=BUDGETS,
                                 per_step=per_step, batch_size=32)
    took = time.perf_counter() - t0
    curves.pop("random-low", None)  # identical to random-high: random drop has no order to reverse
    return curves, n_points, len(data), took


def run(quick: bool = False) -> str:
    budgets = BUDGETS
    lines = ["## Salient-point dropping on ShapeParts (issue 3)", "",
             "Models from the training benchmark (`runs/bench_train`), ShapeParts test split, 10 points per step, "
             "re-scored each step. `gap` = random-drop accuracy minus point-shift high-drop accuracy at 200 points.",
             "", "| model | points | clouds | alpha | curve | " + " | ".join(map(str, budgets)) + " | seconds |",
             "|---|---|---|---|---|" + "---|" * len(budgets) + "---|"]
    gaps = {}
    for name, alpha, limit in PLAN:
        got = measure(name, alpha, limit, per_step=10, quick=quick)
        if got is None:
            lines.append(f"| {name} | missing checkpoint (run bench_train_accuracy first) |")
            continue
        curves, n_points, n_clouds, took = got
        for cname, c in curves.items():
            lines.append(f"| {name} | {n_points} | {n_clouds} | {alpha:g} | {cname} | "
                         + " | ".join(f"{c[b]:.3f}" for b in budgets) + f" | {took:.0f} |")
        gaps[name] = curves["random-high"][200] - curves["pointshift-high"][200]
    lines += ["", "Gap at 200 points (random minus point-shift high-drop): "
              + ", ".join(f"{k} {v * 100:.1f} accuracy points" for k, v in gaps.items()) + "."]
    return "\n".join(lines)
