"""Issue 3, line 3 follow-up: PointNet high-drop on ShapeParts with a finer schedule (5 points per step).

The 10-points-per-step table (``bench_drop_shapeparts``) leaves PointNet's gap to random drop at 27 points; the
paper's PointNet schedule is 5 points per step. Needs ``runs/bench_train/pointnet`` (``bench_train_accuracy``).
"""

from __future__ import annotations

import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(quick: bool = False) -> str:
    import torch

    from pointlens.attribution import create_attribution
    from pointlens.data import load_dataset
    from pointlens.models import load_checkpoint
    from pointlens.perturb.dropping import drop_curve

    ck = load_checkpoint(ROOT / "runs" / "bench_train" / "pointnet" / "checkpoint.pt")
    d = load_dataset("shapeparts", split="test", num_points=1024, limit=16 if quick else None)
    p, lab = torch.from_numpy(d.points), torch.from_numpy(d.labels)
    t0 = time.perf_counter()
    r = drop_curve(ck.model, p, lab, create_attribution("pointshift", ck.model, alpha=1.0), budgets=(0, 100, 200),
                   per_step=5, mode="high", keep_clouds=False)
    took = time.perf_counter() - t0
    return ("## Dropping on ShapeParts, PointNet, 5 points per step (issue 3)\n\n"
            f"Point-shift high-drop (alpha = 1, re-scored every 5 points) on {len(d)} test clouds: accuracy "
            f"{r.accuracy[0]:.3f} -> {r.accuracy[100]:.3f} (100 points) -> {r.accuracy[200]:.3f} (200 points); "
            f"{took:.0f} s.")
