"""Explainer runs (``pointlens explainer evaluate`` / ``apply``): the mask-metric table and the mask overlays.

``evaluate`` leaves ``table.json`` (``{method: {"accuracy", "mae", "miou", "saliency", "class_specific",
"seconds", ...}}``) and, for images, ``overlays_<i>.png`` (every method's mask of each present class over the
image); ``apply`` leaves ``masks.npz`` and ``overlays.png`` (images) or ``masks_union.png`` /
``masks_top_class.png`` (clouds).
"""

from __future__ import annotations

import math

from pointlens.report.run import ArtefactError, RunView
from pointlens.report.sections import Section, register_section

COLUMNS = (("accuracy", "accuracy ↑"), ("mae", "MAE ↓"), ("miou", "mean IoU ↑"), ("saliency", "saliency ↓"),
           ("class_specific", "class-specific ↑"), ("seconds", "seconds"))
TRIVIAL = ("all-0", "all-0.5", "all-1", "ground-truth")


def _value(v):
    return None if not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)) else v


def build(run: RunView, page) -> None:
    if run.command == "explainer evaluate" or run.has("table.json"):
        t = run.json("table.json")
        if not isinstance(t, dict) or not all(isinstance(r, dict) for r in t.values()):
            raise ArtefactError(f"table.json in {run.path} is not {{method: {{metric: value}}}}")
        rows = [{"method": f"{m} (trivial)" if m in TRIVIAL else m,
                 **{head: _value(r.get(key)) for key, head in COLUMNS}} for m, r in t.items()]
        n = run.metrics.get("inputs", run.metrics.get("clouds", "?"))
        page.table(rows, ["method", *(h for _, h in COLUMNS)],
                   caption=f"mask metrics on {n} inputs of {run.arguments.get('data', '?')} (the trivial rows "
                           "anchor each column; class-specific 0.5 = the same mask for every class)")
    pngs = [p for p in run.pngs() if p.startswith(("overlays", "masks_"))]
    pngs.sort(key=lambda p: (len(p), p))
    for p in pngs:
        page.image(run.rel(p), "masks over the image, per present class" if p.startswith("overlays")
                   else "explainer masks (PNG)")


register_section(Section("explainer", "Trained explainer masks", order=35,
                         commands=("explainer evaluate", "explainer apply"), artefacts=(), build=build))
