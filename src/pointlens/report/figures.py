"""PNG figures: point clouds coloured by per-point scores, image masks as overlays, and accuracy-vs-points-dropped
curves.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot, no global state, no display) and
written atomically through :func:`pointlens.utils.io.atomic_open`.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pointlens.errors import bad_argument
from pointlens.utils.io import atomic_open
from pointlens.utils.validate import check_choice, check_float, check_int

SCALES = ("minmax", "robust", "signed", "rank", "shared")

__all__ = ["SCALES", "plot_confusion", "plot_curves", "plot_heatmap", "plot_randomisation_curves",
           "plot_training_curves", "render_clouds", "render_image_overlays", "score_colors"]


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _as_cloud_list(points) -> list[np.ndarray]:
    if isinstance(points, (list, tuple)):
        clouds = [_to_numpy(p).astype(np.float32) for p in points]
    else:
        arr = _to_numpy(points).astype(np.float32)
        if arr.ndim == 2:
            arr = arr[None]
        clouds = list(arr) if arr.ndim == 3 else [arr]
    if not clouds:
        raise bad_argument("points", "no clouds", "(K, N, 3) clouds or a list of (N_i, 3) clouds, K >= 1")
    for i, c in enumerate(clouds):
        if c.ndim != 2 or c.shape[1] != 3 or c.shape[0] == 0:
            raise bad_argument("points", f"cloud {i} of shape {c.shape}", "clouds of shape (N, 3), N >= 1")
        if not np.isfinite(c).all():
            raise bad_argument("points", f"cloud {i} with NaN or infinite coordinates", "finite coordinates")
    return clouds


def score_colors(scores, scale: str = "minmax", cmap: str = "viridis", vmin: float | None = None,
                 vmax: float | None = None) -> np.ndarray:
    """Map one cloud's scores to RGBA colours.

    Args:
        scores: ``(N,)`` scores (higher = more important).
        scale: ``"minmax"`` (linear from the cloud's minimum to its maximum), ``"robust"`` (linear from its
            1st to its 99th percentile, clipped), ``"signed"`` (0 -> the middle colour, +-the 99th percentile
            of ``|score|`` -> the ends, clipped; for signed saliency with a diverging map such as coolwarm),
            ``"rank"`` (by rank, ties share their average rank) or ``"shared"`` (linear between ``vmin``
            and ``vmax``).
        cmap: matplotlib colour-map name.
        vmin, vmax: range for ``"shared"``.

    Returns:
        ``(N, 4)`` float RGBA in ``[0, 1]``; with ``minmax`` the highest score gets ``cmap(1.0)``, the lowest
        ``cmap(0.0)`` (constant scores get ``cmap(0.5)`` in every scale).
    """
    import matplotlib

    s = _to_numpy(scores).astype(np.float64).reshape(-1)
    check_choice("scale", scale, SCALES)
    if scale == "rank":
        _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
        first = np.cumsum(counts) - counts  # 0-based rank of each distinct value's first copy
        t = (first + (counts - 1) / 2.0)[inverse] / max(1, len(s) - 1)  # ties share their average rank
        if s.max() <= s.min():
            t = np.full_like(s, 0.5)
    elif scale == "signed":
        q = float(np.percentile(np.abs(s), 99))
        q = q if q > 0 else float(np.abs(s).max())
        t = np.full_like(s, 0.5) if q == 0 else 0.5 + 0.5 * np.clip(s / q, -1.0, 1.0)
    elif scale == "robust":
        lo, hi = np.percentile(s, [1, 99])
        if hi <= lo:
            lo, hi = s.min(), s.max()
        t = np.full_like(s, 0.5) if hi <= lo else np.clip((s - lo) / (hi - lo), 0.0, 1.0)
    else:
        lo = s.min() if scale == "minmax" or vmin is None else vmin
        hi = s.max() if scale == "minmax" or vmax is None else vmax
        t = np.full_like(s, 0.5) if hi <= lo else np.clip((s - lo) / (hi - lo), 0.0, 1.0)
    return matplotlib.colormaps[cmap](t)


def save_figure(fig: Figure, path, dpi: int) -> Path:
    """Write a matplotlib ``Figure`` as PNG to ``path`` atomically (the one PNG writer of pointlens)."""
    buf = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buf, format="png", dpi=dpi)
    path = Path(path)
    with atomic_open(path, "wb") as f:
        f.write(buf.getvalue())
    return path


def render_clouds(points, scores=None, path="clouds.png", titles: Sequence[str] | None = None, *,
                  cmap: str = "viridis", scale: str = "minmax", ncols: int = 4, point_size: float = 4.0,
                  elev: float = 20.0, azim: float = -60.0, panel_size: float = 3.0, dpi: int = 100,
                  colorbar: bool = True) -> Path:
    """Write a PNG grid of 3D scatter plots, one panel per cloud, coloured by per-point score.

    Every panel uses the same fixed camera (``elev``, ``azim``) and an equal-aspect cube around its cloud, so
    shapes are not stretched. Up-axis: y of the data is drawn vertically (ModelNet convention).

    Args:
        points: ``(K, N, 3)`` clouds, or a list of ``K`` clouds ``(N_i, 3)`` (e.g. clouds after dropping).
        scores: ``(K, N)`` per-point scores (or a list of ``(N_i,)``), or None for a single colour.
        path: the PNG to write (parent folders are created).
        titles: ``K`` panel titles, or None.
        cmap: matplotlib colour map (low score = ``cmap(0)``, high score = ``cmap(1)``).
        scale: colour scaling (see :func:`score_colors`): per cloud ``"minmax"``, ``"robust"``, ``"signed"``,
            ``"rank"``, or ``"shared"`` (one min-max range for all clouds).
        ncols: panels per row.
        point_size: marker size in points^2.
        elev, azim: camera elevation and azimuth in degrees.
        panel_size: panel edge in inches.
        dpi: resolution; the image is ``min(ncols, K) * panel_size * dpi`` pixels wide.
        colorbar: add a "score" colour bar (only with scores).

    Returns:
        the path written.
    """
    from mpl_toolkits.mplot3d import Axes3D  # noqa: F401  (registers the 3d projection)

    clouds = _as_cloud_list(points)
    k = len(clouds)
    ncols = check_int("ncols", ncols, minimum=1)
    dpi = check_int("dpi", dpi, minimum=10)
    panel_size = check_float("panel_size", panel_size, minimum=0.5)
    point_size = check_float("point_size", point_size, minimum=0.0, strict_min=True)
    check_choice("scale", scale, SCALES)
    import matplotlib

    if cmap not in matplotlib.colormaps:
        raise bad_argument("cmap", cmap, "a matplotlib colour-map name, e.g. viridis, plasma, coolwarm")
    score_list = None
    if scores is not None:
        if isinstance(scores, (list, tuple)):
            score_list = [_to_numpy(s).reshape(-1) for s in scores]
        else:
            arr = _to_numpy(scores)
            arr = arr[None] if arr.ndim == 1 else arr
            score_list = list(arr)
        if len(score_list) != k or any(len(s) != len(c) for s, c in zip(score_list, clouds)):
            raise bad_argument("scores", f"{len(score_list)} score rows of lengths "
                                         f"{[len(s) for s in score_list][:8]}",
                               f"{k} rows matching the clouds' point counts {[len(c) for c in clouds][:8]}")
        if not all(np.isfinite(s).all() for s in score_list):
            raise bad_argument("scores", "NaN or infinite scores", "finite scores")
    if titles is not None:
        titles = [str(t) for t in titles]
        if len(titles) != k:
            raise bad_argument("titles", f"{len(titles)} titles", f"{k} (one per cloud)")
    vmin = vmax = None
    if score_list is not None and scale == "shared":
        vmin = float(min(s.min() for s in score_list))
        vmax = float(max(s.max() for s in score_list))

    ncols = min(ncols, k)
    nrows = (k + ncols - 1) // ncols
    fig = Figure(figsize=(ncols * panel_size, nrows * panel_size))
    for i, cloud in enumerate(clouds):
        ax = fig.add_subplot(nrows, ncols, i + 1, projection="3d")
        if score_list is None:
            colors = matplotlib.colormaps[cmap](0.6)
        else:
            colors = score_colors(score_list[i], scale=scale, cmap=cmap, vmin=vmin, vmax=vmax)
        # Draw data (x, y, z) as (x, z, y) so the data's y axis points up.
        x, y, z = cloud[:, 0], cloud[:, 2], cloud[:, 1]
        if score_list is None:
            ax.scatter(x, y, z, color=colors, s=point_size, depthshade=False, linewidths=0)
        else:
            ax.scatter(x, y, z, c=colors, s=point_size, depthshade=False, linewidths=0)
        centre = (cloud.max(axis=0) + cloud.min(axis=0)) / 2
        half = float((cloud.max(axis=0) - cloud.min(axis=0)).max()) / 2 or 1.0
        cx, cy, cz = centre[0], centre[2], centre[1]
        ax.set_xlim(cx - half, cx + half)
        ax.set_ylim(cy - half, cy + half)
        ax.set_zlim(cz - half, cz + half)
        ax.set_box_aspect((1, 1, 1), zoom=1.35)
        ax.view_init(elev=elev, azim=azim)
        ax.set_axis_off()
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    fig.subplots_adjust(left=0.0, right=0.92 if (colorbar and score_list is not None) else 1.0, bottom=0.0,
                        top=0.93 if titles is not None else 1.0, wspace=0.0, hspace=0.08)
    if colorbar and score_list is not None:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        cax = fig.add_axes([0.94, 0.15, 0.015, 0.7])
        lo, hi = {"shared": (vmin, vmax), "signed": (-1.0, 1.0)}.get(scale, (0.0, 1.0))
        label = {"shared": "score", "signed": "score / 99th pct of |score| (per cloud)"}.get(
            scale, f"score ({scale} per cloud)")
        cb = fig.colorbar(ScalarMappable(norm=Normalize(lo, hi), cmap=cmap), cax=cax)
        cb.set_label(label, fontsize=8)
        cb.ax.tick_params(labelsize=7)
    return save_figure(fig, path, dpi)


def render_image_overlays(images, masks, path="overlays.png", titles: Sequence[Sequence[str]] | None = None, *,
                          row_titles: Sequence[str] | None = None, cmap: str = "jet", alpha: float = 0.5,
                          panel_size: float = 1.8, dpi: int = 100, colorbar: bool = True) -> Path:
    """Write a PNG grid of images and masks over them: one row per image, the image first, then one panel per mask.

    A mask is drawn with ``cmap`` (fixed range ``[0, 1]``) at opacity ``alpha`` over a grey copy of the image, so
    what the mask covers and what it leaves are both visible. A mask panel that is all NaN is left empty (e.g.
    fewer present classes in that row than columns).

    Args:
        images: ``(K, 3, H, W)`` RGB in ``[0, 1]`` (channel-first, the models' layout).
        masks: ``(K, J, H, W)`` mask values in ``[0, 1]`` (NaN = empty panel).
        path: the PNG to write.
        titles: ``K`` lists of ``J`` panel titles, or None.
        row_titles: ``K`` titles of the image panels, or None.
        cmap: matplotlib colour map of the masks.
        alpha: opacity of the masks.
        panel_size: panel edge in inches.
        dpi: resolution.
        colorbar: add a "mask" colour bar.

    Returns:
        the path written.
    """
    import matplotlib

    imgs = _to_numpy(images).astype(np.float32)
    ms = _to_numpy(masks).astype(np.float32)
    if imgs.ndim != 4 or imgs.shape[1] != 3:
        raise bad_argument("images", f"shape {imgs.shape}", "(K, 3, H, W)")
    if ms.ndim != 4 or ms.shape[0] != imgs.shape[0] or ms.shape[2:] != imgs.shape[2:]:
        raise bad_argument("masks", f"shape {ms.shape}", f"({imgs.shape[0]}, J, {imgs.shape[2]}, {imgs.shape[3]})")
    if cmap not in matplotlib.colormaps:
        raise bad_argument("cmap", cmap, "a matplotlib colour-map name, e.g. jet, viridis")
    alpha = check_float("alpha", alpha, minimum=0.0, maximum=1.0)
    dpi = check_int("dpi", dpi, minimum=10)
    k, j = ms.shape[:2]
    if titles is not None and (len(titles) != k or any(len(t) != j for t in titles)):
        raise bad_argument("titles", f"{len(titles)} rows", f"{k} rows of {j} titles")
    if row_titles is not None and len(row_titles) != k:
        raise bad_argument("row_titles", f"{len(row_titles)} titles", f"{k} (one per image)")
    fig = Figure(figsize=((j + 1) * panel_size + (0.5 if colorbar else 0), k * panel_size * 1.12))
    rgb = np.clip(imgs.transpose(0, 2, 3, 1), 0, 1)
    grey = np.repeat(rgb.mean(-1, keepdims=True), 3, -1) * 0.8 + 0.1
    for r in range(k):
        ax = fig.add_subplot(k, j + 1, r * (j + 1) + 1)
        ax.imshow(rgb[r], interpolation="nearest")
        ax.set_axis_off()
        if row_titles is not None:
            ax.set_title(str(row_titles[r]), fontsize=7)
        for c in range(j):
            ax = fig.add_subplot(k, j + 1, r * (j + 1) + c + 2)
            ax.set_axis_off()
            if np.isnan(ms[r, c]).all():
                continue
            ax.imshow(grey[r], interpolation="nearest")
            ax.imshow(np.nan_to_num(ms[r, c]), cmap=cmap, vmin=0.0, vmax=1.0, alpha=alpha, interpolation="nearest")
            if titles is not None:
                ax.set_title(str(titles[r][c]), fontsize=7)
    fig.subplots_adjust(left=0.01, right=0.9 if colorbar else 0.99, bottom=0.01, top=0.95, wspace=0.05,
                        hspace=0.25)
    if colorbar:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        cax = fig.add_axes([0.92, 0.2, 0.015, 0.6])
        cb = fig.colorbar(ScalarMappable(norm=Normalize(0, 1), cmap=cmap), cax=cax)
        cb.set_label("mask", fontsize=8)
        cb.ax.tick_params(labelsize=7)
    return save_figure(fig, path, dpi)


def plot_curves(curves: Mapping[str, Mapping], path, title: str = "Accuracy while dropping points", *,
                xlabel: str = "points dropped", ylabel: str = "accuracy", dpi: int = 100) -> Path:
    """Write a PNG of accuracy-vs-points-dropped curves.

    Curves named ``"<method>-high"`` and ``"<method>-low"`` share a colour (solid = high, dashed = low).

    Args:
        curves: ``{name: {budget: accuracy}}`` (budget keys may be ints or digit strings, as read from JSON).
        path: the PNG to write.
        title: figure title.
        xlabel, ylabel: axis labels.
        dpi: resolution.

    Returns:
        the path written.
    """
    if not isinstance(curves, Mapping) or not curves:
        raise bad_argument("curves", curves, "a non-empty dict {name: {budget: accuracy}}")
    dpi = check_int("dpi", dpi, minimum=10)
    parsed = {}
    for name, curve in curves.items():
        if not isinstance(curve, Mapping) or not curve:
            raise bad_argument(f"curves[{name!r}]", curve, "a non-empty dict {budget: accuracy}")
        try:
            pts = sorted((int(b), float(a)) for b, a in curve.items())
        except (TypeError, ValueError):
            raise bad_argument(f"curves[{name!r}]", dict(curve),
                               "integer budgets and numeric accuracies") from None
        parsed[str(name)] = pts
    fig = Figure(figsize=(6.4, 4.4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    methods = []
    for name in parsed:
        base = name.rsplit("-", 1)[0] if name.endswith(("-high", "-low")) else name
        if base not in methods:
            methods.append(base)
    palette = [f"C{i % 10}" for i in range(len(methods))]
    for name, pts in parsed.items():
        base = name.rsplit("-", 1)[0] if name.endswith(("-high", "-low")) else name
        style = "--" if name.endswith("-low") else "-"
        xs, ys = zip(*pts)
        ax.plot(xs, ys, style, marker="o", markersize=4, color=palette[methods.index(base)], label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return save_figure(fig, path, dpi)


# --------------------------------------------------------------------------------------------- benchmark
def plot_heatmap(table: dict, path) -> Path:
    """PNG heat-map of methods x metric columns; colour = rank-free min-max score per column (1 = best method
    for that column, direction-aware), text = the value.

    Args:
        table: the table object of :class:`pointlens.benchmark.BenchmarkResult` (``columns``, ``rows``,
            ``directions``).
        path: PNG file to write (atomically).

    Returns:
        the path.
    """
    from matplotlib.figure import Figure

    cols = [c for c in table["columns"] if c in table["directions"]]
    methods = [r["method"] for r in table["rows"]]
    vals = np.array(
        [[np.nan if r.get(c) is None else r[c] for c in cols] for r in table["rows"]], dtype=float
    )
    colour = np.full_like(vals, np.nan)
    for j, c in enumerate(cols):
        v = vals[:, j]
        ok = np.isfinite(v)
        if ok.sum() == 0:
            continue
        lo, hi = v[ok].min(), v[ok].max()
        t = np.where(ok, 0.5 if hi <= lo else (v - lo) / max(hi - lo, 1e-300), np.nan)
        colour[:, j] = t if table["directions"][c] == "higher" else 1 - t
    fig = Figure(figsize=(max(6.0, 0.9 * len(cols) + 2), max(3.0, 0.45 * len(methods) + 1.8)))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(np.ma.masked_invalid(colour), cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(cols)), [c.replace("_", "\n") for c in cols], fontsize=7)
    labels = [m + (" ✗" if r.get("sanity_pass") is False else "") for m, r in zip(methods, table["rows"])]
    ax.set_yticks(range(len(methods)), labels, fontsize=8)
    for i in range(len(methods)):
        for j in range(len(cols)):
            ax.text(
                j,
                i,
                "n/a" if not np.isfinite(vals[i, j]) else f"{vals[i, j]:.2f}",
                ha="center",
                va="center",
                fontsize=7,
            )
    ax.set_title("explanation benchmark (green = best in column; ✗ = fails sanity)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, 100)


def plot_randomisation_curves(curves: dict, path, threshold: float = 0.5) -> Path:
    """PNG of the mean Spearman correlation per randomisation step, one line per method (cascading: left,
    independent: right); step 0 = the trained model (ρ = 1).

    Args:
        curves: :attr:`pointlens.benchmark.BenchmarkResult.curves`.
        path: PNG file to write (atomically).
        threshold: the sanity threshold drawn as a dashed line.

    Returns:
        the path.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.4))
    for k, mode in enumerate(("cascading", "independent")):
        ax = fig.add_subplot(1, 2, k + 1)
        layers = []
        for i, (method, c) in enumerate(curves.items()):
            layers = c["layers"]
            ys = [1.0] + [np.nan if v is None else v for v in c[mode]]
            ax.plot(range(len(ys)), ys, marker="o", markersize=3, color=f"C{i % 10}", label=method)
        ax.axhline(threshold, ls="--", color="grey", lw=1)
        ax.set_xticks(range(len(layers) + 1), ["trained"] + list(layers), rotation=60, fontsize=6, ha="right")
        ax.set_ylabel("Spearman ρ with the original explanation")
        ax.set_title(f"{mode} randomisation (top layer first)", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path, 100)


