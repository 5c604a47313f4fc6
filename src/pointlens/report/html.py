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
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1240px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{border-bottom:2px solid #345;padding-bottom:.2em}h2{margin-top:1.6em;color:#234;border-bottom:1px solid #ccd}
h3{color:#345}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#eef2f6}td:first-child,th:first-child{text-align:left}caption{text-align:left;color:#555}
figure{margin:1em 0}figcaption{color:#555;font-size:.9em}img{max-width:100%;border:1px solid #ddd}
.plot{width:100%;height:480px}.note{color:#555;font-size:.9em}code{background:#f3f3f3;padding:0 .2em}
.missing{border-left:4px solid #d9822b;background:#fff6ec;padding:.4em .8em;margin:.6em 0}
.card{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}.card>div{flex:1 1 420px}
.toc{font-size:.92em;columns:2}.toc a{color:#235}
.pl-grid{margin:1em 0}.pl-controls{margin:.4em 0;display:flex;gap:1.5em;align-items:center}
.pl-views{display:grid;gap:6px}.pl-cell{border:1px solid #ddd;border-radius:3px}
.pl-cell h4{margin:.2em .5em;font-size:.95em;font-weight:600}.pl-view{width:100%;height:360px}
.tablewrap{overflow-x:auto;max-width:100%}details{margin:.6em 0}summary{cursor:pointer;color:#345}
td.good{background:#e5f5e0}td.bad{background:#fde0dd}.ci{color:#666;font-size:.85em}
"""

_ASSETS = Path(__file__).parent / "assets"


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


def _json_for_script(obj) -> str:
    """JSON safe inside a ``<script>`` element (no ``</`` sequence can close it early)."""
    return to_json(obj, indent=None).replace("</", "<\\/")


class Report:
    """An HTML report under construction.

    Args:
        title: page title and top heading.
    """

    def __init__(self, title: str):
        self.title = title
        self._parts: list[str] = []
        self._plots = 0
        self._toc: list[tuple[str, str]] = []
        self._grids = 0
        self.shown: set[str] = set()  # images already on the page (relative paths)

    def heading(self, text: str, level: int = 2) -> "Report":
        """Add a section heading (level 2 headings are listed in the contents at the top)."""
        if level == 2:
            anchor = f"s{len(self._toc) + 1}"
            self._toc.append((anchor, text))
            self._parts.append(f'<h2 id="{anchor}">{html.escape(text)}</h2>')
        else:
            self._parts.append(f"<h{level}>{html.escape(text)}</h{level}>")
        return self

    def mark(self) -> tuple:
        """A point to :meth:`rollback` to (used to drop a half-drawn section)."""
        return len(self._parts), len(self._toc), set(self.shown)

    def rollback(self, mark: tuple) -> "Report":
        """Remove everything added since :meth:`mark` returned ``mark``."""
        n_parts, n_toc, shown = mark
        del self._parts[n_parts:]
        del self._toc[n_toc:]
        self.shown = shown
        return self

    def text(self, text: str, note: bool = False) -> "Report":
        """Add a paragraph of plain text (escaped)."""
        cls = ' class="note"' if note else ""
        self._parts.append(f"<p{cls}>{html.escape(text)}</p>")
        return self

    def missing(self, text: str) -> "Report":
        """Add a highlighted note saying what could not be shown and why."""
        self._parts.append(f'<div class="missing">{html.escape(text)}</div>')
        return self

    def raw(self, markup: str) -> "Report":
        """Add markup as is (callers escape their own text)."""
        self._parts.append(markup)
        return self

    def table(self, rows: list[dict], columns: list[str] | None = None, caption: str | None = None,
              classes: list[dict] | None = None) -> "Report":
        """Add a table from a list of row dicts (columns default to the first row's keys).

        ``classes``: optional per-row ``{column: css class}`` (``good`` / ``bad`` colour a cell). A cell value
        of the form ``(value, note)`` is shown with the note in small grey text (e.g. an interval).
        """
        if not rows:
            return self
        columns = columns or list(rows[0].keys())
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)

        def cell(r, i, c):
            v = r.get(c, "")
            cls = (classes[i].get(c) if classes and i < len(classes) else None)
            attr = f' class="{cls}"' if cls else ""
            if isinstance(v, tuple) and len(v) == 2:
                return f'<td{attr}>{_fmt(v[0])}<br><span class="ci">{html.escape(str(v[1]))}</span></td>'
            return f"<td{attr}>{_fmt(v)}</td>"

        body = "".join("<tr>" + "".join(cell(r, i, c) for c in columns) + "</tr>" for i, r in enumerate(rows))
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self._parts.append(f'<div class="tablewrap"><table>{cap}<tr>{head}</tr>{body}</table></div>')
        return self

    def metrics(self, values: dict, caption: str | None = None) -> "Report":
        """Add a two-column table of scalar metrics."""
        rows = [{"metric": k, "value": v} for k, v in values.items() if not isinstance(v, (dict, list))]
        return self.table(rows, ["metric", "value"], caption)

    def image(self, relpath: str, caption: str | None = None) -> "Report":
        """Add a PNG referenced by its path relative to the report."""
        self.shown.add(relpath)
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._parts.append(f'<figure><img src="{html.escape(relpath)}" alt="{html.escape(caption or relpath)}">'
                           f"{cap}</figure>")
        return self

    def plotly(self, figure, caption: str | None = None, height: int | None = None) -> "Report":
        """Add an interactive plotly figure (a ``plotly.graph_objects.Figure`` or its dict)."""
        spec = figure.to_plotly_json() if hasattr(figure, "to_plotly_json") else figure
        self._plots += 1
        div = f"plot{self._plots}"
        data = _json_for_script(spec.get("data", []))
        layout = _json_for_script(spec.get("layout", {}))
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        style = f' style="height:{int(height)}px"' if height else ""
        self._parts.append(f'<figure><div id="{div}" class="plot"{style}></div>{cap}</figure>'
                           f"<script>window.pointlensPlots.push(Plotly.newPlot('{div}', {data}, {layout}, "
                           "{responsive: true, displaylogo: false}));</script>")
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

    def clouds(self, points, methods: dict, *, titles: list[str] | None = None, gt=None, signed: dict | None = None,
               up: str = "z", caption: str | None = None, columns: int | None = None,
               gt_label: str = "ground-truth parts") -> "Report":
        """Add linked interactive 3D views: one view per method, side by side, one cloud at a time.

        Every view shows the same cloud coloured by its method's scores, with point size growing with
        ``|score|`` (so sparse maps stay visible); rotating one view rotates them all (linked cameras); a menu
        picks the cloud and a check box switches every view to the ground-truth parts (when ``gt`` is given).

        Args:
            points: ``(K, N, 3)`` clouds.
            methods: ``{name: (K, N) scores}`` (at most 8 methods: browsers cap the WebGL contexts of a page).
            titles: ``K`` labels for the cloud menu.
            gt: ``(K, N)`` 0/1 ground-truth masks, or None.
            signed: ``{name: bool}``: a diverging colour scale centred on 0 (default: when a score is negative).
            up: the data's up axis (``x``, ``y`` or ``z``) for the initial camera.
            caption: text under the views.
            columns: views per row (default ``min(3, methods)``).
            gt_label: label of the check box.
        """
        pts = np.asarray(points, dtype=np.float32)
        if pts.ndim != 3 or pts.shape[-1] != 3 or not methods or len(methods) > 8:
            raise ValueError(f"clouds: points {pts.shape} must be (K, N, 3) and methods 1..8 (got {len(methods)})")
        k = pts.shape[0]
        titles = list(titles) if titles is not None else [f"cloud {i}" for i in range(k)]

        def r(a, digits=4):
            return np.round(np.asarray(a, dtype=np.float64), digits).tolist()

        clouds = []
        for i in range(k):
            c = {"x": r(pts[i, :, 0]), "y": r(pts[i, :, 1]), "z": r(pts[i, :, 2])}
            if gt is not None:
                c["gt"] = np.asarray(gt[i]).astype(np.int8).tolist()
            clouds.append(c)
        meths = []
        for name, sc in methods.items():
            sc = np.asarray(sc, dtype=np.float64)
            if sc.shape != pts.shape[:2]:
                raise ValueError(f"clouds: scores of {name} have shape {sc.shape}, expected {pts.shape[:2]}")
            sg = (signed or {}).get(name, bool((sc < 0).any()))
            meths.append({"name": str(name), "signed": bool(sg),
                          "scores": [[float(f"{v:.4g}") for v in row] for row in sc]})
        eye = {"x": (1.7, 0.3, 0.35), "y": (1.15, 0.6, 1.15), "z": (1.15, 1.15, 0.6)}[up]
        upv = {"x": (1, 0, 0), "y": (0, 1, 0), "z": (0, 0, 1)}[up]
        camera = {"eye": dict(zip("xyz", eye)), "up": dict(zip("xyz", upv))}
        spec = {"clouds": clouds, "methods": meths, "camera": camera,
                "config": {"displaylogo": False, "responsive": True}}
        self._grids += 1
        gid = f"grid{self._grids}"
        ncol = columns or min(3, max(2, len(meths)))
        options = "".join(f'<option value="{i}">{html.escape(t)}</option>' for i, t in enumerate(titles))
        controls = f'<label>cloud <select class="pl-cloud">{options}</select></label>'
        if gt is not None:
            controls += f'<label><input type="checkbox" class="pl-gt"> show {html.escape(gt_label)}</label>'
        controls += '<span class="note">drag to rotate (all views follow), scroll to zoom, hover for values</span>'
        cells = "".join(f'<div class="pl-cell"><h4>{html.escape(m["name"])}</h4><div class="pl-view"></div></div>'
                        for m in meths)
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._parts.append(
            f'<figure class="pl-grid" id="{gid}" data-spec="{gid}-data"><div class="pl-controls">{controls}</div>'
            f'<div class="pl-views" style="grid-template-columns:repeat({ncol},1fr)">{cells}</div>{cap}</figure>'
            f'<script type="application/json" id="{gid}-data">{_json_for_script(spec)}</script>')
        return self

    def render(self) -> str:
        """The page as HTML text."""
        body = "\n".join(self._parts)
        toc = ""
        if len(self._toc) > 2:
            items = "".join(f'<li><a href="#{a}">{html.escape(t)}</a></li>' for a, t in self._toc)
            toc = f'<nav><ol class="toc">{items}</ol></nav>'
        script = (_ASSETS / "report.js").read_text()
        return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style>"
                f'<script src="{PLOTLY_JS}"></script><script>window.pointlensPlots = [];</script></head>\n'
                f"<body><h1>{html.escape(self.title)}</h1>\n{toc}\n{body}\n"
                f"<script>{script}\nPromise.all(window.pointlensPlots).then(function () "
                "{ window.pointlensReady = true; });</script>\n</body></html>\n")

    def write(self, folder, name: str = "report.html") -> Path:
        """Write ``folder/name`` and copy ``plotly.min.js`` beside it; returns the report's path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        js = folder / PLOTLY_JS
        src = _plotly_js_source()
        if not js.is_file() or js.stat().st_size != src.stat().st_size:
            tmp = folder / f".{PLOTLY_JS}.tmp"
            shutil.copyfile(src, tmp)
            tmp.replace(js)
        return save_text(folder / name, self.render())
