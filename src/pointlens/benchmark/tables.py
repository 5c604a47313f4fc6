"""The benchmark's table: per-method means, intervals against the random row and sanity intervals, written
as CSV / JSON / Markdown (figures through :mod:`pointlens.report.figures`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pointlens.benchmark.config import CI_BOOT, CI_LEVEL, COMPARED_GROUPS, HIGHER_IS_BETTER
from pointlens.report.figures import plot_heatmap, plot_randomisation_curves
from pointlens.utils.io import save_json

if TYPE_CHECKING:  # the engine imports this module
    from pointlens.benchmark.engine import BenchmarkResult


def nanmean(v: np.ndarray) -> float | None:
    """Mean of the finite values of ``v`` in float64 (None when there is none)."""
    v = np.asarray(v, dtype=np.float64)
    ok = np.isfinite(v)
    if not ok.any():
        return None
    return float(v[ok].sum(dtype=np.float64) / ok.sum())


def build_table(cfg, groups, per_cloud, dataset, eng, notes) -> dict:
    """The table object of a run (rank 0): one row of per-cloud means per method, intervals, notes."""
    columns = [c for g in groups for c in cfg.columns(g)]
    rows = []
    for method in cfg.methods:
        row = {"method": method}
        for g in groups:
            vals = per_cloud[(method, g)]
            for c in cfg.columns(g):
                row[c] = nanmean(vals[c])
        if "sanity" in groups:
            rho = nanmean(per_cloud[(method, "sanity")]["cascading_spearman"])
            row["sanity_pass"] = None if rho is None else bool(rho <= cfg.sanity_threshold)
        rows.append(row)
    gt = dataset.gt_mask
    vs_random, sanity_ci = _uncertainty(cfg, groups, per_cloud)
    return {
        "columns": columns + (["sanity_pass"] if "sanity" in groups else []),
        "rows": rows,
        "directions": {c: "higher" if HIGHER_IS_BETTER[c] else "lower" for c in columns},
        "groups": groups,
        "n_clouds": int(eng.m),
        "n_points": int(eng.n),
        "n_sanity_clouds": int(eng.n_sanity) if "sanity" in groups else 0,
        "sanity_threshold": cfg.sanity_threshold,
        "mask_fraction": None if gt is None else float(np.asarray(gt, dtype=np.float64).mean()),
        "target": cfg.target,
        "method_options": {m: cfg.options_for(m) for m in cfg.methods},
        "notes": notes,
        "vs_random": vs_random,
        "sanity_ci": sanity_ci,
        "ci": {"level": CI_LEVEL, "n_boot": CI_BOOT, "seed": cfg.seed},
    }


def _uncertainty(cfg, groups, per_cloud) -> tuple[dict, dict]:
    """Paired per-cloud differences to ``random`` (localisation and faithfulness columns) and the spread of
    the cascading Spearman, each as a mean with a percentile-bootstrap interval (:func:`bootstrap_mean_ci`)."""
    from pointlens.stats import bootstrap_mean_ci

    def ci(values):
        mean, low, high, n = bootstrap_mean_ci(values, level=CI_LEVEL, n_boot=CI_BOOT, seed=cfg.seed)
        return {"mean": _finite(mean), "low": _finite(low), "high": _finite(high), "n": n}

    vs_random = {}
    for method in cfg.methods:
        if method == "random":
            continue
        cols = {}
        for g in groups:
            if g not in COMPARED_GROUPS:
                continue
            for c in cfg.columns(g):
                d = np.asarray(per_cloud[(method, g)][c], float) - np.asarray(per_cloud[("random", g)][c], float)
                e = ci(d)
                if e["low"] is None:
                    e["better"] = None
                else:
                    e["better"] = bool(e["low"] > 0) if HIGHER_IS_BETTER[c] else bool(e["high"] < 0)
                cols[c] = e
        if cols:
            vs_random[method] = cols
    sanity_ci = {}
    if "sanity" in groups:
        for method in cfg.methods:
            e = ci(per_cloud[(method, "sanity")]["cascading_spearman"])
            if e["low"] is None:
                e["verdict_certain"] = None
            else:
                e["verdict_certain"] = bool(e["low"] > cfg.sanity_threshold or e["high"] <= cfg.sanity_threshold)
            sanity_ci[method] = e
    return vs_random, sanity_ci


def _finite(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "pass" if v else "**FAIL** ✗"
    return f"{v:.3f}"


def table_rows_csv(table: dict) -> str:
    """The table as CSV text (header ``method,<columns>``; floats with full precision, empty = n/a)."""
    cols = ["method"] + list(table["columns"])
    lines = [",".join(cols)]
    for row in table["rows"]:
        cells = []
        for c in cols:
            v = row.get(c)
            cells.append(
                ""
                if v is None
                else (
                    str(v).lower()
                    if isinstance(v, bool)
                    else (repr(float(v)) if isinstance(v, float) else str(v))
                )
            )
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def table_markdown(table: dict) -> str:
    """The table as Markdown: ↑/↓ mark the better direction; a failed sanity check shows ``**FAIL** ✗``."""
    cols = list(table["columns"])
    head = ["method"] + [
        f"{c} {'↑' if table['directions'].get(c) == 'higher' else '↓'}" if c in table["directions"] else c
        for c in cols
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table["rows"]:
        name = row["method"] + (" ✗" if row.get("sanity_pass") is False else "")
        lines.append("| " + " | ".join([name] + [_fmt(row.get(c)) for c in cols]) + " |")
    text = "\n".join(lines) + "\n"
    info = [f"{table['n_clouds']} clouds of {table['n_points']} points; target: {table['target']}."]
    if table.get("mask_fraction") is not None:
        info.append(
            f"Ground-truth mask covers {table['mask_fraction']:.3f} of the points (chance level of "
            "relevance mass / rank accuracy and top-k intersection)."
        )
    if table.get("n_sanity_clouds"):
        info.append(
            f"Sanity metrics on the first {table['n_sanity_clouds']} clouds; ✗ = FAILS the sanity check "
            f"(Spearman after randomising every layer > {table['sanity_threshold']})."
        )
    info += list(table.get("notes", []))
    return text + "\n" + "\n".join(f"- {s}" for s in info) + "\n" + _uncertainty_markdown(table)


def _ci_text(e: dict, signed: bool = True) -> str:
    if e.get("mean") is None:
        return "n/a"
    f = "{:+.3f}" if signed else "{:.3f}"
    if e.get("low") is None:
        return f.format(e["mean"]) + " (1 cloud)"
    return f"{f.format(e['mean'])} [{f.format(e['low'])}, {f.format(e['high'])}]"


def _uncertainty_markdown(table: dict) -> str:
    vs, sanity = table.get("vs_random") or {}, table.get("sanity_ci") or {}
    if not vs and not sanity:
        return ""
    level = round(100 * table.get("ci", {}).get("level", CI_LEVEL))
    cols = [c for c in table["columns"] if any(c in v for v in vs.values())]
    head = ["method"] + [f"{c} − random" for c in cols] + (["cascading_spearman"] if sanity else [])
    lines = ["", f"Against the random row, cloud by cloud: mean difference [{level} % bootstrap interval]; ✓ = the "
             "interval lies on the better side of 0. Cascading Spearman: mean [interval]; ? = the interval "
             "straddles the sanity threshold, so the verdict could change with other clouds.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table["rows"]:
        m = row["method"]
        if m not in vs and m not in sanity:
            continue
        cells = [m]
        for c in cols:
            e = vs.get(m, {}).get(c)
            cells.append("" if e is None else _ci_text(e) + (" ✓" if e.get("better") else ""))
        if sanity:
            e = sanity.get(m)
            cells.append("" if e is None else _ci_text(e, signed=False)
                         + (" ?" if e.get("verdict_certain") is False else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_outputs(result: BenchmarkResult, out_dir) -> list[Path]:
    """Write ``table.csv``, ``table.json``, ``table.md``, ``heatmap.png``, ``randomisation_curves.png`` and
    ``randomisation_curves.json`` (rank 0; atomic writes).

    Args:
        result: a rank-0 :class:`BenchmarkResult`.
        out_dir: the run folder.

    Returns:
        the paths written.
    """
    from pointlens.utils.io import save_text

    out = Path(out_dir)
    t = result.table
    paths = [
        save_text(out / "table.csv", table_rows_csv(t)),
        save_json(out / "table.json", t),
        save_text(out / "table.md", table_markdown(t)),
    ]
    if any(c in t["directions"] for c in t["columns"]):
        paths.append(plot_heatmap(t, out / "heatmap.png"))
    if result.curves:
        paths.append(save_json(out / "randomisation_curves.json", result.curves))
        paths.append(
            plot_randomisation_curves(
                result.curves, out / "randomisation_curves.png", result.config.sanity_threshold
            )
        )
    return paths
