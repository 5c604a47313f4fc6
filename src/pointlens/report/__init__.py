"""pointlens.report: PNG figures (``figures``), the offline HTML page (``html``), and ``report.html`` of any run
folder built from its files (``build``, one module per artefact kind in ``sections``)."""

from pointlens.report.build import build_report  # noqa: F401
from pointlens.report.figures import plot_curves, render_clouds, score_colors  # noqa: F401
from pointlens.report.html import Report  # noqa: F401
from pointlens.report.run import ArtefactError, RunView, is_run_folder  # noqa: F401
