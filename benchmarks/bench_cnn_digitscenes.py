"""Issue 13: test mAP and training time of the image classifier ``cnn`` on default DigitScenes.

Runs ``pointlens train --model cnn --data digitscenes`` (the real CLI, in a subprocess) and reports the test mAP,
mean F1 and exact-match accuracy, the training seconds, and the training time when the test mAP first reached
0.9 (evaluated after every epoch). The checkpoint stays in ``runs/bench_cnn/cnn/checkpoint.pt`` for the image
explainer benchmarks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs" / "bench_cnn"


def run(quick: bool = False) -> str:
    data = "digitscenes:n=120,size=32" if quick else "digitscenes"
    load = "%.2f, %.2f, %.2f" % os.getloadavg()  # others may share the cores: the load when the run started
    out = RUNS / ("cnn-quick" if quick else "cnn")
    cmd = [sys.executable, "-m", "pointlens.cli.main", "train", "--model", "cnn", "--data", data,
           *(["--epochs", "1"] if quick else []), "--out", str(out), "--json", "--quiet", "--no-report"]
    res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "POINTLENS_PROGRESS": "0"})
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr[-2000:]}")
    m = json.loads((out / "metrics.json").read_text())  # the printed JSON leaves the per-epoch history out
    epochs = m["epochs"]
    command = "pointlens " + " ".join(cmd[3:-3]).replace(str(ROOT) + "/", "")
    t = m.get("test", {})
    elapsed, reached = 0.0, "not reached"
    for h in m.get("history", []):
        elapsed += h["seconds"]
        if h.get("test", {}).get("map", 0.0) >= 0.9:
            reached = f"{elapsed:.0f} s (epoch {h['epoch']})"
            break
    curve = ", ".join(f"{h['test']['map']:.3f}" for h in m.get("history", []) if "test" in h)
    threads = os.environ.get("OMP_NUM_THREADS", "all cores")
    return "\n".join([
        "## The image classifier `cnn` on DigitScenes (issue 13)", "",
        "Test quality of `cnn` (per-image channel standardisation, 4 conv blocks of two 3x3 convs, 16-32-64-128 "
        "channels, global average pool; "
        f"{m['parameters']:,} parameters) trained by `pointlens train` on default DigitScenes (64x64 scenes of 1-3 "
        "real handwritten digits from scikit-learn's scans on textured backgrounds; 2,000 train / 500 test scenes "
        "whose scans are disjoint) with the command's defaults for cnn (8 epochs, peak lr 2e-3, Adam with cosine "
        "decay, batch 32, no augmentation), multi-label BCE. `train s` "
        f"is time in training steps (evaluation excluded); threads: {threads}; load average at the start: {load}.",
        "",
        "| epochs | test mAP | mean F1 | exact-match acc. | train s | mAP >= 0.9 after | images/s | command |",
        "|---|---|---|---|---|---|---|---|",
        f"| {epochs} | {t.get('map', float('nan')):.4f} | {t.get('mean_f1', float('nan')):.4f} | "
        f"{t.get('accuracy', float('nan')):.4f} | {m['train_seconds']:.0f} | {reached} | "
        f"{m['clouds_per_second']:.1f} | `{command}` |", "",
        f"Test mAP after each epoch: {curve}.",
    ])
