"""The offline HTML report: one self-contained page beside its ``plotly.min.js`` (never a CDN link).

Build it section by section, then :meth:`Report.write` copies ``plotly.min.js`` into the run folder and writes
``report.html`` atomically. Images are referenced by relative path, so the folder can be zipped and opened
anywhere without a network.
"""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import numpy as np

from pointlens.utils.io import save_text, to_json

PLOTLY_JS = "plotly.min.js"

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{border-bottom:2px solid #345;padding-bottom:.2em}h2{margin-top:1.6em;color:#234}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#eef2f6}td:first-child,th:first-child{text-align:left}
figure{margin:1em 0}figcaption{color:#555;font-size:.9em}img{max-width:100%;border:1px solid #ddd}
.plot{width:100%;height:480px}.note{color:#555;font-size:.9em}code{background:#f3f3f3;padding:0 .2em}
"""


def _plotly_js_source() -> Path:
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / PLOTLY_JS
    if not path.is_file():  # pragma: no cover - plotly always ships it
        raise FileNotFoundError(f"plotly's bundled {PLOTLY_JS} not found at {path}")
    return path


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return "nan" if not np.isfinite(v) else f"{float(v):.4g}"
    return html.escape(str(v))


class Report:
    """An HTML report under construction.

    Args:
        title: page title and top heading.
    """

    def __init__(self, title: str):
        self.title = title
        self._parts: list[str] = []
        self._plots = 0

    def heading(self, text: str) -> "Report":
        """Add a section heading."""
        self._parts.append(f"<h2>{html.escape(text)}</h2>")
        return self

    def text(self, text: str, note: bool = False) -> "Report":
        """Add a paragraph of plain text (escaped)."""
        cls = ' class="note"' if note else ""
        self._parts.append(f"<p{cls}>{html.escape(text)}</p>")
        return self

    def table(self, rows: list[dict], columns: list[str] | None = None, caption: str | None = None) -> "Report":
        """Add a table from a list of row dicts (columns default to the first row's keys)."""
        if not rows:
            return self
        columns = columns or list(rows[0].keys())
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c, ''))}</td>" for c in columns) + "</tr>" for r in rows)
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self._parts.append(f"<table>{cap}<tr>{head}</tr>{body}</table>")
        return self

    def metrics(self, values: dict, caption: str | None = None) -> "Report":
        """Add a two-column table of scalar metrics."""
        rows = [{"metric": k, "value": v} for k, v in values.items() if not isinstance(v, (dict, list))]
        return self.table(rows, ["metric", "value"], caption)

    def image(self, relpath: str, caption: str | None = None) -> "Report":
        """Add a PNG referenced by its path relative to the report."""
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._parts.append(f'<figure><img src="{html.escape(relpath)}" alt="{html.escape(caption or relpath)}">'
                           f"{cap}</figure>")
        return self

    def plotly(self, figure, caption: str | None = None) -> "Report":
        """Add an interactive plotly figure (a ``plotly.graph_objects.Figure`` or its dict)."""
        spec = figure.to_plotly_json() if hasattr(figure, "to_plotly_json") else figure
        self._plots += 1
        div = f"plot{self._plots}"
        data = to_json(spec.get("data", []), indent=None)
        layout = to_json(spec.get("layout", {}), indent=None)
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._parts.append(f'<figure><div id="{div}" class="plot"></div>{cap}</figure>'
                           f"<script>Plotly.newPlot('{div}', {data}, {layout}, "
                           "{responsive: true, displaylogo: false});</script>")
        return self

    def cloud(self, points, scores=None, caption: str | None = None, colorscale: str = "Viridis",
              symmetric: bool = False) -> "Report":
        """Add an interactive 3D scatter of one cloud ``(N, 3)`` coloured by ``scores (N,)``.

        ``symmetric`` centres the colour scale on 0 (for signed scores with a diverging colour scale).
        """
        p = np.asarray(points, dtype=np.float32)
        marker = {"size": 2}
        if scores is not None:
            s = np.asarray(scores, dtype=np.float32)
            marker.update(color=s.tolist(), colorscale=colorscale, showscale=True)
            if symmetric:
                m = float(np.abs(s).max()) or 1.0
                marker.update(cmin=-m, cmax=m)
        fig = {"data": [{"type": "scatter3d", "mode": "markers", "x": p[:, 0].tolist(), "y": p[:, 1].tolist(),
                         "z": p[:, 2].tolist(), "marker": marker}],
               "layout": {"margin": {"l": 0, "r": 0, "t": 10, "b": 0},
                          "scene": {"aspectmode": "data"}}}
        return self.plotly(fig, caption)

    def render(self) -> str:
        """The page as HTML text."""
        body = "\n".join(self._parts)
        return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style>"
                f'<script src="{PLOTLY_JS}"></script></head>\n<body><h1>{html.escape(self.title)}</h1>\n'
                f"{body}\n</body></html>\n")

    def write(self, folder, name: str = "report.html") -> Path:
        """Write ``folder/name`` and copy ``plotly.min.js`` beside it; returns the report's path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        js = folder / PLOTLY_JS
        if not js.is_file():
            tmp = folder / f".{PLOTLY_JS}.tmp"
            shutil.copyfile(_plotly_js_source(), tmp)
            tmp.replace(js)
        return save_text(folder / name, self.render())
