"""The README's library example runs as written (it is the first code a user copies)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(capsys):
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})
    printed = capsys.readouterr().out.splitlines()
    assert float(printed[0]) > 0.5  # the trained PointNet beats chance (1/14) by far
    assert "pointshift-high" in printed[-1] and "random-high" in printed[-1]
