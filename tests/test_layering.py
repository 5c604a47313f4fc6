"""The layering of docs/design.md, asserted: a package imports only packages BELOW it (or itself).

Every ``import pointlens.X`` / ``from pointlens.X ... import`` in ``src/pointlens`` is read with ``ast``
(function-level imports included: a lazy import is still a dependency), and each one must point to a package of
a strictly lower layer. Packages of the same layer may not import each other. A new package must be given a
layer here and in docs/design.md.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "pointlens"

# Lowest first. Keep in sync with the table in docs/design.md.
LAYERS: list[set[str]] = [
    {"errors"},
    {"__init__"},                       # pointlens/__init__.py: the version and the error types
    {"utils"},                          # validation, io, progress, seeds
    {"stats"},                          # the shared statistics
    {"ops", "report"},                  # geometry ops (kNN, FPS, removing points); figures/HTML from plain arrays
    {"data"},
    {"models"},
    {"training"},
    {"attribution"},
    {"perturb"},                        # the dropping experiment, the evidence check (uses attributions)
    {"metrics"},
    {"benchmark", "recon", "maximize", "explainer"},
    {"cli"},
]
RANK = {p: i for i, layer in enumerate(LAYERS) for p in layer}


def _package_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "pointlens":  # ``from pointlens import stats`` names a package
                names = [f"pointlens.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "pointlens":
                target = parts[1] if len(parts) > 1 else "__init__"
                if not (SRC / target).is_dir() and not (SRC / f"{target}.py").is_file():
                    target = "__init__"  # a name re-exported by pointlens/__init__.py
                out.append((node.lineno, target))
    return out


def _all_modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_every_package_has_a_layer():
    packages = {_package_of(p) for p in _all_modules()}
    assert packages - set(RANK) == set(), "give the new package a layer in LAYERS and in docs/design.md"


@pytest.mark.parametrize("path", _all_modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path):
    here = _package_of(path)
    upward = [f"line {line}: {here} (layer {RANK[here]}) imports {target} (layer {RANK[target]})"
              for line, target in _imports(path) if target != here and RANK[target] >= RANK[here]]
    assert upward == []


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    # The check must be able to fail: a data module importing pointlens.models is refused.
    fake = tmp_path / "pointlens"
    (fake / "data").mkdir(parents=True)
    (fake / "models").mkdir()
    bad = fake / "data" / "x.py"
    bad.write_text("def f():\n    from pointlens.models.hooks import capture\n")
    monkeypatch.setattr(__import__(__name__), "SRC", fake)
    assert _imports(bad) == [(2, "models")]
    assert RANK["models"] > RANK["data"]