# ------------------------------------------------------------------------------------------ model card
def plot_confusion(confusion, class_names: Sequence[str], path, *, title: str = "confusion matrix (test set)",
                   dpi: int = 200) -> Path:
    """PNG heat-map of a confusion matrix, each row normalised to the share of its true class.

    Args:
        confusion: ``(C, C)`` counts, rows = true class, columns = predicted class.
        class_names: ``C`` names.
        path: the PNG to write (atomically).
        title: figure title.
        dpi: resolution (200: print quality).

    Returns:
        the path written.
    """
    m = np.asarray(confusion, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise bad_argument("confusion", f"array of shape {m.shape}", "a square (C, C) matrix of counts")
    names = [str(n) for n in class_names]
    if len(names) != m.shape[0]:
        raise bad_argument("class_names", f"{len(names)} names", f"{m.shape[0]} (one per row of the matrix)")
    rows = m.sum(1, keepdims=True)
    share = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    c = m.shape[0]
    side = min(12.0, max(4.0, 0.42 * c + 2.0))
    fig = Figure(figsize=(side + 1.0, side))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(c), names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(c), names, fontsize=7)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if c <= 20:
        for i in range(c):
            for j in range(c):
                if m[i, j]:
                    ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", fontsize=6,
                            color="white" if share[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04).set_label("share of the true class", fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, check_int("dpi", dpi, minimum=10))


