"""Explanation runs (``pointlens explain``, the demo's explain stage): per-point scores on clouds.

Reads ``scores.npz``: ``points (K, N, 3)``, ``labels (K,)``, optional ``predictions``, ``gt_mask (K, N)`` (the
ShapeParts ground-truth parts), ``class_names``, and either ``scores (K, N)`` (one method, named by
``metrics.json``'s ``method``) or ``scores_<method> (K, N)`` for several methods side by side. The localisation
table comes from ``metrics.json``'s ``localisation`` (``{method: {metric: value}}``) when the run computed it.
"""

from __future__ import annotations

import numpy as np

from pointlens.report.run import ArtefactError, RunView
from pointlens.report.sections import Section, register_section

MAX_CLOUDS = 12   # clouds in the 3D menu (every cloud's coordinates are embedded in the page)
MAX_METHODS = 8   # views side by side (each is one WebGL context; browsers cap them per page)
PNG_CLOUDS = 4    # clouds per PNG panel grid


def method_scores(run: RunView, z: dict) -> dict[str, np.ndarray]:
    """``{method: (K, N) scores}`` from the arrays of ``scores.npz``."""
    out = {k[len("scores_"):]: v for k, v in z.items() if k.startswith("scores_")}
    if "scores" in z:
        out = {str(run.metrics.get("method") or run.arguments.get("method") or "scores"): z["scores"], **out}
    if not out:
        raise ArtefactError(f"scores.npz in {run.path} holds no scores (expected 'scores' or 'scores_<method>')")
    return out


def cloud_titles(z: dict, k: int) -> list[str]:
    names = [str(n) for n in z["class_names"]] if "class_names" in z else None

    def name(i):
        return names[i] if names and 0 <= i < len(names) else str(i)

    titles = []
    for i in range(k):
        t = f"{i}"
        if "labels" in z and z["labels"].ndim == 1:
            t += f": true {name(int(z['labels'][i]))}"
        if "predictions" in z:
            t += f" / pred {name(int(z['predictions'][i]))}"
        titles.append(t)
    return titles


def build(run: RunView, page) -> None:
    z = run.npz("scores.npz", required=("points",))
    pts = z["points"]
    methods = method_scores(run, z)
    if pts.ndim != 3 or pts.shape[-1] != 3:
        raise ArtefactError(f"scores.npz in {run.path}: points have shape {pts.shape}, expected (K, N, 3)")
    bad = [m for m, s in methods.items() if s.shape != pts.shape[:2]]
    if bad:
        raise ArtefactError(f"scores.npz in {run.path}: scores of {bad} do not match the points {pts.shape[:2]}")
    gt = z.get("gt_mask")
    if gt is not None and gt.shape != pts.shape[:2]:
        gt = None
    k = min(MAX_CLOUDS, len(pts))
    titles = cloud_titles(z, k)
    shown = dict(list(methods.items())[:MAX_METHODS])
    loc = run.metrics.get("localisation")
    if isinstance(loc, dict) and loc:
        cols = []
        for v in loc.values():
            cols += [c for c in (v if isinstance(v, dict) else {}) if c not in cols]
        page.table([{"method": m, **(v if isinstance(v, dict) else {})} for m, v in loc.items()], ["method", *cols],
                   caption=f"localisation of the ground-truth parts ({len(pts)} clouds; the random row is chance)")
    data = str(run.arguments.get("data") or "")
    page.clouds(pts[:k], {m: s[:k] for m, s in shown.items()}, titles=titles,
                gt=None if gt is None else gt[:k], up="z" if data.startswith("shapeparts") else "y",
                caption="Colour = score (signed scores: red supports the class, blue opposes it); point size grows "
                        "with |score|. " + (f"{len(methods) - len(shown)} more methods are in scores.npz. "
                                            if len(methods) > len(shown) else "")
                        + ("Tick the box to see the ground-truth parts (orange) instead." if gt is not None else ""))
    if len(methods) > len(shown):
        page.missing(f"only the first {MAX_METHODS} of {len(methods)} methods are drawn in 3D")
    if run.has("scores.png"):
        page.image(run.rel("scores.png"), "scores on the first clouds (PNG)")
        return
    from pointlens.report.figures import render_clouds

    n = min(PNG_CLOUDS, len(pts))
    page.raw(f"<details><summary>PNG figures for print ({len(methods) + (gt is not None)} files, 200 dpi)"
             "</summary>")
    for m, s in methods.items():
        png = f"saliency_{m}.png"
        if not run.fresh(png, "scores.npz"):
            signed = bool((s[:n] < 0).any())
            render_clouds(pts[:n], s[:n], run.file(png), titles=titles[:n], dpi=200,
                          scale="signed" if signed else "robust", cmap="coolwarm" if signed else "viridis")
        page.image(run.rel(png), f"{m} scores on the first {n} clouds (PNG, 200 dpi)")
    if gt is not None:
        png = "ground_truth_parts.png"
        if not run.fresh(png, "scores.npz"):
            render_clouds(pts[:n], gt[:n].astype(np.float32), run.file(png), titles=titles[:n], dpi=200,
                          colorbar=False, cmap="viridis")
        page.image(run.rel(png), "ground truth: the discriminative parts (PNG, 200 dpi)")
    page.raw("</details>")


register_section(Section("explain", "Explanations", order=20, commands=("explain",), artefacts=("scores.npz",),
                         build=build))
