"""Issue 4, line 3: the recognition-vs-reconstruction study on ShapeParts, object- and viewer-centred frames.

Runs ``pointlens recon run --data shapeparts --frame both`` (the CLI's defaults) once and reports its table and the
wall time of the whole study.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "runs" / "bench_recon"


def run(quick: bool = False) -> str:
    args = ["recon", "run", "--frame", "both", "--out", str(OUT), "--quiet"]
    if quick:
        args.append("--quick")
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "pointlens.cli.main", *args], capture_output=True, text=True)
    took = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-3000:])
    table = (OUT / "results.md").read_text().strip()
    shown = "pointlens " + " ".join(args).replace(str(ROOT) + "/", "")
    return "\n".join([
        "## Recognition vs. reconstruction on ShapeParts (issue 4)", "",
        f"The whole study (both frames, all four methods, training included) took **{took / 60:.1f} min** "
        f"(`{shown}`). Study output (`results.md`):", "", table])