def plot_training_curves(history: Sequence[Mapping], path, *, dpi: int = 200) -> Path:
    """PNG of the training loss (left) and train / test accuracy per epoch (right).

    Args:
        history: one dict per epoch with ``epoch``, ``loss``, ``train_accuracy`` and optionally
            ``test: {"accuracy": ...}`` (the ``history.json`` of :func:`pointlens.training.train`).
        path: the PNG to write (atomically).
        dpi: resolution.

    Returns:
        the path written.
    """
    if not history or not all(isinstance(h, Mapping) and "epoch" in h for h in history):
        raise bad_argument("history", history if not history else "entries without 'epoch'",
                           "a non-empty list of {epoch, loss, train_accuracy[, test]} dicts")
    ep = [h["epoch"] for h in history]
    fig = Figure(figsize=(9.0, 3.4))
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    ax1.plot(ep, [h.get("loss", np.nan) for h in history], marker="o", markersize=3)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("training loss")
    ax2.plot(ep, [h.get("train_accuracy", np.nan) for h in history], marker="o", markersize=3, label="train")
    test = [(h["epoch"], h["test"]["accuracy"]) for h in history
            if isinstance(h.get("test"), Mapping) and h["test"].get("accuracy") is not None]
    if test:
        ax2.plot(*zip(*test), marker="s", markersize=3, label="test")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy")
    ax2.set_ylim(0, 1.02)
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path, check_int("dpi", dpi, minimum=10))
