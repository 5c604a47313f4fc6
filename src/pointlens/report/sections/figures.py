"""Every PNG of a run that no other section showed (so nothing a command drew is left off the page)."""

from __future__ import annotations

from pointlens.report.run import RunView
from pointlens.report.sections import Section, register_section


def _applies_to_any(run: RunView) -> bool:
    return bool(run.pngs())


def build(run: RunView, page) -> None:
    left = [p for p in run.pngs() if run.rel(p) not in page.shown]
    if not left:
        return
    page.heading("Other figures", level=3)
    for p in left:
        page.image(run.rel(p), p)


class _Figures(Section):
    def applies(self, run) -> bool:  # on every run with a PNG; draws only the PNGs not shown yet
        return _applies_to_any(run)


register_section(_Figures("figures", "Other figures", order=1000, commands=(), artefacts=(), build=build,
                          heading=False))
