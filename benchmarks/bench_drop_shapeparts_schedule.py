"""Issue 3, line 3: the ShapeParts drop table for PointNet with the authors' PointNet schedule (5 points per step).

``bench_drop_shapeparts`` uses 10 points per step for every model, which leaves PointNet's gap between random and
point-shift high-drop at 27 accuracy points. Zheng et al.'s code drops 5 points per step for PointNet (10 for
DGCNN, with alpha 6), so this section repeats PointNet's whole table (point-shift high/low, random, critical
high/low; budgets 0-200; all 404 test clouds; alpha = 1) with 5 points per step. Needs
``runs/bench_train/pointnet`` (``bench_train_accuracy``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(quick: bool = False) -> str:
    spec = importlib.util.spec_from_file_location("bench_drop_shapeparts", HERE / "bench_drop_shapeparts.py")
    base = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(base)
    got = base.measure("pointnet", 1.0, None, per_step=5, quick=quick)
    if got is None:
        return "## Dropping on ShapeParts, PointNet, 5 points per step (issue 3)\n\nmissing runs/bench_train/pointnet"
    curves, n_points, n_clouds, took = got
    budgets = base.BUDGETS
    lines = ["## Dropping on ShapeParts, PointNet, the authors' PointNet schedule: 5 points per step (issue 3)", "",
             f"PointNet of `runs/bench_train/pointnet`, {n_clouds} ShapeParts test clouds of {n_points} points, "
             "alpha = 1, re-scored every 5 points (Zheng et al.'s PointNet schedule; `bench_drop_shapeparts` uses 10).",
             "", "| curve | " + " | ".join(map(str, budgets)) + " |", "|---|" + "---|" * len(budgets)]
    for name, c in curves.items():
        lines.append(f"| {name} | " + " | ".join(f"{c[b]:.3f}" for b in budgets) + " |")
    gap = curves["random-high"][200] - curves["pointshift-high"][200]
    lines += ["", f"Gap at 200 points (random minus point-shift high-drop): {gap * 100:.1f} accuracy points; "
              f"all five curves {took:.0f} s."]
    return "\n".join(lines)
