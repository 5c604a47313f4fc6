"""Benchmark runs (``pointlens benchmark``): the method x metric table with intervals against random, the
randomisation (sanity) curves, and the heat-map."""

from __future__ import annotations

from pointlens.report.run import ArtefactError, RunView
from pointlens.report.sections import Section, register_section

ARROW = {"higher": "↑", "lower": "↓"}


def table(run: RunView) -> dict:
    t = run.json("table.json") if run.has("table.json") else run.metrics.get("table")
    if t is None:
        raise ArtefactError(f"table.json is missing from {run.path} (and metrics.json has no table)")
    if not isinstance(t, dict) or not isinstance(t.get("rows"), list) or not isinstance(t.get("columns"), list):
        raise ArtefactError(f"table.json in {run.path} has no 'rows' and 'columns'")
    return t


def _num(v) -> str:
    return "n/a" if v is None else f"{v:+.3g}"


def build(run: RunView, page) -> None:
    t = table(run)
    directions = t.get("directions", {})
    cols = [c for c in t["columns"] if any(r.get(c) is not None for r in t["rows"])]
    vs = t.get("vs_random") or {}
    sanity = t.get("sanity_ci") or {}
    page.text(f"{t.get('n_clouds', '?')} clouds of {t.get('n_points', '?')} points, target = "
              f"{t.get('target', '?')}; sanity metrics on {t.get('n_sanity_clouds', '?')} clouds. Under each "
              "value: the method minus random, cloud by cloud, with its 95% bootstrap interval; green = better "
              "than random (the interval excludes 0 on the good side), red = worse.", note=True)
    rows, classes = [], []
    for r in t["rows"]:
        row, cls = {"method": r.get("method", "?")}, {}
        for c in cols:
            head = f"{c} {ARROW.get(directions.get(c), '')}".strip()
            v = r.get(c)
            d = (vs.get(r.get("method")) or {}).get(c)
            if c in ("cascading_spearman",) and r.get("method") in sanity:
                ci = sanity[r["method"]]
                row[head] = (v, f"[{ci.get('low', 0):.2f}, {ci.get('high', 0):.2f}]")
            elif isinstance(d, dict) and "low" in d:
                row[head] = (v, f"{_num(d.get('mean'))} [{_num(d.get('low'))}, {_num(d.get('high'))}]")
                if d.get("better") is True:
                    cls[head] = "good"
                elif d.get("low") is not None and d.get("high") is not None and directions.get(c) in ARROW:
                    worse = d["high"] < 0 if directions[c] == "higher" else d["low"] > 0
                    cls[head] = "bad" if worse else ""
            else:
                row[head] = "yes" if v is True else "no" if v is False else ("n/a" if v is None else v)
                if c == "sanity_pass":
                    cls[head] = "good" if v is True else "bad" if v is False else ""
        rows.append(row)
        classes.append(cls)
    page.table(rows, caption="explanation benchmark (↑ higher is better, ↓ lower is better)", classes=classes)
    for note in t.get("notes") or []:
        page.text(str(note), note=True)
    # forest plot: each method minus random, with intervals, one metric at a time (a menu picks it)
    metrics = [c for c in cols if any(isinstance((vs.get(m) or {}).get(c), dict) for m in vs)]
    if metrics:
        methods = list(vs)
        traces, buttons = [], []
        for j, c in enumerate(metrics):
            ds = [(vs[m] or {}).get(c) or {} for m in methods]
            mean = [d.get("mean") for d in ds]
            traces.append({"type": "scatter", "mode": "markers", "x": mean, "y": methods, "visible": j == 0,
                           "name": c, "marker": {"size": 9},
                           "error_x": {"type": "data", "symmetric": False,
                                       "array": [None if d.get("high") is None or d.get("mean") is None
                                                 else d["high"] - d["mean"] for d in ds],
                                       "arrayminus": [None if d.get("low") is None or d.get("mean") is None
                                                      else d["mean"] - d["low"] for d in ds]},
                           "customdata": [[d.get("low"), d.get("high"), d.get("n")] for d in ds],
                           "hovertemplate": "%{y}: %{x:+.4f} [%{customdata[0]:+.4f}, %{customdata[1]:+.4f}], "
                                            "n=%{customdata[2]}<extra></extra>"})
            vis = [i == j for i in range(len(metrics))]
            buttons.append({"label": f"{c} {ARROW.get(directions.get(c), '')}", "method": "update",
                            "args": [{"visible": vis}, {"xaxis.title.text": f"{c}: method − random"}]})
        page.plotly({"data": traces, "layout": {
            "margin": {"t": 40, "l": 110}, "showlegend": False,
            "shapes": [{"type": "line", "x0": 0, "x1": 0, "yref": "paper", "y0": 0, "y1": 1,
                        "line": {"dash": "dash", "color": "grey"}}],
            "xaxis": {"title": {"text": f"{metrics[0]}: method − random"}, "zeroline": False},
            "updatemenus": [{"buttons": buttons, "x": 0, "y": 1.15, "xanchor": "left", "yanchor": "top"}]}},
            caption="method − random per metric with 95% bootstrap intervals (pick the metric in the menu; an "
                    "interval that excludes the dashed 0 line separates the method from random)",
            height=max(300, 60 * len(methods) + 140))
    _deletion_insertion(run, page)
    if run.has("randomisation_curves.json"):
        curves = run.json("randomisation_curves.json")
        if not isinstance(curves, dict):
            raise ArtefactError(f"randomisation_curves.json in {run.path} is not {{method: curve}}")
        data = []
        for i, (m, c) in enumerate(curves.items()):
            layers = ["trained"] + list(c.get("layers", []))
            for mode, dash in (("cascading", "solid"), ("independent", "dot")):
                if mode in c:
                    data.append({"type": "scatter", "mode": "lines+markers", "name": f"{m} ({mode})",
                                 "x": layers, "y": [1.0] + list(c[mode]), "legendgroup": m,
                                 "line": {"dash": dash, "color": f"hsl({(i * 67) % 360},65%,45%)"},
                                 "hovertemplate": f"{m}, {mode}<br>%{{x}}: ρ = %{{y:.3f}}<extra></extra>"})
        thr = t.get("sanity_threshold", 0.5)
        page.plotly({"data": data, "layout": {
            "margin": {"t": 20, "b": 110}, "yaxis": {"title": {"text": "Spearman ρ with the original scores"}},
            "xaxis": {"title": {"text": "randomised up to this layer (top layer first)"}, "tickangle": -45},
            "shapes": [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": thr, "y1": thr,
                        "line": {"dash": "dash", "color": "grey"}}]}},
            caption=f"model randomisation sanity check: a method passes when ρ falls below {thr} once every "
                    "layer is randomised (solid = cascading, dotted = one layer at a time)", height=460)
    for png, cap in (("heatmap.png", "benchmark heat-map (green = best method in the column)"),
                     ("randomisation_curves.png", "randomisation curves (PNG)")):
        if run.has(png):
            page.image(run.rel(png), cap)


