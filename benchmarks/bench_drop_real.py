"""Issue 3, line 2: salient-point dropping with the imported learning3d PointNet on the 147 real ModelNet40 test shapes.

1. The experiment of the issue through the real CLI (`pointlens drop`, 10 points per step, alpha = 1, budgets up to
   200; point-shift high/low, critical high/low, random), timed end to end.
2. A sweep of point-shift's power alpha and the schedule (points per step) for high-drop at 200 points.
Needs ../shared/data (skipped otherwise).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POINTLENS_SHARED_DATA", ROOT.parent / "shared" / "data"))
CKPT = SHARED / "learning3d_pointnet_cls_modelnet40_best_model.t7"
NPZ = SHARED / "modelnet40_normal_resampled_subset_2048.npz"
OUT = ROOT / "runs" / "bench_drop_real"


def cli_experiment(quick: bool, reuse: bool = False) -> tuple[dict, float, str]:
    args = ["drop", "--checkpoint", str(CKPT), "--checkpoint-format", "learning3d", "--data", f"npz:{NPZ}",
            "--split", "test", "--points", "1024", "--methods", "pointshift,random,critical", "--mode", "both",
            "--budgets", "0,25,50,100,150,200", "--per-step", "10", "--alpha", "1", "--json", "--quiet",
            "--out", str(OUT / "cli")]
    if quick:
        args += ["--limit", "8"]
    shown = "pointlens " + " ".join(args).replace(str(SHARED), "../shared/data").replace(str(ROOT) + "/", "")
    done = OUT / "cli" / "metrics.json"
    if reuse and not quick and done.is_file():
        # POINTLENS_BENCH_REUSE=1: keep the finished CLI run; its own per-curve times are summed instead
        m = json.loads(done.read_text())
        if m.get("n") == 147:
            return json.loads((OUT / "cli" / "curves.json").read_text()), sum(m["time_s"].values()), shown
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "pointlens.cli.main", *args], capture_output=True, text=True)
    took = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-2000:])
    return json.loads(res.stdout), took, shown


def sweep(quick: bool) -> list[dict]:
    import torch

    from pointlens.attribution import create_attribution
    from pointlens.data import load_dataset
    from pointlens.models import load_checkpoint
    from pointlens.perturb.dropping import drop_curve

    model = load_checkpoint(CKPT, format="learning3d").model
    data = load_dataset(f"npz:{NPZ}", split="test", num_points=1024, limit=8 if quick else None)
    pts, lab = torch.from_numpy(data.points), torch.from_numpy(data.labels)
    rows = []
    alphas = (1.0,) if quick else (1.0, 2.0, 6.0)
    steps = (10,) if quick else (1, 5, 10)
    for per_step in steps:
        for alpha in alphas:
            if per_step == 1 and alpha != 1.0:
                continue  # 200 re-scorings per curve: only the default power
            t0 = time.perf_counter()
            r = drop_curve(model, pts, lab, create_attribution("pointshift", model, alpha=alpha),
                           budgets=(0, 25, 50, 100, 150, 200), per_step=per_step, mode="high", keep_clouds=False)
            rows.append({"per_step": per_step, "alpha": alpha, "acc@100": r.accuracy[100],
                         "acc@200": r.accuracy[200], "seconds": time.perf_counter() - t0})
    return rows


def run(quick: bool = False) -> str:
    if not (CKPT.is_file() and NPZ.is_file()):
        return "## Dropping on real ModelNet40 (issue 3)\n\nskipped: ../shared/data is absent."
    curves, took, cmd = cli_experiment(quick, reuse=os.environ.get("POINTLENS_BENCH_REUSE") == "1")
    budgets = list(next(iter(curves.values())).keys())
    lines = ["## Salient-point dropping on real ModelNet40 (issue 3)", "",
             "learning3d's PointNet (trained elsewhere on full ModelNet40) on the 147 real test shapes of "
             "`../shared/data` (first 1,024 points, unit sphere), 10 points deleted per step, re-scored each step, "
             "point-shift alpha = 1. Accuracy after deleting that many points:", "",
             "| curve | " + " | ".join(budgets) + " |", "|---|" + "---|" * len(budgets)]
    for name, c in curves.items():
        lines.append(f"| {name} | " + " | ".join(f"{c[b]:.3f}" for b in budgets) + " |")
    lines += ["", f"Whole experiment (6 curves incl. the duplicate random-low, through the CLI): **{took:.0f} s**. "
              f"Command: `{cmd}`", "",
              "Sweep of point-shift high-drop (power alpha, points per step; accuracy after 100 and 200 points):", "",
              "| points/step | alpha | acc@100 | acc@200 | seconds |", "|---|---|---|---|---|"]
    rows = sweep(quick)
    for r in rows:
        lines.append(f"| {r['per_step']} | {r['alpha']:g} | {r['acc@100']:.3f} | {r['acc@200']:.3f} | "
                     f"{r['seconds']:.0f} |")
    best = min(rows, key=lambda r: (r["acc@200"], r["seconds"]))
    lines += ["", f"Best: {best['per_step']} points per step, alpha = {best['alpha']:g} -> accuracy "
              f"{best['acc@200']:.3f} after 200 points."]
    return "\n".join(lines)
