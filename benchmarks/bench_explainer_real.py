"""Issue 12, line 2: an explainer for learning3d's PointNet on the real ModelNet40 subset, deletion curves.

The explainer (Stalder objective, single-label: cross-entropy against the label, ``pointnet-seg``) is trained
on the subset's 915 train shapes (1,024 points, unit sphere) — the same run as
``pointlens explainer train --classifier ../shared/data/learning3d_pointnet_cls_modelnet40_best_model.t7
--checkpoint-format learning3d --data npz:../shared/data/modelnet40_normal_resampled_subset_2048.npz
--points 1024 --epochs 15 --patience 4 --out runs/real_explainer`` (reused when present). On the 147 test shapes,
the explainer's mask for the true class ranks the points; the deletion curve (``pointlens.metrics``
faithfulness, points really deleted, 10 steps) follows the true class's probability, beside PointShift, IG and
random scores.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POINTLENS_SHARED_DATA", ROOT.parent / "shared" / "data"))
NPZ = SHARED / "modelnet40_normal_resampled_subset_2048.npz"
CKPT = SHARED / "learning3d_pointnet_cls_modelnet40_best_model.t7"
OUT = ROOT / "runs" / "real_explainer"


def run(quick: bool = False) -> str:
    from pointlens.attribution import create_attribution
    from pointlens.data import load_dataset
    from pointlens.explainer import ExplainerConfig, explain_masks, load_explainer, train_explainer
    from pointlens.metrics.faithfulness import deletion_curve
    from pointlens.models import load_checkpoint

    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    model = load_checkpoint(CKPT, format="learning3d").model.eval()
    te = load_dataset(f"npz:{NPZ}", split="test", num_points=1024, limit=8 if quick else None)
    out = OUT.with_name(OUT.name + "_quick") if quick else OUT
    if not (out / "explainer.pt").is_file():
        tr = load_dataset(f"npz:{NPZ}", split="train", num_points=1024, limit=40 if quick else None)
        cfg = ExplainerConfig(epochs=1 if quick else 15, patience=4)
        train_explainer(cfg, model, tr, out_dir=out, resume=(out / "checkpoint.pt").is_file(),
                        meta={"classifier": str(CKPT), "checkpoint_format": "learning3d"})
    ex = load_explainer(out)
    x = torch.from_numpy(te.points)
    y = torch.from_numpy(te.labels.astype(np.int64))
    masks = explain_masks(ex.network, x)
    scores = {"explainer": masks[torch.arange(len(y)), y]}
    for name, opts in (("pointshift", {}), ("ig", {"steps": 8 if quick else 16}), ("random", {"seed": 0})):
        m = create_attribution(name, model, **opts)
        scores[name] = torch.cat([m.attribute(x[s:s + 16], y[s:s + 16]) for s in range(0, len(x), 16)])
    curves = {k: deletion_curve(model, x, v, y, steps=10) for k, v in scores.items()}
    with torch.no_grad():
        acc = float((model(x).argmax(1) == y).float().mean())
    fr = curves["explainer"].fractions.tolist()
    ig_steps = 8 if quick else 16
    lines = ["## Explainer on real data: learning3d PointNet, ModelNet40 subset (issue 12, line 2)", "",
             f"Explainer trained for the learning3d PointNet on the subset's train split (915 shapes, 1,024 points, "
             f"unit sphere; single label, cross-entropy against the label; best epoch {ex.meta.get('best_epoch')}, "
             f"{ex.meta.get('train_seconds', float('nan')) / 60:.1f} min of training steps). Deletion curves on the "
             f"{len(x)} test shapes (classifier accuracy {acc:.3f}): points deleted in decreasing score order, mean "
             "probability of the true class; AUC lower = more faithful. Explainer score of a point = its mask value "
             "for the true class (one forward pass). IG with "
             f"{ig_steps} steps (Gauss-Legendre) from the centre baseline, PointShift alpha 1.", "",
             "| scores | AUC ↓ | " + " | ".join(f"{f:.1f}" for f in fr) + " |",
             "|---|---|" + "---|" * len(fr)]
    for k, c in curves.items():
        lines.append(f"| {k} | {float(c.auc.mean()):.3f} | "
                     + " | ".join(f"{v:.3f}" for v in c.probabilities.mean(0).tolist()) + " |")
    area = float(masks[torch.arange(len(y)), y].mean())
    lines += ["", f"Mean mask value of the true class on the test shapes: {area:.3f}.",
              f"Load average (1 min) at the start: {load:.1f} on 2 cores (shared machine)."]
    return "\n".join(lines)
