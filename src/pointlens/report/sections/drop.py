"""Dropping runs (``pointlens drop``): accuracy while the most / least salient points are deleted."""

from __future__ import annotations

from pointlens.report.run import ArtefactError, RunView
from pointlens.report.sections import Section, register_section

CURVES_PNG = "accuracy_vs_points_dropped.png"
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def curves(run: RunView) -> dict:
    """``{"<method>-<mode>": {budget: accuracy}}`` from ``curves.json`` (or ``metrics.json``'s ``curves``)."""
    c = run.json("curves.json") if run.has("curves.json") else run.metrics.get("curves")
    if c is None:
        raise ArtefactError(f"curves.json is missing from {run.path} (and metrics.json has no curves)")
    ok = isinstance(c, dict) and c and all(isinstance(v, dict) and v for v in c.values())
    try:
        parsed = {str(k): sorted((int(b), float(a)) for b, a in v.items()) for k, v in c.items()} if ok else None
    except (TypeError, ValueError):
        parsed = None
    if not parsed:
        raise ArtefactError(f"curves.json in {run.path} is not {{curve: {{budget: accuracy}}}}")
    return parsed


def build(run: RunView, page) -> None:
    c = curves(run)
    m = run.metrics
    bases = []
    for name in c:
        base = name.rsplit("-", 1)[0] if name.endswith(("-high", "-low")) else name
        if base not in bases:
            bases.append(base)
    data = []
    for name, pts in c.items():
        base = name.rsplit("-", 1)[0] if name.endswith(("-high", "-low")) else name
        data.append({"type": "scatter", "mode": "lines+markers", "name": name, "x": [p[0] for p in pts],
                     "y": [p[1] for p in pts],
                     "line": {"color": PALETTE[bases.index(base) % len(PALETTE)],
                              "dash": "dash" if name.endswith("-low") else "solid"},
                     "hovertemplate": f"{name}<br>%{{x}} points dropped<br>accuracy %{{y:.3f}}<extra></extra>"})
    page.text("Points are deleted step by step, re-scoring the shrinking cloud before each step: 'high' removes "
              "the most important points first (a faithful method makes accuracy fall fast), 'low' the least "
              "important first (accuracy should hold). Solid = high, dashed = low.", note=True)
    page.plotly({"data": data, "layout": {"hovermode": "closest", "margin": {"t": 20},
                                          "xaxis": {"title": {"text": "points dropped"}},
                                          "yaxis": {"title": {"text": "accuracy"}, "range": [0, 1.02]}}},
                caption="accuracy vs. points dropped (hover for values)", height=420)
    info = {k: m[k] for k in ("n", "num_points", "per_step") if k in m}
    if info:
        page.metrics({"clouds": info.get("n"), "points per cloud": info.get("num_points"),
                      "points per step": info.get("per_step")}, caption="setting")
    if run.has("curves.png"):
        page.image(run.rel("curves.png"), "accuracy vs. points dropped (PNG)")
    else:
        src = "curves.json" if run.has("curves.json") else "metrics.json"
        if not run.fresh(CURVES_PNG, src):
            from pointlens.report.figures import plot_curves

            plot_curves({k: dict(v) for k, v in c.items()}, run.file(CURVES_PNG), dpi=200,
                        title="accuracy while dropping points")
        page.image(run.rel(CURVES_PNG), "accuracy vs. points dropped (PNG, 200 dpi)")
    budgets = sorted({b for pts in c.values() for b, _ in pts})
    rows = [{"curve": k, **{str(b): dict(v).get(b, "") for b in budgets}} for k, v in c.items()]
    page.table(rows, caption="accuracy per number of points dropped")


register_section(Section("drop", "Dropping salient points", order=30, commands=("drop",),
                         artefacts=("curves.json",), build=build))