def _deletion_insertion(run: RunView, page) -> None:
    """Mean deletion / insertion curves per method from the benchmark's cached cells
    (``cells/<method>__faithfulness.npz``: ``fractions``, ``deletion_curve``, ``insertion_curve``, cloud x step)."""
    import numpy as np

    cells = sorted((run.path / "cells").glob("*__faithfulness.npz"))
    if not cells:
        return
    data = []
    for i, path in enumerate(cells):
        method = path.name.split("__", 1)[0]
        z = run.npz(f"cells/{path.name}", required=("fractions", "deletion_curve", "insertion_curve"))
        x = np.nanmean(z["fractions"], 0)
        colour = f"hsl({(i * 67) % 360},65%,45%)"
        for kind, dash in (("deletion", "solid"), ("insertion", "dot")):
            y = np.nanmean(z[f"{kind}_curve"], 0)
            data.append({"type": "scatter", "mode": "lines+markers", "name": f"{method} {kind}",
                         "legendgroup": method, "x": np.round(x, 4).tolist(), "y": np.round(y, 5).tolist(),
                         "line": {"dash": dash, "color": colour},
                         "hovertemplate": f"{method}, {kind}<br>%{{x:.0%}} of the points<br>"
                                          "output %{y:.4f}<extra></extra>"})
    page.plotly({"data": data, "layout": {"margin": {"t": 20},
                                          "xaxis": {"title": {"text": "share of points removed / inserted, "
                                                                      "most important first"}, "tickformat": ".0%"},
                                          "yaxis": {"title": {"text": "explained output (mean over clouds)"}}}},
                caption="deletion (solid: should fall fast) and insertion (dotted: should rise fast) curves; "
                        "their areas are the deletion_auc / insertion_auc columns", height=420)


class _BenchmarkSection(Section):
    def applies(self, run) -> bool:  # an explainer evaluation's table.json is drawn by sections/explainer.py
        return not run.command.startswith("explainer") and super().applies(run)


register_section(_BenchmarkSection("benchmark", "Explanation benchmark", order=40, commands=("benchmark",),
                                   artefacts=("table.json",), build=build))
