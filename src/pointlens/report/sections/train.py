"""Training runs: loss and accuracy per epoch (``history.json``, or ``metrics.json``'s ``history``)."""

from __future__ import annotations

from pointlens.report.run import ArtefactError, RunView
from pointlens.report.sections import Section, register_section

CURVES_PNG = "training_curves.png"


def history(run: RunView) -> list[dict]:
    """The per-epoch history of a training run (raises ArtefactError when neither file has one)."""
    if run.has("history.json"):
        h = run.json("history.json")
    else:
        h = run.metrics.get("history")
        if h is None:
            raise ArtefactError(f"history.json is missing from {run.path} (and metrics.json has no history)")
    if not isinstance(h, list) or not h or not all(isinstance(e, dict) and "epoch" in e for e in h):
        raise ArtefactError(f"history.json in {run.path} is not a list of per-epoch records with 'epoch'")
    return h


def build(run: RunView, page) -> None:
    h = history(run)
    ep = [e["epoch"] for e in h]
    test = [(e["epoch"], e["test"]["accuracy"]) for e in h if isinstance(e.get("test"), dict)
            and e["test"].get("accuracy") is not None]
    data = [{"type": "scatter", "mode": "lines+markers", "x": ep, "y": [e.get("train_accuracy") for e in h],
             "name": "train accuracy"},
            {"type": "scatter", "mode": "lines+markers", "x": ep, "y": [e.get("loss") for e in h],
             "name": "training loss", "yaxis": "y2", "line": {"dash": "dot"}}]
    if test:
        data.insert(1, {"type": "scatter", "mode": "lines+markers", "x": [t[0] for t in test],
                        "y": [t[1] for t in test], "name": "test accuracy"})
    page.plotly({"data": data, "layout": {
        "hovermode": "x unified", "margin": {"t": 20},
        "xaxis": {"title": {"text": "epoch"}},
        "yaxis": {"title": {"text": "accuracy"}, "range": [0, 1.02]},
        "yaxis2": {"title": {"text": "loss"}, "overlaying": "y", "side": "right"},
        "legend": {"orientation": "h", "y": -0.2}}}, caption="accuracy and loss per epoch (hover for values)",
        height=380)
    src = "history.json" if run.has("history.json") else "metrics.json"
    if not run.fresh(CURVES_PNG, src):
        from pointlens.report.figures import plot_training_curves

        plot_training_curves(h, run.file(CURVES_PNG))
    page.image(run.rel(CURVES_PNG), "training loss and accuracy per epoch (PNG, 200 dpi)")


register_section(Section("train", "Training", order=10, commands=("train",), artefacts=("history.json",),
                         build=build))
