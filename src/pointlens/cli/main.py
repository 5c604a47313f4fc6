"""Entry point of the ``pointlens`` command.

Each subcommand lives in its own module ``pointlens.cli.<name>`` exposing ``register(subparsers)`` (adds its
parser, with help text and an example) and ``run(args) -> int``. Errors raised on purpose
(:class:`pointlens.errors.PointlensError`) become one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pointlens.errors import PointlensError

# Subcommand modules, in the order ``pointlens --help`` lists them.
COMMANDS = [
    "demo",
    "data",
    "train",
    "evaluate",
    "explain",
    "drop",
    "metrics",
    "recon",
    "benchmark",
    "maximize",
    "autoencoder",
    "explainer",
    "report",
]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="pointlens",
        description="pointlens: what does my 3D network look at, and can I trust that answer?",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run 'pointlens <command> --help' for a command's options and an example.",
    )
    from pointlens import __version__

    parser.add_argument("--version", action="version", version=f"pointlens {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"pointlens.cli.{name.replace('-', '_')}")
        except ModuleNotFoundError as e:
            if e.name == f"pointlens.cli.{name.replace('-', '_')}":
                continue  # not built yet
            raise
        mod.register(sub)
    return parser


def main(argv=None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad input, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    from pointlens.utils.perf import tune_allocator
    from pointlens.utils.progress import set_quiet

    tune_allocator()
    set_quiet(getattr(args, "quiet", False))
    try:
        if isinstance(getattr(args, "device", None), str):  # one check of --device for every command
            from pointlens.cli.common import resolve_device

            args.device = str(resolve_device(args.device))
        code = int(args.func(args) or 0)
        if code == 0:
            write_report(args)
        return code
    except PointlensError as e:
        import os

        if os.environ.get("POINTLENS_DEBUG"):  # developers: the full traceback instead of one line
            raise
        print(f"pointlens {args.command}: error: {' '.join(str(e).split())}", file=sys.stderr)  # always one line
        return 2
    except BrokenPipeError:  # e.g. `pointlens ... --json | head`
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"pointlens {args.command}: interrupted", file=sys.stderr)
        return 130


def write_report(args) -> None:
    """After a command succeeded: build ``report.html`` in its run folder (``--out``) unless ``--no-report``.

    The one place every command gets its report. Skipped for ``pointlens report`` itself, without ``--out``, on
    torchrun ranks other than 0, and when the folder holds no run. A report that cannot be built is a warning on
    stderr: the command's results are already written.
    """
    import os

    out = getattr(args, "out", None)
    if (not out or getattr(args, "no_report", False) or args.command == "report"
            or os.environ.get("RANK", "0") != "0"):
        return
    from pointlens.report import build_report, is_run_folder

    if not is_run_folder(out):
        return
    try:
        build_report(out)
    except Exception as e:  # noqa: BLE001 - the command's own results are safe; say why the page is missing
        if os.environ.get("POINTLENS_DEBUG"):
            raise
        print(f"pointlens {args.command}: warning: report.html not written: {type(e).__name__}: {e}",
              file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
