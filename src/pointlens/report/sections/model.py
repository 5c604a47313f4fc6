"""The model card at the top of a page: architecture, parameters, data spec, accuracy, confusion heat-map.

Read from the run that trained or evaluated the model: the run itself (``train`` / ``evaluate``: ``metrics.json``
holds ``test`` or the evaluation with ``confusion``), a ``train`` sub-run (the demo), or the training run folder
that holds the run's ``--checkpoint`` (explain, drop, benchmark).
"""

from __future__ import annotations

from pointlens.report.run import ArtefactError, RunView, is_run_folder
from pointlens.report.sections import Section, register_section

CONFUSION_PNG = "confusion_matrix.png"


def _evaluation(run: RunView) -> dict | None:
    """The evaluation dict of a train / evaluate run (accuracy, per-class, confusion), or None."""
    m = run.metrics
    if isinstance(m.get("test"), dict) and "accuracy" in m["test"]:
        return m["test"]
    if "accuracy" in m and "confusion" in m:
        return m
    return None


def model_run(run: RunView) -> RunView | None:
    """The run folder that describes the model used by ``run`` (itself, a train sub-run, or the checkpoint's)."""
    if run.command in ("train", "evaluate"):
        return run
    if run.command == "demo" or not run.command:
        for child in run.children():
            if child.command in ("train", "evaluate"):
                return child
    ckpt = run.arguments.get("checkpoint")
    if ckpt:
        folder = run.resolve(ckpt).parent
        if is_run_folder(folder) and folder.resolve() != run.path.resolve():
            other = RunView(folder)
            if other.command in ("train", "evaluate"):
                return other
    return None


def _architecture(src: RunView) -> str:
    cfg = src.metrics.get("model_config")
    if isinstance(cfg, dict) and cfg.get("name"):
        kwargs = cfg.get("kwargs") or {}
        opts = ", ".join(f"{k}={v}" for k, v in kwargs.items())
        return f"{cfg['name']}({opts})" if opts else str(cfg["name"])
    return str(src.arguments.get("model") or src.metrics.get("model") or "unknown")


def build(run: RunView, page) -> None:
    src = model_run(run)
    ckpt = run.arguments.get("checkpoint")
    if src is None:
        if ckpt:
            page.missing(f"No training or evaluation run found beside the checkpoint {ckpt}: the card shows what "
                         "this run knows. Run `pointlens evaluate --checkpoint ... --out DIR` to get accuracy "
                         "and the confusion matrix.")
            page.metrics({"checkpoint": ckpt, "data": run.arguments.get("data", "?")}, caption="model")
            return
        raise ArtefactError(f"metrics.json in {run.path} has no evaluation (test accuracy and confusion matrix)")
    ev = _evaluation(src)
    card = {"architecture": _architecture(src)}
    if src.metrics.get("parameters") is not None:
        card["parameters"] = f"{int(src.metrics['parameters']):,}"
    if src.command == "train":
        card["training data"] = src.arguments.get("data", "?")
        card["points per cloud"] = src.arguments.get("points", "?")
        card["epochs"] = src.metrics.get("epochs", src.arguments.get("epochs", "?"))
        if src.metrics.get("train_seconds") is not None:
            card["training seconds"] = round(float(src.metrics["train_seconds"]), 1)
    else:
        card["checkpoint"] = src.arguments.get("checkpoint", "?")
        card["evaluated on"] = f"{src.arguments.get('data', '?')} ({src.arguments.get('split', '?')} split)"
    if ckpt and src is not run:
        card["checkpoint used here"] = ckpt
    if ev is not None:
        card["test accuracy"] = ev.get("accuracy")
        card["mean-class accuracy"] = ev.get("mean_class_accuracy")
        card["test clouds"] = ev.get("n")
    if src is not run:
        card["card from"] = str(src.path if not src.prefix else src.prefix.rstrip("/"))
    page.raw('<div class="card"><div>')
    page.metrics(card, caption="model card")
    names = src.metrics.get("class_names") or (list(ev["per_class_accuracy"]) if ev and
                                                isinstance(ev.get("per_class_accuracy"), dict) else None)
    page.raw("</div><div>")
    if ev is None:
        page.missing(f"metrics.json in {src.path} has no evaluation: no accuracy or confusion matrix to show")
    elif not isinstance(ev.get("confusion"), list) or not names or len(names) != len(ev["confusion"]):
        page.missing(f"metrics.json in {src.path} has no confusion matrix with class names (re-run "
                     f"`pointlens {src.command or 'evaluate'}` to write one)")
    else:
        conf = ev["confusion"]
        rows = [sum(r) or 1 for r in conf]
        share = [[round(v / rows[i], 4) for v in r] for i, r in enumerate(conf)]
        page.plotly({"data": [{"type": "heatmap", "z": share, "x": names, "y": names, "customdata": conf,
                               "colorscale": [[0, "#f7fbff"], [0.5, "#6baed6"], [1, "#08306b"]], "zmin": 0, "zmax": 1,
                               "hovertemplate": "true %{y}<br>predicted %{x}<br>%{customdata} clouds "
                                                "(%{z:.1%} of the class)<extra></extra>"}],
                     "layout": {"margin": {"l": 120, "r": 10, "t": 30, "b": 120},
                                "title": {"text": "confusion matrix (rows: true class)", "font": {"size": 13}},
                                "xaxis": {"title": {"text": "predicted"}, "tickangle": -60},
                                "yaxis": {"title": {"text": "true"}, "autorange": "reversed"}}},
                    height=min(720, max(380, 24 * len(names) + 200)))
    page.raw("</div></div>")
    if ev is not None and isinstance(ev.get("confusion"), list) and names and len(names) == len(ev["confusion"]):
        from pointlens.report.figures import plot_confusion

        # the PNG lives beside the evaluation it shows; written only when that folder is the page's or a sub-run
        target = src if (src is run or src.prefix) else None
        if target is not None and not target.fresh(CONFUSION_PNG, "metrics.json"):
            plot_confusion(ev["confusion"], names, target.file(CONFUSION_PNG))
        if target is not None:
            page.shown.add(target.rel(CONFUSION_PNG))
            page.raw(f'<p class="note">Print-quality PNG: <a href="{target.rel(CONFUSION_PNG)}">'
                     f"{CONFUSION_PNG}</a></p>")
    per_class = ev.get("per_class_accuracy") if ev else None
    if isinstance(per_class, dict) and per_class:
        page.raw(f"<details><summary>per-class test accuracy ({len(per_class)} classes)</summary>")
        page.table([{"class": k, "accuracy": v} for k, v in per_class.items()])
        page.raw("</details>")


register_section(Section("model", "Model card", order=0,
                         commands=("train", "evaluate", "explain", "drop", "benchmark", "demo"),
                         artefacts=(), build=build))
