"""Reports opened in a real browser: headless Chromium, from file://, with the network disabled.

For the demo report and a report of every run kind (train, evaluate, explain, drop, benchmark, recon, metrics):
no console error, no request leaves the machine, every 3D view has drawn, and on the demo the ground-truth toggle
changes the picture and rotating one view rotates the others. Each check is paired with a control that shows it
can fail (a hidden trace reads as blank, console.error and an http:// image are caught).

"Has drawn" = the screenshot of a view's region (modebar hidden, axes are off in our scenes) is not one flat
colour: at least INK_MIN of its pixels differ from the most common colour AND the luminance standard deviation
is above STD_MIN. A blank view is exactly one colour (ink 0, std 0: measured by the control below). One drawn
point (marker diameter >= 3 px) covers ~7 pixels of a ~400x360 view (~5e-5 of it), so INK_MIN = 0.1% needs ~20
visible points, while the sparsest views here (128-point clouds, most points at the minimum size) measured
0.0068-0.022 ink and std 3.4-11 (1024-point demo clouds: 0.018-0.055, std 7-18). Any threshold strictly between
the blank 0 and those values separates them; these sit ~7x below the smallest drawn view.

Chromium: Debian's ``chromium``. When it is absent the test installs it (root with apt-get) or FAILS with the
command to run; it never skips.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from pointlens.cli.main import main
from pointlens.report.browser import (
    HIDE_MODEBAR,
    INSTALL_HINT,
    READY,
    Browser,
    find_chromium,
    offsite_requests,
    pixel_difference,
    pixel_stats,
)

INK_MIN = 0.001   # share of the view's pixels that are not the background colour
STD_MIN = 1.0     # luminance standard deviation (0-255 scale)
DIFF_MIN = 0.001  # share of pixels that change when the ground-truth toggle is ticked
DATA = "shapeparts:n=60"
POINTS = "128"


def _ensure_chromium() -> str:
    path = find_chromium()
    if path is None and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["sh", "-c", INSTALL_HINT], check=False, capture_output=True, timeout=900)
        path = find_chromium()
    if path is None:
        pytest.fail(f"headless Chromium is needed for the report tests; install it with: {INSTALL_HINT}")
    return path


@pytest.fixture(scope="module")
def browser():
    _ensure_chromium()
    with Browser(width=1280, height=900, timeout=90) as b:
        yield b


def _recon_run(folder):
    """A recon run folder in the format of pointlens.recon.report.write_study (the quick study takes a minute)."""
    folder.mkdir(parents=True)
    methods = ["encoder-decoder", "clustering", "retrieval", "oracle-nn"]
    overall = {m: {"iou": 0.1 * (i + 1), "chamfer": 0.1 / (i + 1), "fscore@1%": 0.05 * i, "fscore@2%": 0.1 * i,
                   "iou_median": 0.1 * i} for i, m in enumerate(methods)}
    frame = {"frame": "object", "n_train": 29, "n_test": 14, "overall": overall, "per_class": {},
             "finding": {"retrieval_ge_decoder_iou": True, "agrees_with_paper": False}}
    (folder / "config.json").write_text(json.dumps({"command": "recon run", "arguments": {"quick": True}}))
    (folder / "results.json").write_text(json.dumps({"frames": {"object": frame}}))
    (folder / "metrics.json").write_text(json.dumps({"frames": {"object": frame}, "seconds": 1.0}))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One run folder of every kind, each with its report.html (written by the command's hook or `report`)."""
    root = tmp_path_factory.mktemp("runs")
    demo = root / "demo"
    assert main(["demo", "--out", str(demo), "--data", DATA, "--points", POINTS, "--epochs", "1",
                 "--explain-clouds", "6", "--bench-clouds", "2", "--quiet"]) == 0
    ckpt = str(demo / "train" / "checkpoint.pt")
    common = ["--checkpoint", ckpt, "--data", DATA, "--points", POINTS, "--quiet"]
    assert main(["explain", "--method", "gradient", *common, "--limit", "4", "--renders", "2",
                 "--out", str(root / "explain")]) == 0
    assert main(["evaluate", *common, "--out", str(root / "evaluate")]) == 0
    rng = np.random.default_rng(0)
    np.save(root / "a.npy", rng.random((64, 3)).astype(np.float32))
    np.save(root / "b.npy", rng.random((64, 3)).astype(np.float32))
    assert main(["metrics", "shape", "--pred", str(root / "a.npy"), "--gt", str(root / "b.npy"),
                 "--threshold", "0.1", "--out", str(root / "metrics"), "--quiet"]) == 0
    _recon_run(root / "recon")
    out = {"demo": demo, "explain": root / "explain", "evaluate": root / "evaluate", "metrics": root / "metrics",
           "recon": root / "recon", "train": demo / "train", "drop": demo / "drop", "benchmark": demo / "benchmark"}
    for kind in ("recon", "train", "drop", "benchmark"):  # the sub-runs alone, as `pointlens report DIR`
        assert main(["report", str(out[kind]), "--quiet"]) == 0
    return out


