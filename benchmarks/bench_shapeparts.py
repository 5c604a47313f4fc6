"""ShapeParts benchmark: generation speed, discriminative-part shares, and is the evidence where we say.

1. Generation time of ``n`` clouds x 1,024 points (single objects and scenes) and the time to load the same
   set back from its ``.npz`` cache (the target: 2,000 clouds in under 10 s).
2. Share of each class's points on its discriminative parts (target: roughly 10-30%).
3. Is the evidence where we say (issue 2, line 3)? With the PointNet trained by ``bench_train_accuracy``: twin
   accuracy (the true class's logit beats its twin's) clean, after DELETING the discriminative parts (target:
   <= 0.65, chance is 0.5) and after deleting as many random other points (target: >= 0.9).

``run(quick=True)`` uses 200 clouds for the timing and 40 test clouds for the check.
"""

from __future__ import annotations

import tempfile
import time

import numpy as np

from pointlens.data import shapeparts as sp


def _timing(n: int) -> list[tuple[str, float]]:
    rows = []
    t0 = time.perf_counter()
    sp.generate(n=n, points=1024, seed=0)
    rows.append((f"generate {n} objects x 1024 points", time.perf_counter() - t0))
    t0 = time.perf_counter()
    sp.generate(n=n, points=1024, seed=0, scene=True)
    rows.append((f"generate {n} scenes x 1024 points", time.perf_counter() - t0))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        sp.generate(n=n, points=1024, seed=0, cache=tmp)
        rows.append((f"generate {n} objects + write cache", time.perf_counter() - t0))
        t0 = time.perf_counter()
        sp.generate(n=n, points=1024, seed=0, cache=tmp)
        rows.append((f"load {n} objects from cache", time.perf_counter() - t0))
    return rows


def _shares(ds) -> list[tuple[str, float, float, float]]:
    out = []
    for c, name in enumerate(ds.class_names):
        s = ds.gt_mask[ds.labels == c].mean(1)
        out.append((name, float(s.mean()), float(s.min()), float(s.max())))
    return out


def _evidence_check(quick: bool) -> dict:
    """Issue 2, line 3 at full size: the PointNet of ``bench_train_accuracy`` on the default test split."""
    from pathlib import Path

    from pointlens.data import load_dataset
    from pointlens.models import load_checkpoint
    from pointlens.perturb.evidence import evidence_deletion_check

    ckpt = Path(__file__).resolve().parents[1] / "runs" / "bench_train" / "pointnet" / "checkpoint.pt"
    if not ckpt.is_file():
        return {"skipped": f"no {ckpt} (run `python benchmarks/run_all.py train_accuracy` first)"}
    test = load_dataset("shapeparts", split="test", num_points=1024, limit=40 if quick else None)
    twins = np.array([test.class_names.index(sp.twin_of(c)) for c in test.class_names])
    return evidence_deletion_check(load_checkpoint(ckpt).model, test, twins, seed=0).to_dict()


def run(quick: bool = False) -> str:
    """Measure ShapeParts and return the Markdown section (quick: 200 clouds and a tiny training run)."""
    n = 200 if quick else 2000
    lines = ["## ShapeParts generator", "",
             "Generation speed (numpy, vectorised over all clouds), share of points on the discriminative "
             "parts, and the evidence-deletion check (`benchmarks/bench_shapeparts.py`).", "",
             "| step | seconds |", "|---|---|"]
    lines += [f"| {name} | {sec:.2f} |" for name, sec in _timing(n)]
    lines += ["", "| class | discriminative share (mean) | min | max |", "|---|---|---|---|"]
    ds = sp.generate(n=n, points=1024, seed=0)
    lines += [f"| {c} | {m:.3f} | {lo:.3f} | {hi:.3f} |" for c, m, lo, hi in _shares(ds)]
    res = _evidence_check(quick)
    lines += ["", "Is the ground truth real? The full-size PointNet trained by `bench_train_accuracy` on default "
              "ShapeParts, on its test split (`pointlens.perturb.evidence.evidence_deletion_check`; points "
              "really deleted):", "", "| measure | value |", "|---|---|"]
    lines += [f"| {k} | {v:.3f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in res.items()]
    lines += ["", "Twin accuracy: the true class's logit beats its twin's. Chance is 0.5."]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(run(quick="--quick" in sys.argv))
