"""Metric runs (``pointlens metrics shape``): F-score per threshold, Chamfer, Hausdorff, voxel IoU."""

from __future__ import annotations

from pointlens.report.run import ArtefactError, RunView
from pointlens.report.sections import Section, register_section


def build(run: RunView, page) -> None:
    m = run.metrics
    if not m:
        raise ArtefactError(f"metrics.json is missing or empty in {run.path}")
    args = run.arguments
    thresholds = sorted({k.split("@", 1)[1] for k in m if k.startswith("fscore@")}, key=float)
    if args:
        page.metrics({"prediction": args.get("pred", "?"), "ground truth": args.get("gt", "?"),
                      "normalisation": m.get("normalize", args.get("normalize")),
                      "points (pred / gt)": f"{m.get('n_pred', '?')} / {m.get('n_gt', '?')}"}, caption="inputs")
    if thresholds:
        page.table([{"threshold d": d, "F-score ↑": m.get(f"fscore@{d}"), "precision ↑": m.get(f"precision@{d}"),
                     "recall ↑": m.get(f"recall@{d}")} for d in thresholds], caption="F-score at distance d")
    rest = {k: v for k, v in m.items() if "@" not in k or k.startswith("iou@")}
    rest = {k: v for k, v in rest.items() if k not in ("n_pred", "n_gt", "normalize")}
    page.metrics(rest, caption="distances (↓) and voxel IoU (↑)")


register_section(Section("metrics", "Shape metrics", order=60, commands=("metrics shape",), artefacts=(),
                         build=build))
