"""Issue 16, line 3 (point-shift vs Captum ``Saliency``) and the critical-point backward, side by side.

32 ShapeParts test clouds of 512 points, the PointNet of ``runs/pointnet`` (trained by bench_peers.py when absent),
one thread; three calls alternating, median of 7: point-shift as shipped (critical-point backward in chunks of
``POINT_CHUNK`` = 64 points), point-shift with one chunk of all 512 points, Captum ``Saliency`` (gradient of the
target logit). Needs Captum (test extra).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(quick: bool = False) -> str:
    import os

    import torch
    from captum.attr import Saliency

    import pointlens.attribution.gradient as G
    from pointlens.attribution import create_attribution
    from pointlens.data import load_dataset

    torch.set_num_threads(1)
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_peers import _model  # the peers benchmark's PointNet (trained there when absent)

    model, _ = _model(quick)
    te = load_dataset("shapeparts", split="test", num_points=512, limit=8 if quick else 32)
    x, y = torch.from_numpy(te.points), torch.from_numpy(te.labels)
    ps = create_attribution("pointshift", model)
    sal = Saliency(model)

    def shipped():
        ps.attribute(x, target=y)

    def critical():
        old = G.GradientAttribution.point_chunk
        G.GradientAttribution.point_chunk = 8192        # the whole cloud as one chunk
        try:
            ps.attribute(x, target=y)
        finally:
            G.GradientAttribution.point_chunk = old

    def captum():
        sal.attribute(x.clone().requires_grad_(True), target=y, abs=False)

    calls = {"point-shift (shipped)": shipped, "point-shift, one chunk of 512 points": critical,
             "Captum Saliency": captum}
    times = {k: [] for k in calls}
    load0 = os.getloadavg()
    for f in calls.values():
        f()
    for _ in range(2 if quick else 7):
        for k, f in calls.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    lines = ["## Point-shift vs Captum Saliency, and the critical-point backward (issue 16, line 3)", "",
             f"{len(x)} ShapeParts test clouds of 512 points, `runs/pointnet/checkpoint.pt`, one thread, the three "
             f"calls alternating, median of {len(times['Captum Saliency'])}; load average before "
             f"{tuple(round(v, 2) for v in load0)}.",
             "", "| call | seconds (32 clouds) | clouds/s | vs Captum Saliency |", "|---|---|---|---|"]
    for k, v in med.items():
        lines.append(f"| {k} | {v:.3f} | {len(x) / v:.1f} | {med['Captum Saliency'] / v:.3f}x |")
    lines += ["", "Both point-shift rows back-propagate through the max pool's critical points only (the same "
              "gradient); the shipped one does it 64 points at a time, which keeps each chunk's activations "
              "(64 x 1,024 channels) in the CPU caches — the whole-cloud row shows what that is worth."]
    return "\n".join(lines)
