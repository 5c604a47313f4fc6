"""RISE's own estimator vs the centred one (``estimator="centred"``) under the explanation metrics.

RISE's score ``sum_m f_m M_mi / (n_masks p)`` contains ``mean(f) * count_i / (n_masks p)``: how often the seed's
masks happened to keep point ``i``. The masks depend only on the seed and the cloud, so that term is the same
before and after the model is randomised; the centred estimator subtracts ``mean(f)`` first. Both run here
through :func:`pointlens.benchmark.run_benchmark` with the same masks (same seed, 128 masks, as in the
every-method table) on the trained checkpoints of ``bench_train_accuracy`` (``runs/bench_train/<model>``):
PointNet on 16 ShapeParts test clouds of 1,024 points (sanity on 8), DGCNN on 8 clouds of 512 points (sanity on
4). Columns: localisation (relevance mass, AUROC), faithfulness (deletion AUC: lower is better), the mean
cascading Spearman after every layer is randomised, and the sanity verdict (fail above 0.5).

Usage: ``python benchmarks/run_all.py rise_estimator [--quick]``.
"""

from __future__ import annotations

import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ("relevance_mass_accuracy", "auroc", "deletion_auc", "cascading_spearman", "sanity_pass")


def run(quick: bool = False) -> str:
    from pointlens.benchmark import BenchmarkConfig, run_benchmark
    from pointlens.data import load_dataset
    from pointlens.models.checkpoint import load_checkpoint

    lines = ["## RISE: its own estimator vs the centred one (mean output subtracted)", "",
             "Same masks for both (seed 0, 128 masks, keep 50 %, deletion), ShapeParts test clouds, true-class "
             "target; `random` is the reference row of each run. Relevance mass and AUROC: higher is better; "
             "deletion AUC: lower is better; cascading Spearman: rank correlation with the original scores after "
             "every layer is randomised (a method above 0.5 fails the sanity check).", "",
             "| model | clouds x points (sanity clouds) | estimator | " + " | ".join(COLUMNS) + " | seconds |",
             "|---|---|---|" + "---|" * (len(COLUMNS) + 1)]
    for model_name, points, limit, sanity in (("pointnet", 1024, 16, 8), ("dgcnn", 512, 8, 4)):
        ckpt = ROOT / "runs" / "bench_train" / model_name / "checkpoint.pt"
        if not ckpt.is_file():
            lines.append(f"| {model_name} | missing {ckpt.relative_to(ROOT)} (run bench_train_accuracy first) |")
            continue
        model = load_checkpoint(ckpt).model.eval()
        if quick:
            points, limit, sanity = 256, 2, 1
        data = load_dataset("shapeparts", split="test", num_points=points, limit=limit)
        rows = {}
        for estimator in ("rise", "centred"):
            cfg = BenchmarkConfig(methods=("rise",), metrics=("localisation", "faithfulness", "sanity"),
                                  method_options={"rise": {"n_masks": 16 if quick else 128,
                                                           "estimator": estimator}},
                                  sanity_clouds=sanity)
            t0 = time.perf_counter()
            table = run_benchmark(model, data, cfg).table
            took = time.perf_counter() - t0
            by = {r["method"]: r for r in table["rows"]}
            rows[estimator] = (by["rise"], took)
            rows.setdefault("random", (by["random"], None))
        for name, (row, took) in rows.items():
            cells = [_fmt(row.get(c)) for c in COLUMNS]
            lines.append(f"| {model_name} | {limit} x {points} ({sanity}) | {name} | " + " | ".join(cells)
                         + f" | {'' if took is None else f'{took:.0f}'} |")
    return "\n".join(lines)


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "pass" if v else "FAIL"
    return f"{v:.3f}"
