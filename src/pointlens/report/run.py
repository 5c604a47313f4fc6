"""Reading a run folder back: ``config.json``, ``metrics.json`` and the artefacts a command left there.

A report is built from these files alone (never from the library objects that made them), so ``pointlens report
DIR`` can rebuild it anywhere. Every read raises :class:`ArtefactError` naming the file and what is wrong with
it; the report turns that into a note in the section that needed the file, and carries on.
"""

from __future__ import annotations

import json
import zipfile
from functools import cached_property
from pathlib import Path

import numpy as np

from pointlens.errors import DataError

CONFIG = "config.json"
METRICS = "metrics.json"
REPORT = "report.html"


class ArtefactError(DataError):
    """An artefact of a run folder is missing or cannot be read (the message names the file)."""


def is_run_folder(path) -> bool:
    """True when ``path`` is a folder holding ``config.json`` or ``metrics.json`` (a folder that only CONTAINS runs,
    such as ``runs/``, is not one)."""
    p = Path(path)
    return p.is_dir() and ((p / CONFIG).is_file() or (p / METRICS).is_file())


class RunView:
    """Read-only view of one run folder.

    Attributes:
        path: the folder.
        prefix: the folder's path relative to the page being built (``""`` for the page's own folder), so a
            section links the run's images as ``prefix + name``.
        problems: what could not be read while loading ``config.json`` / ``metrics.json`` (shown on the page).
    """

    def __init__(self, path, prefix: str = ""):
        self.path = Path(path)
        self.prefix = prefix
        self.problems: list[str] = []

    # ------------------------------------------------------------------------------------- the two files
    @cached_property
    def config(self) -> dict:
        """``config.json`` (``{}`` when missing or corrupt; the problem is recorded)."""
        return self._optional_json(CONFIG)

    @cached_property
    def metrics(self) -> dict:
        """``metrics.json`` (``{}`` when missing or corrupt; the problem is recorded)."""
        return self._optional_json(METRICS)

    def _optional_json(self, name: str) -> dict:
        try:
            value = self.json(name)
        except ArtefactError as e:
            self.problems.append(str(e))
            return {}
        if not isinstance(value, dict):
            self.problems.append(f"{name}: holds a {type(value).__name__}, expected a JSON object")
            return {}
        return value

    @property
    def command(self) -> str:
        """The command that made the run (``config.json``'s ``command``; ``""`` when unknown)."""
        return str(self.config.get("command") or "")

    @property
    def arguments(self) -> dict:
        """The command's arguments from ``config.json``."""
        args = self.config.get("arguments")
        return args if isinstance(args, dict) else {}

    @property
    def name(self) -> str:
        return self.path.name

    # --------------------------------------------------------------------------------------- artefacts
    def file(self, name: str) -> Path:
        return self.path / name

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()

    def json(self, name: str):
        """Parse ``name`` (raises :class:`ArtefactError` when missing or not valid JSON)."""
        p = self.path / name
        if not p.is_file():
            raise ArtefactError(f"{name} is missing from {self.path}")
        try:
            return json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ArtefactError(f"{name} in {self.path} is not valid JSON ({e})") from None

    def npz(self, name: str, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
        """Arrays of ``name`` (no pickles); raises :class:`ArtefactError` when missing, corrupt or lacking a key."""
        p = self.path / name
        if not p.is_file():
            raise ArtefactError(f"{name} is missing from {self.path}")
        try:
            with np.load(p, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as e:
            raise ArtefactError(f"{name} in {self.path} cannot be read ({type(e).__name__}: {e})") from None
        absent = [k for k in required if k not in arrays]
        if absent:
            raise ArtefactError(f"{name} in {self.path} lacks the arrays {absent} (has {sorted(arrays)})")
        return arrays

    def rel(self, name: str) -> str:
        """``name`` (a file of this run) relative to the page."""
        return self.prefix + name

    def fresh(self, name: str, *sources: str) -> bool:
        """True when ``name`` exists and is not older than any of the ``sources`` files (derived figures are
        redrawn only when their data changed)."""
        p = self.path / name
        if not p.is_file():
            return False
        t = p.stat().st_mtime
        return all(not (self.path / s).is_file() or (self.path / s).stat().st_mtime <= t for s in sources)

    def pngs(self) -> list[str]:
        """Names of the PNG files in the folder, sorted."""
        return sorted(p.name for p in self.path.glob("*.png"))

    def children(self) -> list["RunView"]:
        """Sub-folders that are runs (hold ``config.json``), in the order their config lists them (``stages``),
        then by name."""
        subs = [RunView(c, f"{self.prefix}{c.name}/") for c in sorted(self.path.iterdir())
                if c.is_dir() and (c / CONFIG).is_file()]
        order = self.metrics.get("stages") if isinstance(self.metrics.get("stages"), list) else []
        rank = {str(n): i for i, n in enumerate(order)}
        return sorted(subs, key=lambda r: (rank.get(r.name, len(rank)), r.name))

    def resolve(self, relpath) -> Path:
        """A path recorded in the run's arguments, resolved like the command saw it (absolute, or relative to
        the working directory, or relative to the run folder's parent)."""
        p = Path(str(relpath))
        if p.is_absolute() or p.exists():
            return p
        beside = self.path.parent / p
        return beside if beside.exists() else p
