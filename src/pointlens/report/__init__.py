"""pointlens.report"""

from pointlens.report.figures import plot_curves, render_clouds, score_colors  # noqa: F401
