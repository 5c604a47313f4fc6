"""Options shared by subcommands, so every command spells them the same way."""

from __future__ import annotations

import argparse
import sys

from pointlens.utils.io import to_json


def add_parser(sub, name: str, help: str, example: str, description: str | None = None) -> argparse.ArgumentParser:
    """Add a subcommand parser whose ``--help`` ends with a runnable example."""
    return sub.add_parser(name, help=help, description=description or help,
                          epilog=f"example:\n  {example}",
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def add_output_options(p: argparse.ArgumentParser, out_required: bool = True) -> None:
    """``--out DIR``, ``--json``, ``--quiet``."""
    p.add_argument("--out", required=out_required, metavar="DIR", help="run folder to write (created if needed)")
    p.add_argument("--json", action="store_true", help="print the metrics object as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_seed_device(p: argparse.ArgumentParser) -> None:
    """``--seed S`` and ``--device cpu|cuda``."""
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same numbers (default 0)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")


def add_data_options(p: argparse.ArgumentParser, split_default: str | None = "test") -> None:
    """``--data SPEC``, ``--split``, ``--points``, ``--sampling``, ``--limit``."""
    p.add_argument("--data", default="shapeparts", metavar="SPEC",
                   help="data spec: shapeparts[:key=value,...], modelnet40-h5:PATH, modelnet40-txt:PATH, "
                        "meshes:PATH or npz:PATH (default shapeparts)")
    p.add_argument("--split", default=split_default, choices=["train", "test", "all"],
                   help=f"which split to use (default {split_default})")
    p.add_argument("--points", type=int, default=1024, help="points per cloud (default 1024)")
    p.add_argument("--sampling", default="first", choices=["first", "random", "fps"],
                   help="how to pick --points points from each cloud (default first)")
    p.add_argument("--limit", type=int, default=None, help="use only the first LIMIT clouds of the split")


def print_json(obj) -> None:
    """Print ``obj`` as JSON on stdout (one object)."""
    sys.stdout.write(to_json(obj) + "\n")
    sys.stdout.flush()
