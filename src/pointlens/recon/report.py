"""Tables and plots of the reconstruction study: ``results.json``, ``results.csv``, ``results.md``, per-class
bar charts and score distributions (PNG), per-shape scores (``scores_<frame>.npz``) and ``metrics.json``."""

from __future__ import annotations

import csv
import io

import numpy as np

from pointlens.recon.study import HIGHER_IS_BETTER, METHODS, METRICS, FrameResult, summarize
from pointlens.utils.io import RunFolder, atomic_open, save_json, save_npz, save_text

CSV_COLUMNS = ["frame", "method", "class", "n_train", "n_test", *METRICS]


def table_rows(summaries: dict) -> list[dict]:
    """Flat rows of the results table: one per (frame, method, class) plus ``class = "all"`` rows.

    Args:
        summaries: ``{frame: summarize(...) dict}``.

    Returns:
        list of dicts with keys :data:`CSV_COLUMNS`.
    """
    rows = []
    for frame, s in summaries.items():
        for meth in METHODS:
            rows.append(
                {
                    "frame": frame,
                    "method": meth,
                    "class": "all",
                    "n_train": s["n_train"],
                    "n_test": s["n_test"],
                    **s["overall"][meth],
                }
            )
            rows[-1].pop("iou_median", None)
            for cname, c in s["per_class"].items():
                rows.append(
                    {
                        "frame": frame,
                        "method": meth,
                        "class": cname,
                        "n_train": c["n_train"],
                        "n_test": c["n_test"],
                        **c[meth],
                    }
                )
    return rows


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1e4 else f"{v:.3g}"
    return str(v)


def markdown(summaries: dict) -> str:
    """The Markdown report: overall table, per-class F@1% and IoU, KS tests, Spearman, finding, per frame."""
    arrows = {m: ("↑" if HIGHER_IS_BETTER[m] else "↓") for m in METRICS}
    out = [
        "# Single-view reconstruction: recognition vs reconstruction",
        "",
        "Tatarchenko et al. (CVPR 2019) on point clouds. Shapes in the unit cube; F-score at 1% / 2% of its "
        "side; Chamfer = plain Euclidean, mean each way, average of both directions; IoU of "
        "voxelised surfaces. ↑ higher is better, ↓ lower is better.",
        "",
    ]
    for frame, s in summaries.items():
        out += [
            f"## {frame}-centred frame ({s['n_train']} training, {s['n_test']} test shapes)",
            "",
            "| method | " + " | ".join(f"{m} {arrows[m]}" for m in METRICS) + " | median IoU ↑ |",
            "|---|" + "---:|" * (len(METRICS) + 1),
        ]
        for meth in METHODS:
            o = s["overall"][meth]
            out.append(
                f"| {meth} | " + " | ".join(_fmt(o[m]) for m in METRICS) + f" | {_fmt(o['iou_median'])} |"
            )
        f = s["finding"]
        out += [
            "",
            "Paper's claims on these numbers: "
            + "; ".join(f"{k.replace('_', ' ')}: {_fmt(v)}" for k, v in f.items()),
            "",
        ]
        for metric in ("fscore@1%", "iou"):
            out += [
                f"### Per class: {metric}",
                "",
                "| class | n_train | n_test | " + " | ".join(METHODS) + " |",
                "|---|---:|---:|" + "---:|" * len(METHODS),
            ]
            for cname, c in s["per_class"].items():
                out.append(
                    f"| {cname} | {c['n_train']} | {c['n_test']} | "
                    + " | ".join(_fmt(c[meth][metric]) for meth in METHODS)
                    + " |"
                )
            out.append("")
        out += [
            "### Kolmogorov–Smirnov tests between per-class mean scores (statistic, p-value)",
            "",
            "| pair | " + " | ".join(METRICS) + " |",
            "|---|" + "---:|" * len(METRICS),
        ]
        pairs = [(p["a"], p["b"]) for p in s["ks_tests"][METRICS[0]]]
        for i, (a, b) in enumerate(pairs):
            cells = [
                f"{_fmt(s['ks_tests'][m][i]['statistic'])}, p={_fmt(s['ks_tests'][m][i]['pvalue'])}"
                for m in METRICS
            ]
            out.append(f"| {a} vs {b} | " + " | ".join(cells) + " |")
        out += [
            "",
            "### Spearman correlation of per-class score with training-set size (rho, p-value)",
            "",
            "| method | " + " | ".join(METRICS) + " |",
            "|---|" + "---:|" * len(METRICS),
        ]
        for meth in METHODS:
            cells = [
                f"{_fmt(s['spearman'][meth][m]['rho'])}, p={_fmt(s['spearman'][meth][m]['pvalue'])}"
                for m in METRICS
            ]
            out.append(f"| {meth} | " + " | ".join(cells) + " |")
        d = s["diagnostics"]
        out += [
            "",
            f"Diagnostics: K-means K={d['kmeans']['k']}, test cluster accuracy "
            f"{_fmt(d['kmeans']['test_cluster_accuracy'])}; MDS dim {d['mds']['dim']} keeps "
            f"{_fmt(d['mds']['explained'])} of the positive eigenvalue mass; share of test shapes whose "
            f"retrieved shape has the right class: clustering {_fmt(d['clustering_same_class'])}, retrieval "
            f"{_fmt(d['retrieval_same_class'])}, oracle {_fmt(d['oracle-nn_same_class'])}.",
            "",
        ]
    return "\n".join(out)


