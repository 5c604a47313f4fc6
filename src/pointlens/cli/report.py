"""``pointlens report``: build or refresh ``report.html`` of a run folder from the files it holds."""

from __future__ import annotations

import sys

from pointlens.cli.common import add_parser


def register(sub) -> None:
    p = add_parser(sub, "report", "build or refresh report.html of a run folder (any command's --out)",
                   "pointlens report runs/explain",
                   description="Build RUN_DIR/report.html from the files of a run folder (config.json, "
                               "metrics.json, scores.npz, curves.json, table.json, history.json, ...): a model "
                               "card, interactive 3D views, curves and tables, and the PNG figures. Opens "
                               "offline: plotly.min.js is copied beside it. Every command writes its report at "
                               "the end unless --no-report; this command rebuilds it, e.g. after copying a run.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by a pointlens command with --out")
    p.add_argument("--title", default=None, help="page title (default: pointlens <command> — <folder name>)")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=run)


def run(args) -> int:
    from pointlens.report import build_report

    path = build_report(args.run_dir, title=args.title)
    if not args.quiet:
        sys.stdout.write(f"{path}\n")
    return 0
