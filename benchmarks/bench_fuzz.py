"""Long fuzz profile (issue 15): >= 1,000 hostile files per reader and per checkpoint kind.

Each kind runs ``tests/fuzz_hostile.py worker KIND COUNT SEED`` in its own fresh process (hypothesis draws the
files: byte mutations of a valid seed and structurally wrong files, see that module). A file passes when reading it
gives a correct dataset/model or exactly one pointlens error line, within 10 s. The peak resident memory of the
worker process (``ru_maxrss``, torch and the readers imported) bounds the peak of every file it read.

Usage: ``python benchmarks/run_all.py fuzz [--quick]`` (quick: 20 files per kind).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COUNT = 1000
KINDS = ("npy", "text", "npz", "h5", "modelnet-txt", "off", "ply", "obj", "ckpt-pointlens", "ckpt-learning3d")
READERS = {"npy": "read_cloud_file (.npy)", "text": "read_cloud_file (.xyz text)", "npz": "read_npz (npz:)",
           "h5": "read_modelnet_h5 (h5 + shape_names.txt)", "modelnet-txt": "read_modelnet_txt (cloud + names)",
           "off": "read_meshes / read_off", "ply": "read_meshes (PLY ascii + binary)", "obj": "read_meshes (OBJ)",
           "ckpt-pointlens": "load_checkpoint (pointlens)", "ckpt-learning3d": "load_checkpoint (learning3d)"}


def run(quick: bool = False) -> str:
    count = 20 if quick else COUNT
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": "1", "POINTLENS_PROGRESS": "0"}
    rows, totals = [], {"files": 0, "ok": 0, "refused": 0, "other": 0, "multi_line": 0, "hangs": 0}
    peak, slowest, examples = 0.0, 0.0, []
    load = os.getloadavg()
    for i, kind in enumerate(KINDS):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(ROOT / "tests" / "fuzz_hostile.py"), "worker", kind, str(count),
                               str(1000 + i)], env=env, capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            rows.append(f"| {kind} | worker failed (exit {proc.returncode}): {proc.stderr.strip()[-200:]!r} |")
            totals["other"] += 1
            continue
        s = json.loads(proc.stdout.strip().splitlines()[-1])
        for k in totals:
            totals[k] += s[k]
        peak, slowest = max(peak, s["peak_rss_mib"]), max(slowest, s["max_seconds"])
        examples += [f"{kind}: {e}" for e in s["examples"]]
        rows.append(f"| {READERS[kind]} | {s['files']} | {s['ok']} | {s['refused']} | {s['other']} | "
                    f"{s['multi_line']} | {s['hangs']} | {s['max_seconds']:.2f} | {s['peak_rss_mib']:.0f} | "
                    f"{time.perf_counter() - t0:.0f} |")
    lines = [
        "## Fuzzing: hostile files for every reader and checkpoint kind (issue 15)",
        "",
        f"{count} hypothesis-drawn hostile files per kind (truncation, bit flips, spliced bytes, huge/negative "
        "numbers over header fields, wrong encodings, NUL bytes, NaN/Inf tokens; arrays of wrong dtype/shape, "
        "NaN labels, out-of-range face indices, configs out of range). *ok* = a correct dataset/model (checked: "
        "finite float32 points, labels in range, finite logits); *refused* = one pointlens error line; *other* = "
        "any other exception (a failure); *hangs* = over 10 s. Peak RSS is the worker process's maximum "
        "(torch, h5py and trimesh imported), an upper bound of every file's peak. "
        f"Load average at start: {load[0]:.1f}.",
        "",
        "| reader | files | ok | refused | other | multi-line | hangs | slowest file (s) | peak RSS (MiB) | wall (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"Total: {totals['files']} files, {totals['ok']} read correctly, {totals['refused']} refused in one line, "
        f"**{totals['other']} other exceptions, {totals['multi_line']} multi-line refusals, {totals['hangs']} hangs**; "
        f"slowest file {slowest:.2f} s; peak memory of any worker {peak:.0f} MiB (bound: 1024 MiB).",
    ]
    if examples:
        lines += ["", "Findings:", *[f"- `{e[:300]}`" for e in examples[:20]]]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
