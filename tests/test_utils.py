"""Shared helpers: validation errors, atomic writes, run folders, the HTML report, the CLI error path."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pointlens.errors import InvalidArgumentError
from pointlens.utils import io as pio
from pointlens.utils.validate import as_points, as_target, check_choice, check_float, check_int


def test_as_points_accepts_and_batches():
    p = as_points(np.zeros((5, 3), dtype=np.float64))
    assert p.shape == (1, 5, 3) and p.dtype == torch.float32
    assert as_points(torch.ones(2, 4, 3)).shape == (2, 4, 3)


@pytest.mark.parametrize("bad, words", [
    (torch.zeros(2, 3, 10), "(B, 3, N) models"),
    (torch.zeros(2, 10), "expected shape (B, N, 3)"),
    (torch.zeros(1, 0, 3), "at least one point"),
    (torch.tensor([[[0.0, float("nan"), 0.0]]]), "NaN"),
    ("abc", "points"),
])
def test_as_points_rejects_with_clear_message(bad, words):
    with pytest.raises(InvalidArgumentError) as e:
        as_points(bad)
    assert words in str(e.value) and str(e.value).startswith("points")


def test_checks_name_the_argument():
    with pytest.raises(InvalidArgumentError, match="mode: got mid; expected one of high, low"):
        check_choice("mode", "mid", ["high", "low"])
    with pytest.raises(InvalidArgumentError, match="k: got 0; expected an integer >= 1"):
        check_int("k", 0, minimum=1)
    with pytest.raises(InvalidArgumentError, match="sigma"):
        check_float("sigma", float("inf"))
    assert as_target(3, 4).tolist() == [3, 3, 3, 3]
    with pytest.raises(InvalidArgumentError, match=r"class indices in \[0, 9\]"):
        as_target([1, 10], 2, num_classes=10)


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "m.json"
    pio.save_json(path, {"a": 1})
    with pytest.raises(RuntimeError):
        with pio.atomic_open(path, "w") as f:
            f.write('{"half": ')
            raise RuntimeError("crash mid-write")
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temporary file left behind


def test_save_npz_and_json_round_trip(tmp_path):
    a = torch.arange(6.0).reshape(2, 3)
    pio.save_npz(tmp_path / "x.npz", a=a, b=np.array([1, 2]))
    z = np.load(tmp_path / "x.npz")
    np.testing.assert_array_equal(z["a"], a.numpy())
    pio.save_json(tmp_path / "y.json", {"t": torch.tensor([1.5]), "n": np.int64(3), "nan": float("nan")})
    assert json.loads((tmp_path / "y.json").read_text()) == {"t": [1.5], "n": 3, "nan": None}


def test_run_folder_writes_config_with_versions(tmp_path):
    rf = pio.RunFolder(tmp_path / "run", "unit", {"x": 1}, seed=7)
    rf.write_config()
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["arguments"] == {"x": 1} and cfg["seed"] == 7 and cfg["environment"]["torch"] == torch.__version__


def test_report_is_offline(tmp_path):
    from pointlens.report.html import Report

    rep = Report("t <&>")
    rep.text("a < b").table([{"k": "x", "v": 0.123456}]).cloud(np.zeros((4, 3)), np.arange(4.0))
    path = rep.write(tmp_path)
    page = path.read_text()
    assert "http://" not in page and "https://" not in page
    assert '<script src="plotly.min.js">' in page and (tmp_path / "plotly.min.js").stat().st_size > 1_000_000
    assert "t &lt;&amp;&gt;" in page and "0.1235" in page and "Plotly.newPlot('plot1'" in page


def test_cli_error_is_one_line_exit_2(capsys):
    from pointlens.cli.main import main

    code = main(["evaluate", "--checkpoint", "/nonexistent/model.pt", "--data", "npz:/nonexistent/data.npz"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("pointlens evaluate: error:")
