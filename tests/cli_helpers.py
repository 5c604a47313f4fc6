"""Helpers for tests that run the CLI in-process and check its one-line refusals."""

from pointlens.cli.main import main


def run_cli(capsys, argv):
    """Run ``pointlens argv``; returns ``(exit code, stderr stripped, stdout)``."""
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err.strip(), captured.out


def expect_one_line(capsys, argv, *words):
    """Assert ``pointlens argv`` exits 2 with exactly one stderr line (no traceback) containing every word."""
    code, err, _ = run_cli(capsys, argv)
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)
    return err
