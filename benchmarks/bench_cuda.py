"""The ``--device cuda`` paths, and activation maximisation's batch speed on an accelerator (issue 11, line 4).

Runs only where ``torch.cuda.is_available()`` (elsewhere it returns ``None`` and ``run_all.py`` keeps the stored
section). Three parts:

* every CLI command that takes ``--device`` run with ``--device cuda`` on small data (train: PointNet, DGCNN,
  PointNet++, the image CNN; autoencoder; maximize with the three methods and its sanity check; explain; drop;
  benchmark; explainer train for points and images; recon), each checked for exit status 0 and its result file;
* the same naive AM and FlowAM run on the CPU and on the GPU from the same seed: the clouds must agree up to float
  rounding (the device changes where the work runs, not the result);
* one FlowAM / naive AM sample against a batch of 8 and 32 (1,024 points, the ShapeParts PointNet trained by
  ``bench_maximize_shapeparts``, 200 steps), each timed after a warm-up, best of ``POINTLENS_BENCH_REPS``.

On a GPU machine whose Python has torch but lacks plotly and trimesh (the lent H200 of these sessions): download
their wheels here into a git-excluded ``.whl`` folder (``pip download --no-deps --only-binary=:all:
--python-version 3.12 -d .whl plotly==7.1.0 trimesh==5.2.0``), carry ``.whl`` and
``runs/bench_maximize/pointnet`` (the trained classifier), and run there::

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
    PYTHONPATH=/tmp/site:$PWD/src python3 benchmarks/run_all.py cuda   # then copy benchmarks/results/cuda.md back
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_maximize_shapeparts import ROOT, am_setup, cli_env  # noqa: E402

REPS = int(os.environ.get("POINTLENS_BENCH_REPS", "2"))


def cli_checks(tmp: Path, device: str = "cuda") -> list[tuple[str, int, float, str]]:
    """Run each command with ``--device DEVICE``; return ``(command, exit status, seconds, result or error)``."""
    r = tmp
    sp = "shapeparts:n=200"
    scene = "shapeparts:scene=1,n=200,classes=chair+mug+table"
    cmds = [
        (["train", "--model", "pointnet", "--data", sp, "--points", "512", "--epochs", "1"], "pn", "checkpoint.pt"),
        (["train", "--model", "dgcnn", "--data", sp, "--points", "512", "--epochs", "1"], "dg", "checkpoint.pt"),
        (["train", "--model", "pointnet2", "--data", sp, "--points", "512", "--epochs", "1"], "pn2", "checkpoint.pt"),
        (["train", "--model", "cnn", "--data", "digitscenes:n=200", "--epochs", "1"], "cnn", "checkpoint.pt"),
        (["train", "--model", "pointnet", "--data", scene, "--points", "512", "--epochs", "1"], "scene",
         "checkpoint.pt"),
        (["autoencoder", "train", "--data", sp, "--points", "512", "--epochs", "1"], "ae", "autoencoder.pt"),
        (["maximize", "--checkpoint", f"{r}/pn/checkpoint.pt", "--data", sp, "--points", "512", "--method",
          "naive,flow,generative", "--autoencoder", f"{r}/ae", "--classes", "chair,mug", "--samples", "2", "--steps",
          "20", "--k", "2", "--reference", f"{r}/dg/checkpoint.pt"], "am", "metrics.json"),
        (["maximize", "--checkpoint", f"{r}/pn/checkpoint.pt", "--data", sp, "--points", "512", "--method",
          "naive,flow,generative", "--autoencoder", f"{r}/ae", "--classes", "chair", "--samples", "2", "--steps",
          "10", "--k", "2", "--sanity", "--sanity-steps", "2"], "am_sanity", "sanity_details.json"),
        (["explain", "--method", "pointshift", "--checkpoint", f"{r}/dg/checkpoint.pt", "--data", sp, "--points",
          "512", "--limit", "8"], "explain", "metrics.json"),
        (["drop", "--checkpoint", f"{r}/pn/checkpoint.pt", "--data", sp, "--points", "512", "--methods",
          "pointshift,random,critical", "--limit", "16"], "drop", "metrics.json"),
        (["benchmark", "--checkpoint", f"{r}/pn/checkpoint.pt", "--data", sp, "--points", "512", "--limit", "16"],
         "bench", "metrics.json"),
        (["explainer", "train", "--classifier", f"{r}/scene/checkpoint.pt", "--data", scene, "--points", "512",
          "--epochs", "1"], "expl", "metrics.json"),
        (["explainer", "train", "--classifier", f"{r}/cnn/checkpoint.pt", "--data", "digitscenes:n=200",
          "--epochs", "1"], "expl_img", "metrics.json"),
        (["recon", "run", "--quick"], "recon", "metrics.json"),
    ]
    env = cli_env(threads=None)  # the GPU machine's host cores, as torch sets them
    out = []
    for args, name, result in cmds:
        full = [*args, "--device", device, "--out", str(r / name), "--quiet", "--json"]
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "pointlens.cli.main", *full], capture_output=True, text=True,
                             env=env)
        secs = time.perf_counter() - t0
        if res.returncode == 0 and not (r / name / result).is_file():
            what = f"exit 0 but no {result}"
        elif res.returncode == 0:
            what = f"{result} written"
        else:
            what = (res.stderr.strip().splitlines() or ["(no message)"])[-1][:200]
        out.append(("pointlens " + " ".join(a.replace(str(r) + "/", "") for a in args) + f" --device {device}",
                    res.returncode, secs, what))
        print(f"[{device}] {name}: rc={res.returncode} {secs:.1f}s {what}", file=sys.stderr, flush=True)
    return out


def same_result(model, pts, lab, stats) -> list[tuple]:
    """The same seed on the CPU and the GPU: per method and TF32 setting (cuDNN's default allows TF32 in the
    convolutions), ``(method, tf32, max |logit difference| at step 0, max |cloud difference| after 1 step, after
    50 steps)``. Step 0 measures the arithmetic; 50 steps how far coordinate ascent carries it (max-pooling picks
    one point per channel, so a rounding difference can change which point gets the gradient)."""
    import copy

    import torch

    from pointlens.maximize import maximize

    rows = []
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    for tf32 in (True, False):
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        for method in ("naive", "flow"):
            res = {}
            for dev in ("cpu", "cuda"):
                m = copy.deepcopy(model).to(dev)
                extra = {"flow_stats": stats} if method == "flow" else {}
                res[dev] = {st: maximize(m, 0, method, samples=2, steps=st, seed=0, points=pts.shape[1],
                                         data=pts.to(dev), data_labels=lab, keep="last", **extra) for st in (1, 50)}
            d0 = float((res["cpu"][1].trace["logit"][0] - res["cuda"][1].trace["logit"][0]).abs().max())
            d1, d50 = (float((res["cpu"][st].clouds - res["cuda"][st].clouds).abs().max()) for st in (1, 50))
            rows.append((method, "on" if tf32 else "off", d0, d1, d50))
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before
    return rows


def run(quick: bool = False) -> str | None:
    import torch

    if not torch.cuda.is_available():
        print("[bench] cuda: no CUDA device here; the stored section is kept", file=sys.stderr)
        return None
    from pointlens.maximize import maximize

    name = torch.cuda.get_device_name(0)
    lines = ["## The `--device cuda` paths and activation maximisation on a GPU (issue 11, line 4)", "",
             f"{name}, torch {torch.__version__}, CUDA {torch.version.cuda}; host {os.cpu_count()} cores.", ""]
    with tempfile.TemporaryDirectory() as d:
        checks = cli_checks(Path(d))
    ok = sum(rc == 0 for _, rc, _, _ in checks)
    lines += [f"Every command with `--device cuda` on small data: **{ok} of {len(checks)} exit 0 with their result "
              "file**.", "", "| command | exit | seconds | result |", "|---|---|---|---|"]
    lines += [f"| `{c}` | {rc} | {s:.1f} | {w} |" for c, rc, s, w in checks]

    am = am_setup(quick)
    ck, model, n, pts, lab, stats = am.checkpoint, am.model, am.points, am.pts, am.lab, am.stats
    lines += ["", "Same seed on the CPU and on the GPU (ShapeParts PointNet, 2 samples, `keep=last`, coordinates in "
              "the unit sphere): largest differences.", "",
              "| method | TF32 | target logit at step 0 | coordinates after 1 step | after 50 steps |",
              "|---|---|---|---|---|"]
    lines += [f"| {m} | {t} | {a:.2e} | {b:.2e} | {c:.2e} |" for m, t, a, b, c in same_result(model, pts, lab, stats)]

    gpu = model.to("cuda")
    gpts = pts.to("cuda")
    steps = 5 if quick else 200
    sizes = (1, 8, 32)
    times = {}
    for method in ("flow", "naive"):
        extra = {"flow_stats": stats} if method == "flow" else {}
        maximize(gpu, 0, method, samples=1, steps=5, seed=0, points=n, data=gpts, data_labels=lab, **extra)  # warm-up
        for rep in range(1 if quick else REPS):
            for s in sizes:
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                maximize(gpu, 0, method, samples=s, steps=steps, seed=rep, points=n, data=gpts, data_labels=lab,
                         **extra)
                torch.cuda.synchronize()
                times[(method, s)] = min(times.get((method, s), float("inf")), time.perf_counter() - t0)
    lines += ["", f"Activation maximisation on the GPU: ShapeParts PointNet (`{ck.relative_to(ROOT)}`), {n} points, "
              f"{steps} Adam steps, best of {REPS} after a warm-up.", "",
              "| method | 1 sample (s) | batch of 8 (s) | 8 / 1 | batch of 32 (s) | 32 / 1 |",
              "|---|---|---|---|---|---|"]
    for method in ("flow", "naive"):
        a, b, c = (times[(method, s)] for s in sizes)
        lines.append(f"| {method} | {a:.2f} | {b:.2f} | {b / a:.2f} | {c:.2f} | {c / a:.2f} |")
    return "\n".join(lines) + "\n"
