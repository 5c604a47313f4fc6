"""Attribution speed, side by side in one run on the same PointNet and batch.

1. PointShift saliency (pointlens) vs Captum's ``Saliency``: attributions per second (one forward + one
   backward each; target: PointShift >= 0.9x Captum).
2. Exact leave-one-out: the fast max-pool path vs brute force (N clouds of N - 1 points) on 1,024-point clouds
   (target: >= 50x). Brute force is timed on fewer clouds and compared PER CLOUD; both are checked to agree.

Usage: ``python benchmarks/run_all.py attribution [--quick]`` or ``python benchmarks/bench_attribution.py
[--quick]``.
"""

from __future__ import annotations

import statistics
import sys
import time

import torch
from torch import nn


class _LocalPointNet(nn.Module):
    """Fallback PointNet (no T-Nets) when ``pointlens.models.create_model`` is not available."""

    def __init__(self, num_classes: int = 40):
        super().__init__()
        widths = [3, 64, 64, 64, 128, 1024]
        layers = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv1d(a, b, 1), nn.BatchNorm1d(b), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.pool = _MaxPool()
        self.head = nn.Sequential(nn.Linear(1024, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, 256),
                                  nn.BatchNorm1d(256), nn.ReLU(), nn.Linear(256, num_classes))
        self.pool_layer = "pool"
        self.pointwise_until_pool = True

    def forward(self, points):
        return self.head(self.pool(self.features(points.transpose(1, 2))))


class _MaxPool(nn.Module):
    def forward(self, x):
        return x.max(dim=2).values


def _model(num_classes: int = 40) -> tuple[nn.Module, str]:
    try:
        from pointlens.models import create_model

        return create_model("pointnet", num_classes), "registry `pointnet` (no T-Nets)"
    except Exception:  # pragma: no cover - before the models package exists
        return _LocalPointNet(num_classes), "local PointNet (no T-Nets)"


def _timeit(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(quick: bool = False) -> str:
    """Run both comparisons and return a Markdown section."""
    from captum.attr import Saliency

    from pointlens.attribution import Occlusion, PointShift

    torch.manual_seed(0)
    model, model_name = _model()
    model.eval()
    batch, n = (4, 256) if quick else (32, 1024)
    repeats = 2 if quick else 5
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, n, 3, generator=g)
    x = x / x.norm(dim=-1).amax(dim=1, keepdim=True).unsqueeze(-1)
    with torch.no_grad():
        target = model(x).argmax(-1)

    ps = PointShift(model, batch_size=batch)
    sal = Saliency(model)
    t_ps, t_sal = [], []
    ps.attribute(x, target)
    sal.attribute(x.clone().requires_grad_(True), target=target)
    for _ in range(repeats):  # alternate so both see the same machine load
        t_ps.append(_timeit(lambda: ps.attribute(x, target), 1))
        t_sal.append(_timeit(lambda: sal.attribute(x.clone().requires_grad_(True), target=target), 1))
    ps_rate, sal_rate = batch / statistics.median(t_ps), batch / statistics.median(t_sal)

    n_loo = 256 if quick else 1024
    fast_clouds, brute_clouds = (2, 1) if quick else (16, 2)
    xl = torch.randn(fast_clouds, n_loo, 3, generator=g)
    xl = xl / xl.norm(dim=-1).amax(dim=1, keepdim=True).unsqueeze(-1)
    fast = Occlusion(model, batch_size=256)
    brute = Occlusion(model, fast=False, batch_size=128 if quick else 256)
    s_fast = fast.attribute(xl)
    assert fast.last_path == "fast"
    t_fast = _timeit(lambda: fast.attribute(xl), 1 if quick else 3) / fast_clouds
    t0 = time.perf_counter()
    s_brute = brute.attribute(xl[:brute_clouds])
    t_brute = (time.perf_counter() - t0) / brute_clouds
    err = float((s_fast[:brute_clouds] - s_brute).abs().max())

    ratio_ps = ps_rate / sal_rate
    ratio_loo = t_brute / t_fast
    lines = [
        "## Attribution speed",
        "",
        f"Model: {model_name}, 40 classes, eval mode, CPU float32. Same process, same inputs, side by side."
        + (" **--quick sizes (not the headline numbers).**" if quick else ""),
        "",
        "| comparison | pointlens | reference | ratio | target |",
        "|---|---|---|---|---|",
        f"| PointShift vs Captum `Saliency`, batch {batch} x {n} points (median of {repeats}) | "
        f"{ps_rate:.1f} clouds/s | {sal_rate:.1f} clouds/s | {ratio_ps:.2f}x | >= 0.9x |",
        f"| exact leave-one-out, {n_loo}-point clouds: fast max-pool path vs brute force (per cloud; fast on "
        f"{fast_clouds} clouds, brute on {brute_clouds}) | {t_fast * 1e3:.1f} ms/cloud | "
        f"{t_brute * 1e3:.0f} ms/cloud | {ratio_loo:.0f}x faster | >= 50x |",
        "",
        f"Leave-one-out agreement on the brute-forced clouds: max |fast - brute| = {err:.2e} (logit units).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv[1:]))