def _open(browser, folder):
    page = (folder / "report.html").resolve()
    assert page.is_file(), f"no report.html in {folder}"
    browser.open(page.as_uri(), ready=READY, timeout=90)
    browser.evaluate(HIDE_MODEBAR)
    browser.settle()
    return page


@pytest.mark.parametrize("kind", ["demo", "train", "evaluate", "explain", "drop", "benchmark", "recon", "metrics"])
def test_report_renders_offline_without_errors(browser, runs, kind):
    _open(browser, runs[kind])
    assert browser.console_errors == []
    assert offsite_requests(browser.requests) == []
    assert any(u.endswith("/plotly.min.js") for u in browser.requests)  # the capture sees the page's requests
    n_views = browser.evaluate("document.querySelectorAll('.pl-view').length")
    if kind in ("demo", "explain"):
        assert n_views == (5 if kind == "demo" else 1)
    for i in range(n_views):
        stats = pixel_stats(browser.element_screenshot(".pl-view", i))
        assert stats["ink"] > INK_MIN and stats["std"] > STD_MIN, f"3D view {i} of {kind} looks blank: {stats}"
    n_plots = browser.evaluate("document.querySelectorAll('.plot .main-svg').length")
    assert n_plots >= browser.evaluate("document.querySelectorAll('.plot').length")  # every 2D chart drew its svg


def test_ground_truth_toggle_and_linked_cameras(browser, runs):
    _open(browser, runs["demo"])
    before = browser.element_screenshot(".pl-view", 0)
    assert browser.evaluate("(() => {const t = document.querySelector('input.pl-gt'); t.click(); "
                            "return t.checked;})()") is True
    browser.settle()
    after = browser.element_screenshot(".pl-view", 0)
    diff = pixel_difference(before, after)
    print(f"ground-truth toggle changed {diff:.4f} of the view's pixels")
    assert diff > DIFF_MIN
    assert browser.console_errors == []
    # rotating view 0 moves every other view's camera to the same place
    browser.evaluate("(() => {const v = document.querySelectorAll('.pl-view'); window.pointlensTrack("
                     "Plotly.relayout(v[0], {'scene.camera': {eye: {x: 0.1, y: 2.2, z: 0.3}, "
                     "up: {x: 0, y: 0, z: 1}, center: {x: 0, y: 0, z: 0}}})); return true;})()")
    browser.settle()
    eyes = browser.evaluate("Array.from(document.querySelectorAll('.pl-view')).map("
                            "v => v._fullLayout.scene.camera.eye)")
    assert len(eyes) == 5 and all(e == {"x": 0.1, "y": 2.2, "z": 0.3} for e in eyes), eyes


def test_the_checks_can_fail(browser, runs, tmp_path):
    """Controls: a hidden trace reads as blank; console.error and a request to http:// are caught."""
    _open(browser, runs["explain"])
    drawn = pixel_stats(browser.element_screenshot(".pl-view", 0))
    browser.evaluate("window.pointlensTrack(Plotly.restyle(document.querySelector('.pl-view'), {visible: false}))"
                     " && true")
    browser.settle()
    blank = pixel_stats(browser.element_screenshot(".pl-view", 0))
    assert drawn["ink"] > INK_MIN and blank["ink"] <= INK_MIN and blank["std"] <= STD_MIN, (drawn, blank)
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><img src="http://example.invalid/x.png">'
                    "<script>console.error('boom')</script></body></html>")
    browser.open(page.as_uri())
    browser.settle()
    assert "boom" in " ".join(browser.console_errors)
    assert offsite_requests(browser.requests) == ["http://example.invalid/x.png"]
