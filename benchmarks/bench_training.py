"""Issue 2, line 5: training throughput (clouds/s) of each model, with and without the allocator tuning.

One optimisation step = forward + backward + Adam update on a batch of random clouds. Every configuration runs in
its own fresh subprocess (so the glibc allocator setting of one run cannot leak into the other), the two settings
side by side in the same benchmark run.
"""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = r"""
import json, sys, time, torch
import torch.nn.functional as F
cfg = json.loads(sys.argv[1])
if cfg["tune"]:
    from pointlens.utils.perf import tune_allocator
    tune_allocator()
from pointlens.models import create_model
torch.manual_seed(0)
m = create_model(cfg["model"], 14)
opt = torch.optim.Adam(m.parameters())
x = torch.randn(cfg["batch"], cfg["points"], 3)
y = torch.randint(0, 14, (cfg["batch"],))
times = []
for i in range(cfg["steps"] + 1):
    t = time.perf_counter()
    loss = F.cross_entropy(m(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if i:
        times.append(time.perf_counter() - t)
times.sort()
print(json.dumps({"clouds_per_s": cfg["batch"] / times[len(times) // 2]}))
"""


def measure(model: str, points: int, batch: int, steps: int, tune: bool) -> float:
    cfg = json.dumps({"model": model, "points": points, "batch": batch, "steps": steps, "tune": tune})
    res = subprocess.run([sys.executable, "-c", CHILD, cfg], capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-2000:])
    return json.loads(res.stdout)["clouds_per_s"]


def run(quick: bool = False) -> str:
    plan = [("pointnet", 1024, 32), ("pointnet2", 1024, 16), ("dgcnn", 1024, 16),
            ("pointnet2", 512, 16), ("dgcnn", 512, 16)]
    steps = 1 if quick else 5
    if quick:
        plan = [(m, 128, 4) for m, _, _ in plan[:3]]
    lines = ["## Training throughput (issue 2)", "",
             "Clouds per second of one optimisation step (forward + backward + Adam), median of "
             f"{steps} steps after a warm-up step, random clouds, 14 classes. `tuned` = with "
             "`pointlens.utils.perf.tune_allocator()` (what the CLI does), `default` = glibc's default "
             "allocator settings; each in a fresh process, side by side in this run.", "",
             "| model | points | batch | default clouds/s | tuned clouds/s | speed-up |", "|---|---|---|---|---|---|"]
    for model, points, batch in plan:
        base = measure(model, points, batch, steps, tune=False)
        tuned = measure(model, points, batch, steps, tune=True)
        lines.append(f"| {model} | {points} | {batch} | {base:.1f} | {tuned:.1f} | {tuned / base:.2f}x |")
    return "\n".join(lines)
