"""PNG gallery of AM samples: several views of each sample with its nearest real instance beside it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pointlens.errors import bad_argument

__all__ = ["am_gallery"]

VIEWS = ((20.0, -60.0), (20.0, 30.0), (80.0, -90.0))
"""(elevation, azimuth) of the views of each sample: front-left, front-right, top."""


def am_gallery(samples, nearest, path, *, titles: Sequence[str] | None = None, views=VIEWS,
               point_size: float = 2.0, panel_size: float = 2.2, dpi: int = 90) -> Path:
    """Write one row per sample: ``len(views)`` views of the sample, then the nearest real instance (first view).

    Args:
        samples: ``(K, N, 3)`` clouds.
        nearest: ``(K, M, 3)`` the nearest real instance of each sample.
        path: PNG to write (atomically).
        titles: ``K`` row titles (e.g. ``"airplane #0 (p=0.99)"``).
        views: (elevation, azimuth) pairs in degrees.

    Returns:
        the path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from pointlens.report.figures import save_figure

    s = np.asarray(samples.detach().cpu() if hasattr(samples, "detach") else samples, dtype=np.float32)
    r = np.asarray(nearest.detach().cpu() if hasattr(nearest, "detach") else nearest, dtype=np.float32)
    if s.ndim != 3 or r.ndim != 3 or len(s) != len(r) or len(s) == 0:
        raise bad_argument("samples", s.shape, "(K, N, 3) samples with (K, M, 3) nearest real instances")
    cols = len(views) + 1
    fig = Figure(figsize=(cols * panel_size, len(s) * panel_size))
    FigureCanvasAgg(fig)
    for i in range(len(s)):
        panels = [(s[i], e, a, "#1f77b4") for e, a in views] + [(r[i], views[0][0], views[0][1], "#7f7f7f")]
        for j, (pts, elev, azim, colour) in enumerate(panels):
            ax = fig.add_subplot(len(s), cols, i * cols + j + 1, projection="3d")
            # the data's y axis is drawn vertically (ModelNet convention, as pointlens.report.figures)
            ax.scatter(pts[:, 0], pts[:, 2], pts[:, 1], s=point_size, c=colour, depthshade=False, linewidths=0)
            c = (pts.max(0) + pts.min(0)) / 2
            h = float((pts.max(0) - pts.min(0)).max()) / 2 or 1.0
            ax.set_xlim(c[0] - h, c[0] + h)
            ax.set_ylim(c[2] - h, c[2] + h)
            ax.set_zlim(c[1] - h, c[1] + h)
            ax.view_init(elev=elev, azim=azim)
            ax.set_axis_off()
            if j == 0 and titles is not None:
                ax.set_title(str(titles[i]), fontsize=7)
            if j == cols - 1 and i == 0:
                ax.set_title("nearest real", fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path, dpi)