def save_figure(fig, path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    with atomic_open(path, "wb") as f:
        f.write(buf.getvalue())


def plot_per_class(summary: dict, path) -> None:
    """Grouped bars of per-class mean F@1% and IoU per method; written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary["per_class"])
    x = np.arange(len(names))
    width = 0.8 / len(METHODS)
    fig, axes = plt.subplots(2, 1, figsize=(max(6, 0.6 * len(names) + 2), 6), squeeze=False)
    for ax, metric in zip(axes[:, 0], ("fscore@1%", "iou")):
        for i, meth in enumerate(METHODS):
            ax.bar(
                x + (i - (len(METHODS) - 1) / 2) * width,
                [summary["per_class"][n][meth][metric] for n in names],
                width,
                label=meth,
            )
        ax.set_ylabel(metric)
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
    axes[0, 0].legend(fontsize=8, ncol=len(METHODS))
    axes[0, 0].set_title(f"{summary['frame']}-centred: per-class mean scores")
    save_figure(fig, path)
    plt.close(fig)


def plot_distributions(result: FrameResult, path) -> None:
    """Histograms of the per-shape F@1% and IoU of every method; written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    bins = np.linspace(0, 1, 26)
    for ax, metric in zip(axes, ("fscore@1%", "iou")):
        for meth in METHODS:
            ax.hist(result.scores[meth][metric], bins=bins, histtype="step", linewidth=1.5, label=meth)
        ax.set_xlabel(metric)
        ax.set_ylabel("test shapes")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{result.frame}-centred: score distributions")
    save_figure(fig, path)
    plt.close(fig)


def write_study(results: dict, folder: RunFolder, *, plots: bool = True) -> dict:
    """Write every output of the study into a run folder.

    Files: ``results.json`` (the summaries), ``results.csv`` (:func:`table_rows`), ``results.md``
    (:func:`markdown`), ``metrics.json`` (same object as ``results.json``), ``scores_<frame>.npz`` (per-shape
    scores, labels, retrieved indices), ``per_class_<frame>.png`` and ``distributions_<frame>.png``.

    Args:
        results: ``{frame: FrameResult}`` from :func:`pointlens.recon.study.run_study`.
        folder: the :class:`RunFolder` to write into.
        plots: write the PNG figures.

    Returns:
        the metrics object ``{"frames": {frame: summary}}``.
    """
    summaries = {frame: summarize(r) for frame, r in results.items()}
    metrics = {"frames": summaries}
    save_json(folder.file("results.json"), metrics)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in table_rows(summaries):
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    save_text(folder.file("results.csv"), buf.getvalue())
    save_text(folder.file("results.md"), markdown(summaries))
    for frame, r in results.items():
        arrays = {f"{meth}/{metric}": r.scores[meth][metric] for meth in METHODS for metric in METRICS}
        arrays.update({f"choice/{k}": v for k, v in r.choices.items()})
        save_npz(folder.file(f"scores_{frame}.npz"), labels=r.labels, train_counts=r.train_counts, **arrays)
        if plots:
            plot_per_class(summaries[frame], folder.file(f"per_class_{frame}.png"))
            plot_distributions(r, folder.file(f"distributions_{frame}.png"))
    folder.write_metrics(metrics)
    return metrics
