"""Issue 2, line 1: wall time of the main job (``pointlens demo``) and of the whole test suite.

``make demo`` = create the virtual environment (once) + ``pointlens demo --out demo_out``; ``make test`` = the same
environment + pytest. This benchmark times the two commands in the existing environment (the one-off environment
creation is timed separately on a fresh clone and reported in the issue notes).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(quick: bool = False) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        args = ["demo", "--out", tmp, "--json", "--quiet"]
        if quick:
            args += ["--epochs", "1", "--explain-clouds", "4"]
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "pointlens.cli.main", *args], capture_output=True, text=True)
        demo_s = time.perf_counter() - t0
        if res.returncode != 0:
            raise RuntimeError(res.stderr[-2000:])
        m = json.loads(res.stdout)
    lines = ["## The main job and the test suite (issue 2)", "",
             "| what | wall time | result |", "|---|---|---|",
             f"| `pointlens demo` (train compact PointNet on ShapeParts, explain, drop, localise, report) | "
             f"{demo_s:.0f} s | test accuracy {m['test']['accuracy']:.4f} |"]
    if not quick:
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=ROOT,
                             capture_output=True, text=True)
        suite_s = time.perf_counter() - t0
        summary = [ln for ln in res.stdout.splitlines() if re.search(r"\d+ passed", ln)]
        lines.append(f"| `pytest` (the suite `make test` runs) | {suite_s:.0f} s | "
                     f"{summary[-1].strip('= ') if summary else 'exit ' + str(res.returncode)} |")
    return "\n".join(lines)
