"""Issue 11, line 1, the DGCNN's success rate at the default step count.

``bench_maximize_shapeparts`` runs every class at 100 Adam steps (half the default, to fit the 2-core machine);
there the 100%-accurate DGCNN's samples reach the target on 62% (naive), 79% (FlowAM) and 79% (generative) of
the samples, and the target logits of the failing naive/FlowAM samples are still rising at step 100. This
benchmark repeats the DGCNN run at the default 200 steps (docs/maximize.md), nothing else changed (same seeds,
samples, weights, autoencoder, reference model), and reports success per class beside the 100-step run, plus the
naive/FlowAM Chamfer and FID ratios of the paper's first claim.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_maximize_shapeparts import (  # noqa: E402
    OUT,
    PLAN,
    SAMPLES,
    cli,
    ensure_autoencoder,
    ensure_classifier,
    fmt,
    load_note,
    load_table,
    ratio_rows,
    shown,
    summary_rows,
)

STEPS = 200


def run(quick: bool = False) -> str:
    ck, _ = ensure_classifier("dgcnn", quick)
    ref, _ = ensure_classifier("pointnet", quick)
    points = 256 if quick else PLAN["dgcnn"][0]
    ae = ensure_autoencoder(points, quick, name="ae_shapeparts" if points == 1024 else f"ae_shapeparts_{points}")[0]
    samples, steps = (2, 5) if quick else (SAMPLES, STEPS)
    folder = OUT / ("quick_am_dgcnn_200" if quick else f"am_dgcnn_{STEPS}")
    args = ["maximize", "--checkpoint", str(ck), "--data", "shapeparts:n=200" if quick else "shapeparts",
            "--points", str(points), "--method", "naive,flow,generative", "--samples", str(samples),
            "--steps", str(steps), "--autoencoder", str(ae), "--out", str(folder), "--quiet", "--json",
            "--reference", str(ref)]
    if quick:
        args += ["--classes", "chair,mug", "--k", "2"]
    load0 = load_note()
    _, secs = cli(args, reuse=folder / "metrics.json")
    table = load_table(folder)
    before = OUT / ("quick_am_dgcnn" if quick else "am_dgcnn")
    old = load_table(before) if (before / "metrics.json").is_file() else {}
    lines = [f"## Activation maximisation with the DGCNN at {steps} steps, the default (issue 11, line 1)", "",
             f"`{shown(args)}` ({secs:.0f} s; 0 = reused run; load average before {load0}). Everything as in the "
             "100-step DGCNN run of the section above except the step count.", "",
             "| method | classes | success mean (min) | Chamfer to 5 nearest real | FID | m-IS | PCAMS | diversity |",
             "|---|---|---|---|---|---|---|---|", *summary_rows(table), "",
             "Success per class, 100 steps (section above) -> 200 steps:", "",
             "| class | " + " | ".join(table) + " |", "|---|" + "---|" * len(table)]
    for c in next(iter(table.values())):
        cells = []
        for meth in table:
            was = old.get(meth, {}).get(c, {}).get("success")
            cells.append(f"{fmt(was, 2)} -> {fmt(table[meth][c]['success'], 2)}")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines += ["", "Naive over FlowAM, per class (the paper claims >= 2 for both):", "",
              "| class | Chamfer naive | Chamfer flow | ratio | FID naive | FID flow | ratio |",
              "|---|---|---|---|---|---|---|", *ratio_rows(table), ""]
    return "\n".join(lines)
