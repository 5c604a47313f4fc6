"""Report sections: one module per artefact kind, registered here, assembled by :mod:`pointlens.report.build`.

A section draws what one kind of run left in its folder (``history.json``, ``scores.npz``, ``curves.json``,
``table.json`` ...) and nothing else. It is put on a page when the run's command is one of its ``commands`` or
one of its ``artefacts`` is present; when a file it needs is missing or corrupt it raises
:class:`pointlens.report.run.ArtefactError` and the page shows, in its place, which file and why.

Adding a section for a new kind of run (e.g. ``pointlens maximize``) is one module and one registration::

    # src/pointlens/report/sections/maximize.py
    from pointlens.report.sections import Section, register_section

    def build(run, page):
        samples = run.npz("samples.npz", required=("points", "labels"))
        page.clouds(samples["points"], {"activation": samples["activation"]}, up="z")

    register_section(Section("maximize", "Activation maximisation", order=25, commands=("maximize",),
                             artefacts=("samples.npz",), build=build))

and its module name added to :data:`BUILTIN`. Sections import only ``errors``, ``utils``, ``stats`` and the
report package (the report layer sits below the studies, see docs/design.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

# Modules that register the built-in sections, imported once by :func:`sections`.
BUILTIN = ["model", "train", "explain", "drop", "benchmark", "recon", "metrics", "explainer", "figures"]


@dataclass(frozen=True)
class Section:
    """One kind of report section.

    Attributes:
        name: registry key.
        title: the heading on the page.
        order: position on the page (lower first).
        commands: commands (``config.json``'s ``command``) whose runs get this section, even when its
            artefacts are missing (then the section says which file is missing).
        artefacts: files whose presence puts the section on the page for any run.
        build: ``build(run: RunView, page: Report)`` draws the section (raising ``ArtefactError`` when a file
            it needs is missing or corrupt).
        heading: whether the page adds ``title`` as a heading before calling ``build``.
    """

    name: str
    title: str
    order: int
    commands: tuple[str, ...]
    artefacts: tuple[str, ...]
    build: Callable
    heading: bool = True

    def applies(self, run) -> bool:
        """True when ``run`` (a :class:`RunView`) should show this section."""
        return run.command in self.commands or any(run.has(a) for a in self.artefacts)


_REGISTRY: dict[str, Section] = {}
_LOADED = False


def register_section(section: Section) -> Section:
    """Add (or replace) a section kind; returns it."""
    _REGISTRY[section.name] = section
    return section


def sections() -> list[Section]:
    """Every registered section, in page order."""
    global _LOADED
    if not _LOADED:
        for name in BUILTIN:
            importlib.import_module(f"pointlens.report.sections.{name}")
        _LOADED = True
    return sorted(_REGISTRY.values(), key=lambda s: (s.order, s.name))


def sections_for(run) -> list[Section]:
    """The sections a run's page shows, in order."""
    return [s for s in sections() if s.applies(run)]
