"""Benchmark of pointlens.metrics.shape: F-score of large clouds and of a batch, against naive torch.cdist
and a direct scipy cKDTree, plus the torch / KD-tree crossover that ``backend="auto"`` uses.

Every case runs in its own subprocess, so the peak resident memory it reports (``ru_maxrss`` after the call
minus before it, the clouds already in memory) belongs to that case alone.

Usage: ``python benchmarks/run_all.py shape_metrics [--quick]`` (or run this file directly).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

_CHILD = textwrap.dedent("""
    import json, resource, sys, time
    import numpy as np, torch
    from scipy.spatial import cKDTree
    from pointlens.metrics.shape import fscore, nn_distances

    case, b, n, m, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(b, n, 3, generator=g) - 0.5
    # the ground truth: the first m predicted points moved by 1% noise (a realistic F-score)
    gt = pred[:, :m] + 0.01 * torch.randn(b, m, 3, generator=g)
    thr = [0.005, 0.01, 0.02]

    def cdist_fscore():
        d = torch.cdist(pred, gt)
        d1, d2 = d.min(2).values, d.min(1).values
        t = torch.tensor(thr)
        p = (d1.unsqueeze(-1) < t).float().mean(1)
        r = (d2.unsqueeze(-1) < t).float().mean(1)
        return torch.where(p + r > 0, 2 * p * r / (p + r).clamp_min(1e-12), torch.zeros_like(p))

    def scipy_fscore():
        out = []
        for x, y in zip(pred.numpy(), gt.numpy()):
            d1, _ = cKDTree(y).query(x, k=1, workers=-1)
            d2, _ = cKDTree(x).query(y, k=1, workers=-1)
            out.append([(2 * p * r / (p + r)) if p + r > 0 else 0.0
                        for p, r in (((d1 < t).mean(), (d2 < t).mean()) for t in thr)])
        return out

    fns = {
        "auto": lambda: fscore(pred, gt, thr),
        "torch": lambda: fscore(pred, gt, thr, backend="torch"),
        "kdtree": lambda: fscore(pred, gt, thr, backend="kdtree"),
        "cdist": cdist_fscore,
        "scipy": scipy_fscore,
        "nn-torch": lambda: nn_distances(pred, gt, backend="torch"),
        "nn-kdtree": lambda: nn_distances(pred, gt, backend="kdtree"),
    }
    fn = fns[case]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": best, "peak_mb": (after - before) / 1024}))
""")


def _case(case: str, b: int, n: int, m: int, reps: int, timeout: float = 900) -> dict:
    """Run one case in a fresh interpreter; returns {seconds, peak_mb} or {error}."""
    try:
        proc = subprocess.run([sys.executable, "-c", _CHILD, case, str(b), str(n), str(m), str(reps)],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["killed"])[-1]
        return {"error": "out of memory" if "memory" in last.lower() or proc.returncode < 0 else last[:80]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _fmt(res: dict, ref: dict | None = None) -> str:
    if "error" in res:
        return f"{res['error']} | — | —"
    ratio = f"{ref['seconds'] / res['seconds']:.1f}x" if ref and "seconds" in ref else "—"
    return f"{res['seconds']:.3f} | {res['peak_mb']:.0f} | {ratio}"


def run(quick: bool = False) -> str:
    """Measure and return the Markdown section (see the module docstring)."""
    big = 10_000 if quick else 100_000
    small_cdist = 5_000 if quick else 20_000  # naive cdist of the big pair would need big^2 * 4 bytes
    batch, pts = (4, 1024) if quick else (32, 2048)
    reps = 1 if quick else 3
    lines = ["## Shape metrics (F-score, nearest-neighbour distances)", "",
             f"F-score at 3 thresholds (pointlens.metrics.shape.fscore, both directions), best of {reps} "
             "run(s), each case in its own subprocess. Peak MB = increase of the process's peak resident "
             "memory during the call (clouds already loaded). Speed-up = naive `torch.cdist` time at the "
             "same size / this time.", ""]

    lines += [f"### Two clouds of {big:,} points", "",
              "| method | points per cloud | seconds | peak MB | speed-up vs cdist |",
              "|---|---|---|---|---|"]
    cd_small = _case("cdist", 1, small_cdist, small_cdist, 1)
    scale = (big / small_cdist) ** 2
    est = {"seconds": cd_small["seconds"] * scale} if "seconds" in cd_small else None
    for name, label in (("auto", "pointlens auto (KD-tree)"), ("scipy", "scipy cKDTree directly")):
        lines.append(f"| {label} | {big:,} | {_fmt(_case(name, 1, big, big, reps), est)} |")
    gib = big * big * 4 / 2**30
    if est is not None:
        lines.append(f"| naive torch.cdist | {big:,} | not run: the {big:,}² matrix needs {gib:.1f} GiB; "
                     f"≈{est['seconds']:.1f} s = the time below × (N / {small_cdist:,})² | — | 1.0x (est.) |")
    lines.append(f"| naive torch.cdist | {small_cdist:,} | {_fmt(cd_small, cd_small)} |")
    lines.append(f"| pointlens torch (chunked brute force) | {small_cdist:,} | "
                 f"{_fmt(_case('torch', 1, small_cdist, small_cdist, 1), cd_small)} |")
    lines.append(f"| pointlens auto (KD-tree) | {small_cdist:,} | "
                 f"{_fmt(_case('auto', 1, small_cdist, small_cdist, reps), cd_small)} |")

    lines += ["", f"### A batch of {batch} pairs of {pts:,}-point clouds", "",
              "| method | seconds | peak MB | speed-up vs cdist |", "|---|---|---|---|"]
    cd = _case("cdist", batch, pts, pts, reps)
    for name, label in (("auto", "pointlens auto"), ("kdtree", "pointlens kdtree"),
                        ("torch", "pointlens torch (chunked)"), ("scipy", "scipy cKDTree directly"),
                        ("cdist", "naive torch.cdist")):
        res = cd if name == "cdist" else _case(name, batch, pts, pts, reps)
        lines.append(f"| {label} | {_fmt(res, cd)} |")

    sizes = [256, 1024, 4096] if quick else [256, 512, 1024, 2048, 4096, 8192]
    lines += ["", "### Crossover of `backend=\"auto\"` (one direction, one pair of N-point clouds)", "",
              "| N = M | N·M | torch s | KD-tree s | faster |", "|---|---|---|---|---|"]
    for n in sizes:
        t = _case("nn-torch", 1, n, n, max(reps, 3))
        k = _case("nn-kdtree", 1, n, n, max(reps, 3))
        if "seconds" in t and "seconds" in k:
            faster = "torch" if t["seconds"] < k["seconds"] else "KD-tree"
            lines.append(f"| {n:,} | {n * n:.1e} | {t['seconds']:.4f} | {k['seconds']:.4f} | {faster} |")
    from pointlens.metrics.shape import KDTREE_MIN_PAIRS

    lines += ["", f"`backend=\"auto\"` uses the KD-tree on CPU when N·M ≥ {KDTREE_MIN_PAIRS:.0e} and the "
              "chunked torch path otherwise (always torch on GPU). Targets: two 100,000-point clouds ≤ 2 s "
              "and < 1 GB peak; 32 pairs of 2,048 points ≤ 0.5 s (2 cores)."]
    if quick:
        lines.insert(1, "_Quick run: reduced sizes, only to check that the script runs._\n")
    return "\n".join(lines)


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
