"""Issue 11, line 4, load-independent: CPU seconds (``time.process_time``) of FlowAM and naive AM for one sample and
for a batch of 8 (ShapeParts PointNet, 1,024 points), beside wall seconds.

The wall-clock section (bench_maximize_speed) was measured while the shared 2-core machine ran at load 7-18, so its
times mostly measure the other processes; CPU seconds of this process do not. 20 steps are timed (the cost per
step is constant, so 200 default steps cost 10x); flow statistics from 16 real instances per class (collection not
timed).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_maximize_shapeparts import am_setup, load_note  # noqa: E402


def run(quick: bool = False) -> str:
    import torch

    from pointlens.maximize import maximize

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    load0 = load_note()
    am = am_setup(quick, per_class=16)
    model, n, pts, lab, stats = am.model, am.points, am.pts, am.lab, am.stats
    steps = 3 if quick else 20
    rows = []
    for method in ("flow", "naive"):
        res = {}
        for s in (1, 8):
            extra = {"flow_stats": stats} if method == "flow" else {}
            c0, w0 = time.process_time(), time.perf_counter()
            maximize(model, 0, method, samples=s, steps=steps, seed=0, points=n, data=pts, data_labels=lab, **extra)
            res[s] = (time.process_time() - c0, time.perf_counter() - w0)
        (c1, w1), (c8, w8) = res[1], res[8]
        per200 = c1 * 200 / steps
        rows.append(f"| {method} | {c1:.2f} | {c8:.2f} | {c8 / c1:.2f} | {per200:.0f} | {w1:.1f} | {w8:.1f} |")
    return "\n".join([
        "## Activation maximisation: CPU seconds, one sample vs a batch of 8 (issue 11, line 4)", "",
        f"ShapeParts PointNet, {n} points, {steps} Adam steps, {torch.get_num_threads()} torch thread(s); load "
        f"average before {load0}, after {load_note()}.", "",
        "| method | CPU s, 1 sample | CPU s, batch of 8 | ratio | CPU s per sample at 200 steps | wall s, 1 | "
        "wall s, 8 |", "|---|---|---|---|---|---|---|", *rows, ""])
