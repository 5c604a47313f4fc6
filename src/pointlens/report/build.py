"""``report.html`` of a run folder, assembled from the sections whose artefacts are there.

The page: a header (command, date, versions), the model card, then every registered section that applies to the
run (:mod:`pointlens.report.sections`), then the same for each sub-run (a folder inside with its own
``config.json``: the demo's stages). A section whose file is missing or corrupt is replaced by a note naming the
file; the report is still written. Only ``plotly.min.js`` is copied beside the page; nothing is fetched.
"""

from __future__ import annotations

from pathlib import Path

from pointlens.errors import DataError
from pointlens.report.html import Report
from pointlens.report.run import REPORT, ArtefactError, RunView, is_run_folder
from pointlens.report.sections import sections_for

NOT_A_RUN = ("expected a run folder written by a pointlens command with --out (it holds config.json and "
             "metrics.json)")


def _header(run: RunView, page: Report) -> None:
    cfg = run.config
    env = cfg.get("environment") if isinstance(cfg.get("environment"), dict) else {}
    facts = {"command": f"pointlens {run.command}" if run.command else "unknown (config.json has no command)",
             "folder": str(run.path), "created (UTC)": cfg.get("created_utc", "?"), "seed": cfg.get("seed", "?"),
             "pointlens": env.get("pointlens", "?"), "torch": env.get("torch", "?")}
    page.metrics(facts, caption="run")
    for problem in run.problems:
        page.missing(problem)


def _draw(run: RunView, page: Report, *, skip: tuple[str, ...] = (), level: int = 2) -> int:
    """Draw every applicable section of ``run``; returns how many were drawn (failed ones included)."""
    drawn = 0
    for section in sections_for(run):
        if section.name in skip:
            continue
        mark = page.mark()
        if section.heading:
            page.heading(section.title, level=level)
        try:
            section.build(run, page)
        except ArtefactError as e:
            page.rollback(mark)
            if section.heading:
                page.heading(section.title, level=level)
            page.missing(f"{section.title}: {e}")
        except Exception as e:  # noqa: BLE001 - one broken section must not cost the whole report
            page.rollback(mark)
            if section.heading:
                page.heading(section.title, level=level)
            page.missing(f"{section.title} could not be drawn from {run.path}: {type(e).__name__}: {e}")
        drawn += 1
    return drawn


def build_report(folder, title: str | None = None) -> Path:
    """Build (or rebuild) ``folder/report.html`` from the files of a run folder.

    Args:
        folder: a run folder (``config.json`` / ``metrics.json``; its sub-folders that are runs join the page).
        title: page title (default: ``pointlens <command> — <folder name>``).

    Returns:
        the path of ``report.html``.

    Raises:
        DataError: ``folder`` is not a run folder.
    """
    path = Path(folder)
    if not path.is_dir():
        raise DataError(f"{path}: no such folder; {NOT_A_RUN}")
    if not is_run_folder(path):
        raise DataError(f"{path} is not a pointlens run folder; {NOT_A_RUN}")
    run = RunView(path)
    page = Report(title or str(run.metrics.get("title") or
                               f"pointlens {run.command or 'run'} — {path.resolve().name}"))
    if isinstance(run.metrics.get("summary"), str):
        page.text(run.metrics["summary"])
    _header(run, page)
    drawn = _draw(run, page)
    titles = run.metrics.get("stage_titles") if isinstance(run.metrics.get("stage_titles"), dict) else {}
    for child in run.children():
        page.heading(str(titles.get(child.name) or f"{child.name}: pointlens {child.command}"))
        for problem in child.problems:
            page.missing(problem)
        drawn += _draw(child, page, skip=("model",), level=3)
    pending = run.metrics.get("pending")
    if isinstance(pending, list) and pending:
        page.heading("Coming next")
        for item in pending:
            page.text(str(item), note=True)
    if drawn == 0:
        page.missing(f"nothing in {path} that this report knows how to draw (command "
                     f"{run.command or 'unknown'}); the files are: "
                     f"{', '.join(sorted(p.name for p in path.iterdir())) or 'none'}")
    return page.write(path, REPORT)
