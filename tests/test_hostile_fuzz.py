"""The short fuzz profile (issue 15): hypothesis draws hostile files for every reader and checkpoint kind; each
read gives a correct dataset/model or one pointlens error line, within the time bound. The long profile (>= 1,000
files per kind, peak memory per process measured) is ``python benchmarks/run_all.py fuzz``."""

from __future__ import annotations

import pytest

from fuzz_hostile import KINDS, mutate, run_kind

SHORT = 12  # files per kind in make test


@pytest.mark.parametrize("kind", KINDS)
def test_short_fuzz_profile(kind, tmp_path):
    s = run_kind(kind, SHORT, seed=0, folder=tmp_path)
    assert s["files"] == SHORT
    assert (s["other"], s["hangs"], s["multi_line"]) == (0, 0, 0), s["examples"]
    assert s["ok"] + s["refused"] == SHORT


def test_the_oracle_can_fail(tmp_path):
    """A reader that lets a raw exception escape is reported, not passed."""
    import fuzz_hostile

    real = fuzz_hostile._read
    fuzz_hostile._read = lambda kind, target: [][1]
    try:
        s = run_kind("text", 3, folder=tmp_path)
    finally:
        fuzz_hostile._read = real
    assert s["other"] == 3 and "IndexError" in s["examples"][0]


def test_mutations_do_what_they_say():
    data = b"OFF\n4 4 0\n0 0 0\n"
    assert mutate(data, ("truncate", 0.5)) == data[:8]
    assert mutate(data, ("number", 0, 2**62)) == b"OFF\n4611686018427387904 4 0\n0 0 0\n"
    assert mutate(data, ("flip", [(0.0, 0)])) == b"NFF\n4 4 0\n0 0 0\n"
    assert mutate(data, ("token", 0, b"\xff")) == b"\xff\n4 4 0\n0 0 0\n"
