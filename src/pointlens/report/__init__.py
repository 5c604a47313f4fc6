"""pointlens.report: PNG figures (``figures``) and the offline HTML report (``html``)."""

from pointlens.report.figures import plot_curves, render_clouds, score_colors  # noqa: F401
from pointlens.report.html import Report  # noqa: F401
