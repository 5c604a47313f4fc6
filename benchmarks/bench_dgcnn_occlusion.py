"""Why exact leave-one-out occlusion does not localise on DGCNN: the same deletions scored four ways.

Issue 5 asks occlusion to localise ShapeParts' discriminative parts better than random scores. On DGCNN exact
leave-one-out (delete one point, ``s_i = f(x) - f(x without i)``) scores near chance. This benchmark checks
that the explained output is not the reason: ONE set of ``N`` deletions per cloud is classified once and
scored with four outputs (the target logit, the log-softmax, the probability and the margin over the best
other class), next to point-shift, integrated gradients, k-NN patch occlusion (16-point patches, every point a
centre) and seeded random scores. It also reports how much one deletion moves the logits, against the
cloud-to-cloud spread. Model: the trained DGCNN of ``bench_train_accuracy`` (``runs/bench_train/dgcnn``), true
class as target, 512-point ShapeParts test clouds.

Usage: ``python benchmarks/run_all.py dgcnn_occlusion [--quick]``.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _deletion_outputs(model, x: torch.Tensor, batch: int = 32) -> torch.Tensor:
    """Logits of every leave-one-out cloud: ``(B, N, 3) -> (B, N, C)``."""
    from pointlens.ops.removal import delete_points

    b, n, _ = x.shape
    out = []
    with torch.no_grad():
        for j in range(b):
            rows = []
            for s in range(0, n, batch):
                idx = torch.arange(s, min(n, s + batch)).unsqueeze(1)
                rows.append(model(delete_points(x[j:j + 1].expand(idx.shape[0], n, 3), idx)))
            out.append(torch.cat(rows))
    return torch.stack(out)


def _outputs(logits: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
    """Explained quantities of ``logits (..., C)`` for targets ``t`` broadcast over the leading dims."""
    idx = t.view(-1, *([1] * (logits.dim() - 2)), 1).expand(*logits.shape[:-1], 1)
    own = logits.gather(-1, idx).squeeze(-1)
    other = logits.scatter(-1, idx, float("-inf")).amax(-1)
    return {"logit": own, "log-softmax": logits.log_softmax(-1).gather(-1, idx).squeeze(-1),
            "probability": logits.softmax(-1).gather(-1, idx).squeeze(-1), "margin": own - other}


def run(quick: bool = False) -> str:
    from pointlens.attribution import create_attribution
    from pointlens.data import load_dataset
    from pointlens.metrics.localisation import auroc, relevance_mass_accuracy
    from pointlens.models.checkpoint import load_checkpoint

    ckpt = ROOT / "runs" / "bench_train" / "dgcnn" / "checkpoint.pt"
    title = "## Exact occlusion on DGCNN: four explained outputs, and the size of one deletion (issue 5)"
    if not ckpt.is_file():
        return f"{title}\n\nmissing {ckpt.relative_to(ROOT)} (run bench_train_accuracy first)"
    model = load_checkpoint(ckpt).model.eval()
    n_clouds, points = (2, 128) if quick else (32, 512)
    data = load_dataset("shapeparts", split="test", num_points=points, limit=n_clouds)
    x = torch.as_tensor(data.points).float()
    t = torch.as_tensor(data.labels).long()
    mask = torch.as_tensor(data.gt_mask).bool()
    rows, took = {}, {}
    t0 = time.perf_counter()
    with torch.no_grad():
        full = model(x)
    dele = _deletion_outputs(model, x)
    took["occlusion"] = time.perf_counter() - t0
    ref, pert = _outputs(full, t), _outputs(dele, t)
    for name in ref:
        rows[f"occlusion, {name}"] = ref[name].unsqueeze(1) - pert[name]
    for name, label, opts in (("pointshift", "pointshift (alpha 6)", {"alpha": 6.0}),
                              ("ig", "ig (16 steps)", {"steps": 16}),
                              ("occlusion-knn", "occlusion-knn (16-point patches)", {"k": 16}),
                              ("random", "random", {})):
        t0 = time.perf_counter()
        rows[label] = create_attribution(name, model, **opts).attribute(x, target=t)
        took[label] = time.perf_counter() - t0
    acc = float((full.argmax(1) == t).float().mean())
    moved = (dele - full.unsqueeze(1)).abs().amax(-1)  # (B, N): largest logit change of one deletion
    spread = full.std(0).mean()
    lines = [title, "",
             f"{n_clouds} ShapeParts test clouds of {points} points, trained DGCNN (`runs/bench_train/dgcnn`, "
             f"accuracy {acc:.3f} on these clouds), true class as target; ground-truth mask covers "
             f"{float(mask.float().mean()):.3f} of the points (chance level of relevance mass). The four "
             "`occlusion` rows score the SAME N deletions per cloud with different explained outputs.", "",
             "| scores | relevance mass ↑ | AUROC ↑ | share of positive scores | seconds |", "|---|---|---|---|---|"]
    for name, s in rows.items():
        rma = torch.nanmean(relevance_mass_accuracy(s, mask)).item()
        au = torch.nanmean(auroc(s, mask)).item()
        sec = took["occlusion"] if name.startswith("occlusion,") else took[name]
        lines.append(f"| {name} | {rma:.3f} | {au:.3f} | {float((s > 0).float().mean()):.2f} | "
                     f"{'' if sec is None else f'{sec:.0f}'} |")
    lines += ["", f"One deletion moves the largest logit by {float(moved.median()):.4f} (median over points; "
              f"95th percentile {float(moved.quantile(0.95)):.4f}); the logits' standard deviation across the "
              f"{n_clouds} clouds is {float(spread):.2f}. (The `occlusion` seconds cover all four rows: one set of "
              "deletions.)"]
    return "\n".join(lines)
