"""Issue 11, line 2: activation maximisation of the imported learning3d PointNet on the real ModelNet40 subset.

Classes airplane and bench; naive AM, generative AM (an autoencoder trained on the subset's train split) and
FlowAM (activation flows from the train split); FID and m-IS on a reference classifier = a pointlens PointNet
trained here on the subset's train split (a different model from the explained one: other weights, trained on 915
shapes instead of full ModelNet40); then the cascading-randomisation sanity curves. Through the real CLI; finished
run folders under runs/bench_maximize are reused. Needs ../shared/data (skipped otherwise).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_maximize_shapeparts import (  # noqa: E402
    OUT,
    SHARED,
    cli,
    ensure_autoencoder,
    load_note,
    load_table,
    ratio_rows,
    sanity_rows,
    shown,
    summary_rows,
)

CKPT = SHARED / "learning3d_pointnet_cls_modelnet40_best_model.t7"
NPZ = SHARED / "modelnet40_normal_resampled_subset_2048.npz"
SAMPLES, STEPS = 4, 200  # 200 = the methods' default step count


def run(quick: bool = False) -> str:
    title = "## Activation maximisation of the learning3d PointNet on real ModelNet40 shapes (issue 11, line 2)"
    if not NPZ.is_file() or not CKPT.is_file():
        return f"{title}\n\nSkipped: ../shared/data is not available."
    samples, steps = (2, 5) if quick else (SAMPLES, STEPS)
    data = f"npz:{NPZ}"
    lines = [title, "", f"Load average when this section was assembled {load_note()} (run folders made earlier are "
             "reused); "
             f"{samples} samples per class, {steps} Adam steps "
             "(lr 0.01), default weights of docs/maximize.md; real instances, activation flows and the autoencoder "
             "from the subset's train split (airplane 626, bench 173 train shapes).", ""]
    ref = OUT / ("quick_ref_real" if quick else "ref_real")
    rargs = ["train", "--model", "pointnet", "--data", data, "--points", "1024", "--epochs", "1" if quick else "4",
             "--out", str(ref), "--quiet", "--json"]
    if quick:
        rargs += ["--limit", "64"]
    cli(rargs, reuse=ref / "metrics.json")
    ae, ae_cmd, ae_secs = ensure_autoencoder(1024, False if not quick else True, data=data, name="ae_real",
                                             epochs=4)
    lines += [f"Reference classifier: `{shown(rargs)}`.", "",
              f"Autoencoder: `{ae_cmd.replace('shapeparts:n=200', data)}` ({ae_secs:.0f} s of training).", ""]
    common = ["--checkpoint", str(CKPT), "--checkpoint-format", "learning3d", "--data", data, "--points", "1024",
              "--method", "naive,flow,generative", "--classes", "airplane,bench", "--samples", str(samples),
              "--steps", str(steps), "--autoencoder", str(ae)]
    folder = OUT / ("quick_am_real" if quick else "am_real")
    args = ["maximize", *common, "--reference", str(ref / "checkpoint.pt"), "--out", str(folder), "--quiet", "--json"]
    _, secs = cli(args, reuse=folder / "metrics.json")
    table = load_table(folder)
    lines += [f"`{shown(args)}` ({secs:.0f} s; 0 = reused run)", "",
              "| method | classes | success mean (min) | Chamfer to 5 nearest real | FID | m-IS | PCAMS | diversity |",
              "|---|---|---|---|---|---|---|---|", *summary_rows(table), "",
              "| method | class | success | Chamfer | FID | m-IS | PCAMS | diversity |",
              "|---|---|---|---|---|---|---|---|"]
    for meth, per in table.items():
        for c, v in per.items():
            lines.append(f"| {meth} | {c} | " + " | ".join(
                "n/a" if v[k] is None else f"{v[k]:.4g}" for k in ("success", "chamfer", "fid", "m_is", "pcams",
                                                                   "diversity")) + " |")
    lines += ["", "Naive over FlowAM (the paper claims >= 2):", "",
              "| class | Chamfer naive | Chamfer flow | ratio | FID naive | FID flow | ratio |",
              "|---|---|---|---|---|---|---|", *ratio_rows(table), ""]
    sfolder = OUT / ("quick_sanity_real" if quick else "sanity_real")
    sargs = ["maximize", *common, "--sanity", "--sanity-steps", "2", "--out", str(sfolder), "--quiet", "--json"]
    _, secs = cli(sargs, reuse=sfolder / "sanity_details.json")
    rows, ratios = sanity_rows(sfolder)
    lines += [f"Sanity check: `{shown(sargs)}` ({secs:.0f} s)", "",
              "| method | success (trained) | moved after the first step | moved at full randomisation [95% CI over "
              "samples] | success (random model) |", "|---|---|---|---|---|", *rows, "",
              "| ratio of moved Chamfer at full randomisation (paired by class and seed) | mean [95% CI] | n |",
              "|---|---|---|", *ratios, ""]
    return "\n".join(lines)
