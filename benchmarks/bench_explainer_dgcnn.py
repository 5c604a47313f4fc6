"""Issue 12, line 1, the DGCNN row: the trained explainer on ShapeParts scenes for a multi-label DGCNN.

The same data, methods, baselines and table as ``bench_explainer`` (the PointNet row), with a multi-label DGCNN
(``pointlens train --model dgcnn``) as the frozen classifier. DGCNN costs about 4x PointNet per explainer step on
this 2-core machine (the classifier's forward and input-gradient run on every masked cloud), so the budgets are
reduced and said so in the section: the classifier trains 8 epochs, the explainer and RTIS 8 epochs each (early
stopping still active); the area ablation of the PointNet section runs only with POINTLENS_BENCH_ABLATION=1.
Run folders under ``runs/bench_explainer_dgcnn``; each stage is reused when complete and resumed when
interrupted.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_explainer import (  # noqa: E402
    ABLATION_ROW,
    AREA_ABLATION,
    CLASSES,
    METHODS,
    OPTIONS,
    POINTS,
    ROOT,
    _classifier,
    _explainer,
)

RUNS = ROOT / "runs" / "bench_explainer_dgcnn"
CLASSIFIER_EPOCHS = 8
EXPLAINER_EPOCHS = 8
EVAL = 40
ABLATION = os.environ.get("POINTLENS_BENCH_ABLATION", "0") == "1"


def run(quick: bool = False) -> str:
    import time

    from pointlens.explainer import class_truth, evaluate_methods, table_markdown
    from pointlens.metrics.masks import present_mask

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    model, tr, te, ev = _classifier(quick, runs=RUNS, model_name="dgcnn", epochs=CLASSIFIER_EPOCHS)
    t_cls = time.perf_counter() - t0
    kw = {"runs": RUNS, "epochs": EXPLAINER_EPOCHS}
    ex = _explainer("explainer", "stalder", model, tr, quick, **kw)
    rt = _explainer("rtis", "rtis", model, tr, quick, **kw)
    ab = _explainer("explainer_area", "stalder", model, tr, quick, weights=AREA_ABLATION, **kw) if ABLATION else None
    sub = te.subset(slice(0, 6 if quick else EVAL))
    opts = dict(OPTIONS)
    if quick:
        opts.update({"rise": {"n_masks": 16}, "occlusion-knn": {"centres": "fps", "n_centres": 8}})
    nets = {"explainer": ex.network, "rtis": rt.network}
    if ab is not None:
        nets[ABLATION_ROW] = ab.network
    table, masks = evaluate_methods(model, sub, METHODS + list(nets)[2:], networks=nets, method_options=opts)
    present = torch.from_numpy(sub.labels > 0.5)
    cover = float(present_mask(torch.from_numpy(class_truth(sub)).float(), present).mean())
    area = {k: float(present_mask(torch.from_numpy(masks[k]), present).mean())
            for k in nets}
    rows = dict(table)
    methods_only = {k: v for k, v in rows.items()
                    if k not in ("all-0", "all-0.5", "all-1", "ground-truth", ABLATION_ROW)}
    best_iou = max(methods_only, key=lambda k: methods_only[k]["miou"])
    best_sal = min(methods_only, key=lambda k: methods_only[k]["saliency"])
    multi = int(((sub.labels > 0.5).sum(1) >= 2).sum())
    e = methods_only["explainer"]

    def minutes(loaded) -> str:
        took = loaded.meta.get("train_seconds", float("nan")) / 60
        return f"{took:.1f} min (best epoch {loaded.meta.get('best_epoch')})"

    beats = [k for k in ("rtis", "rise", "gradcam") if e["saliency"] < methods_only[k]["saliency"]]
    lines = [
        "## Trained explainer on ShapeParts scenes, DGCNN classifier (issue 12, line 1)", "",
        f"Classifier: multi-label DGCNN (`pointlens train --model dgcnn`, BCE, k = 20) on the same ShapeParts scenes "
        f"as the PointNet section ({CLASSES}), {len(tr)} train / {len(te)} test scenes, {POINTS} points, "
        f"{ev.epochs} epochs; test mAP {ev.map:.3f}, mean F1 {ev.mean_f1:.3f}, exact-match accuracy "
        f"{ev.accuracy:.3f}. Explainer, RTIS and baselines exactly as in the PointNet section, except the budgets: "
        + ("quick sizes" if quick else
           f"{EXPLAINER_EPOCHS} explainer epochs instead of 20 (a DGCNN explainer epoch costs about 2.4 min here "
           "against 0.5 min with PointNet: the frozen DGCNN's forward and input gradient run on every masked "
           "cloud)") +
        f". Table on the first {len(sub)} test scenes ({multi} with two or more classes).", "",
        table_markdown(rows), "",
        f"Best mean IoU among the methods: **{best_iou}** ({methods_only[best_iou]['miou']:.3f}); explainer "
        f"{e['miou']:.3f}. Best saliency metric (lower is better): **{best_sal}** "
        f"({methods_only[best_sal]['saliency']:.3f}); explainer {e['saliency']:.3f} against RTIS "
        f"{methods_only['rtis']['saliency']:.3f}, RISE {methods_only['rise']['saliency']:.3f}, Grad-CAM "
        f"{methods_only['gradcam']['saliency']:.3f} — the explainer beats "
        + (", ".join(beats) if beats else "none of them") + ".", "",
        f"Area: the present objects cover {cover:.3f} of the points; mean target mask {area['explainer']:.3f} "
        f"(explainer), {area['rtis']:.3f} (RTIS)" + (
            f", {area[ABLATION_ROW]:.3f} (area ablation, a_min {AREA_ABLATION['a_min']}, a_max "
            f"{AREA_ABLATION['a_max']}: mean IoU {rows[ABLATION_ROW]['miou']:.3f}, saliency "
            f"{rows[ABLATION_ROW]['saliency']:.3f}, class-specific {rows[ABLATION_ROW]['class_specific']:.3f})."
            if ab is not None else "; the area ablation of the PointNet section was not repeated for the DGCNN."),
        "",
        f"Training times ({torch.get_num_threads()} torch threads): classifier {t_cls / 60:.1f} min in this run "
        "(0 when its checkpoint was reused), explainer " + minutes(ex) + ", RTIS " + minutes(rt)
        + (", area ablation " + minutes(ab) if ab is not None else "") + ".", "",
        f"Load average (1 min) at the start: {load:.1f} on 2 cores.",
    ]
    return "\n".join(lines)
