"""Run the benchmarks (``make bench``) and rebuild BENCHMARKS.md.

Each ``benchmarks/bench_<name>.py`` defines ``run(quick: bool = False) -> str`` returning a Markdown section
(a ``## `` title, what is measured, a table; speed claims as ratios measured side by side in the same run), or
``None`` where it cannot run on this machine (``bench_cuda`` without a GPU): its stored section is then kept.
This script runs the selected benchmarks, stores each section in ``benchmarks/results/<name>.md`` with the
command, machine and date, and concatenates every stored section into ``BENCHMARKS.md``.

Usage: ``python benchmarks/run_all.py [NAME ...] [--quick]`` (default: every benchmark).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"

INTRO = """# Benchmarks

Measured with `make bench` (or `python benchmarks/run_all.py NAME`) unless a section says otherwise. Each section
records the command, the machine and the date it was measured. Speed claims are ratios measured side by side in
the same run on the same machine. The sections of 2026-11-21 were measured two benchmarks at a time on the 2-core
machine (each competing for the cores with another), so their absolute times are upper bounds of an idle machine's;
ratios within a section were measured under the same load.
"""


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def load(name: str):
    path = HERE / f"bench_{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # as an import would: dataclasses and pickling look a module up there
    spec.loader.exec_module(mod)
    return mod


def rebuild() -> None:
    sections = [p.read_text().strip() for p in sorted(RESULTS.glob("*.md"))]
    tmp = ROOT / ".BENCHMARKS.md.tmp"
    tmp.write_text(INTRO + "\n" + "\n\n".join(sections) + "\n")
    os.replace(tmp, ROOT / "BENCHMARKS.md")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="benchmarks to run (default: all bench_*.py)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, to check the scripts run")
    args = ap.parse_args(argv)
    names = args.names or sorted(p.stem[len("bench_"):] for p in HERE.glob("bench_*.py"))
    RESULTS.mkdir(exist_ok=True)
    for name in names:
        t0 = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        section = load(name).run(quick=args.quick)
        if section is None:  # cannot run on this machine (no GPU, no shared data): its stored section stays
            continue
        section = section.strip()
        took = time.perf_counter() - t0
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        cmd = f"python benchmarks/run_all.py {name}" + (" --quick" if args.quick else "")
        section += f"\n\n_Command: `{cmd}` · machine: {machine()} · date: {stamp} · took {took:.0f} s_\n"
        if args.quick:
            print(section)
            continue
        (RESULTS / f"{name}.md").write_text(section)
        print(section)
    if not args.quick:
        rebuild()
    return 0


if __name__ == "__main__":
    sys.exit(main())
