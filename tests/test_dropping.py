"""Salient-point dropping (pointlens.perturb.dropping) and the PNG renders (pointlens.report.figures)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch import nn

from pointlens.errors import InvalidArgumentError
from pointlens.perturb.dropping import (
    DropResult,
    ScoreOnce,
    check_budgets,
    drop_curve,
    drop_schedule,
    run_drop_experiment,
)

SPIKES = 4


class MaxX(nn.Module):
    """Toy classifier: class 1 iff the cloud's largest x exceeds 0.75 (logits = +-4 (max x - 0.75)).

    Its evidence is known exactly: the points with the largest x. Records (training, grad enabled) per call.
    """

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, points):
        self.calls.append((self.training, torch.is_grad_enabled()))
        m = points[..., 0].max(dim=1).values
        return torch.stack([0.75 - m, m - 0.75], dim=1) * 4.0


class TinyPointNet(nn.Module):
    """A small shared MLP + max-pool + linear head (random weights)."""

    def __init__(self, classes=3):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 32))
        self.head = nn.Linear(32, classes)

    def forward(self, points):
        return self.head(self.mlp(points).max(dim=1).values)


def toy_data(m=12, n=40, seed=0):
    """Clouds in [-0.5, 0.5]^3; odd clouds (class 1) get SPIKES points pushed to x in [1, 1.5]."""
    g = torch.Generator().manual_seed(seed)
    pts = torch.rand(m, n, 3, generator=g) - 0.5
    labels = torch.arange(m) % 2
    spikes = []
    for i in range(m):
        idx = torch.randperm(n, generator=g)[:SPIKES]
        spikes.append(set(idx.tolist()))
        if labels[i] == 1:
            pts[i, idx, 0] = 1.0 + 0.5 * torch.rand(SPIKES, generator=g)
    return pts, labels, spikes


def x_scorer(points, target):
    return points[..., 0].clone()


class Counting:
    """A scorer that records the size of every cloud batch it scores."""

    def __init__(self, fn):
        self.fn = fn
        self.sizes = []

    def __call__(self, points, target):
        self.sizes.append(tuple(points.shape[:2]))
        return self.fn(points, target)


def centroid_distance(points, target):
    """Depends on the WHOLE current cloud: re-scoring after a deletion changes every score."""
    return (points - points.mean(dim=1, keepdim=True)).norm(dim=-1) + 0.1 * points[..., 1]


# ------------------------------------------------------------------------------------------- the experiment
def test_high_drop_collapses_low_drop_does_not():
    pts, labels, spikes = toy_data()
    model = MaxX()
    high = drop_curve(model, pts, labels, x_scorer, budgets=(0, 2, 4, 8), per_step=2, mode="high")
    low = drop_curve(model, pts, labels, x_scorer, budgets=(0, 2, 4, 8), per_step=2, mode="low")
    assert isinstance(high, DropResult)
    # 4 spikes carry the evidence: after 2 drops some are left, after 4 none -> every class-1 cloud is lost.
    assert high.accuracy == {0: 1.0, 2: 1.0, 4: 0.5, 8: 0.5}
    assert low.accuracy == {0: 1.0, 2: 1.0, 4: 1.0, 8: 1.0}
    for i in range(len(pts)):
        if labels[i] == 1:
            assert set(high.removed[i, :4].tolist()) == spikes[i]
            assert not spikes[i] & set(low.removed[i].tolist())
    assert (high.correct[8] == (labels.numpy() == 0)).all()
    assert (high.predictions[8] == 0).all()


def test_schedule_and_budget_checks():
    assert drop_schedule((0, 5, 12), 4) == [4, 1, 4, 3]
    assert drop_schedule((0, 20, 40), 10) == [10, 10, 10, 10]
    assert drop_schedule((3,), 10) == [3]
    assert drop_schedule((0,), 10) == []
    assert check_budgets([0, 25, 50], 1024) == (0, 25, 50)
    for bad in ([], [5, 5], [10, 5], [-1, 5], [0, 2.5], "abc"):
        with pytest.raises(InvalidArgumentError, match="budgets"):
            check_budgets(bad, 100)
    with pytest.raises(InvalidArgumentError, match="at least one point must remain"):
        check_budgets([0, 100], 100)


def test_rescores_every_step_and_removes_exactly_the_step_size():
    pts, labels, _ = toy_data(m=5, n=30)
    scorer = Counting(centroid_distance)
    res = drop_curve(MaxX(), pts, labels, scorer, budgets=(0, 5, 12), per_step=4, batch_size=2)
    # 3 batches (2 + 2 + 1 clouds) x 4 steps (4, 1, 4, 3 points).
    assert res.scorer_calls == 12 == len(scorer.sizes)
    sizes_per_batch = [[n for _, n in scorer.sizes[4 * j:4 * j + 4]] for j in range(3)]
    assert sizes_per_batch == [[30, 26, 25, 21]] * 3
    assert [b for b, _ in scorer.sizes] == [2] * 4 + [2] * 4 + [1] * 4
    for b in (0, 5, 12):
        assert res.clouds[b].shape == (5, 30 - b, 3)
        assert res.kept[b].shape == (5, 30 - b)
        expected = np.take_along_axis(pts.numpy(), res.kept[b][..., None], 1)
        np.testing.assert_array_equal(res.clouds[b], expected)
    assert res.removed.shape == (5, 12)
    for i in range(5):
        assert len(set(res.removed[i].tolist())) == 12
        assert set(res.removed[i].tolist()).isdisjoint(res.kept[12][i].tolist())


def brute_force_drop(points, scorer, steps, mode):
    """Reference: one cloud at a time, a python loop over steps, deleting the top-k by numpy's stable sort."""
    removed = []
    for cloud in points:
        orig = np.arange(len(cloud))
        cur = cloud.copy()
        gone = []
        for k in steps:
            s = scorer(torch.from_numpy(cur)[None], None)[0].numpy()
            order = np.argsort(-s if mode == "high" else s, kind="stable")[:k]
            gone += orig[order].tolist()
            keep = np.setdiff1d(np.arange(len(cur)), order)
            cur, orig = cur[keep], orig[keep]
        removed.append(gone)
    return np.array(removed)


@pytest.mark.parametrize("mode", ["high", "low"])
def test_removed_points_match_brute_force(mode):
    pts, labels, _ = toy_data(m=6, n=32, seed=3)
    res = drop_curve(MaxX(), pts, labels, centroid_distance, budgets=(0, 6, 13), per_step=3, mode=mode,
                     batch_size=4)
    ref = brute_force_drop(pts.numpy(), centroid_distance, drop_schedule((0, 6, 13), 3), mode)
    np.testing.assert_array_equal(res.removed, ref)
    # Scoring once on the clean cloud gives another order here: the re-scoring is what the test above checks.
    once = drop_curve(MaxX(), pts, labels, ScoreOnce(centroid_distance), budgets=(0, 6, 13), per_step=3,
                      mode=mode, batch_size=4)
    assert (once.removed != res.removed).any()
    clean = centroid_distance(pts, None).numpy()
    ref_once = np.argsort(-clean if mode == "high" else clean, axis=1, kind="stable")[:, :13]
    np.testing.assert_array_equal(once.removed, ref_once)
    assert once.scorer_calls == 2


def test_pointwise_scorer_rescored_once_or_fixed_agree():
    pts, labels, _ = toy_data(m=7, n=24, seed=1)
    kwargs = dict(budgets=(0, 5, 10), per_step=3, batch_size=3)
    a = drop_curve(MaxX(), pts, labels, x_scorer, **kwargs)
    b = drop_curve(MaxX(), pts, labels, x_scorer, rescore=False, **kwargs)
    c = drop_curve(MaxX(), pts, labels, pts[..., 0].numpy(), **kwargs)
    for r in (b, c):
        np.testing.assert_array_equal(a.removed, r.removed)
        assert a.accuracy == r.accuracy
    assert c.scorer_calls == 0 and b.scorer_calls == 3 and a.scorer_calls == 3 * 4


def test_random_drop_is_seeded_and_batch_independent():
    pts, labels, _ = toy_data(m=9, n=50)
    kw = dict(budgets=(0, 10, 20), per_step=5)
    r1 = drop_curve(MaxX(), pts, labels, "random", seed=7, batch_size=4, **kw)
    r2 = drop_curve(MaxX(), pts, labels, "random", seed=7, batch_size=64, **kw)
    r3 = drop_curve(MaxX(), pts, labels, "random", seed=8, batch_size=4, **kw)
    np.testing.assert_array_equal(r1.removed, r2.removed)
    assert r1.accuracy == r2.accuracy
    assert (r1.removed != r3.removed).any()
    assert r1.scorer_calls == 3  # scored once per batch of clean clouds (9 clouds, batches of 4), never re-scored
    # The string is the attribution package's random baseline, scored once: the same deletions.
    from pointlens.attribution import RandomAttribution
    from pointlens.perturb.dropping import ScoreOnce

    r4 = drop_curve(MaxX(), pts, labels, ScoreOnce(RandomAttribution(MaxX(), seed=7)), batch_size=4, **kw)
    np.testing.assert_array_equal(r1.removed, r4.removed)
    # Seeded by geometry, not by position: the same cloud moved to another index loses the same points.
    perm = [8, 0, 1, 2, 3, 4, 5, 6, 7]
    r5 = drop_curve(MaxX(), pts[perm], labels[perm], "random", seed=7, batch_size=4, **kw)
    np.testing.assert_array_equal(r5.removed, r1.removed[perm])
    for row in r1.removed:
        assert len(set(row.tolist())) == 20
    # Different clouds get different draws.
    assert len({tuple(row[:5]) for row in r1.removed.tolist()}) > 1


def test_budget_zero_is_clean_accuracy_and_batch_size_does_not_matter():
    torch.manual_seed(0)
    model = TinyPointNet()
    pts = torch.randn(10, 48, 3)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    with torch.no_grad():
        clean = (model(pts).argmax(1) == labels).numpy()

    def grad_scorer(points, target):
        x = points.detach().requires_grad_(True)
        logit = model(x).gather(1, target.view(-1, 1)).sum()
        (g,) = torch.autograd.grad(logit, x)
        return (g * x).sum(-1)

    results = [drop_curve(model, pts, labels, grad_scorer, budgets=(0, 8, 16), per_step=4, batch_size=bs)
               for bs in (1, 3, 64)]
    for r in results:
        assert r.accuracy[0] == pytest.approx(clean.mean())
        np.testing.assert_array_equal(r.correct[0], clean)
        np.testing.assert_array_equal(r.removed, results[0].removed)
        assert r.accuracy == results[0].accuracy
        np.testing.assert_allclose(r.clouds[16], results[0].clouds[16])


def test_model_evaluated_in_eval_mode_without_grad_and_mode_restored():
    pts, labels, _ = toy_data(m=4, n=20)
    model = MaxX().train()
    drop_curve(model, pts, labels, x_scorer, budgets=(0, 4), per_step=2)
    assert model.training
    assert model.calls and all(c == (False, False) for c in model.calls)


def test_scorer_gets_true_labels_as_target_and_attribution_objects_work():
    pts, labels, _ = toy_data(m=6, n=20)
    seen = []

    class FakeAttribution:
        def attribute(self, points, target=None):
            seen.append(target.clone())
            return points[..., 0]

    res = drop_curve(MaxX(), pts, labels, FakeAttribution(), budgets=(0, 2), per_step=2, batch_size=4)
    assert res.scorer_calls == 2
    assert torch.equal(torch.cat(seen), labels)


def test_bad_arguments_give_clear_errors():
    pts, labels, _ = toy_data(m=3, n=20)
    model = MaxX()
    cases = [
        (dict(budgets=(0, 20)), "budgets"),
        (dict(budgets=(10, 5)), "budgets"),
        (dict(per_step=0), "per_step"),
        (dict(mode="middle"), "mode"),
        (dict(batch_size=0), "batch_size"),
        (dict(scorer="nope"), "scorer"),
        (dict(scorer=lambda p, t: p[..., :1]), "scorer"),
        (dict(scorer=lambda p, t: p[..., 0] * float("nan")), "scorer"),
        (dict(scorer=np.zeros((3, 7))), "scorer"),
        (dict(scorer=42), "scorer"),
        (dict(labels=torch.tensor([0, 1])), "labels"),
        (dict(labels=torch.tensor([0, 1, 5])), "labels"),
        (dict(labels=None), "labels"),
        (dict(points=torch.zeros(3, 20, 2)), "points"),
    ]
    for override, name in cases:
        kw = dict(model=model, points=pts, labels=labels, scorer=x_scorer, budgets=(0, 4), per_step=2)
        kw.update(override)
        with pytest.raises(InvalidArgumentError, match=name):
            drop_curve(**kw)
    needy = MaxX()
    needy.min_points = 17                          # like DGCNN's k: 20 - 4 points would be too few
    with pytest.raises(InvalidArgumentError, match="budgets.*at most 3"):
        drop_curve(needy, pts, labels, x_scorer, budgets=(0, 4), per_step=2)
    assert drop_curve(needy, pts, labels, x_scorer, budgets=(0, 3), per_step=2).budgets == (0, 3)


def test_run_drop_experiment_keys_and_values():
    pts, labels, _ = toy_data(m=6, n=30)
    model = MaxX()
    curves = run_drop_experiment(model, pts, labels, {"x": x_scorer, "random": "random"}, budgets=(0, 4, 8),
                                 per_step=2)
    assert set(curves) == {"x-high", "x-low", "random-high", "random-low"}
    single = drop_curve(model, pts, labels, x_scorer, budgets=(0, 4, 8), per_step=2)
    assert curves["x-high"] == single.accuracy
    assert curves["x-high"][8] == 0.5 and curves["x-low"][8] == 1.0
    only, results = run_drop_experiment(model, pts, labels, {"x": x_scorer}, modes="low", budgets=(0, 4),
                                        per_step=2, return_results=True)
    assert list(only) == ["x-low"] and isinstance(results["x-low"], DropResult)
    with pytest.raises(InvalidArgumentError, match="modes"):
        run_drop_experiment(model, pts, labels, {"x": x_scorer}, modes=("sideways",), budgets=(0, 2))


def test_pointshift_on_toy_model_finds_the_evidence():
    import pointlens.attribution as attribution

    pts, labels, _ = toy_data(m=8, n=32)
    model = MaxX()
    ps = attribution.create_attribution("pointshift", model, alpha=1)
    high = drop_curve(model, pts, labels, ps, budgets=(0, SPIKES), per_step=1, mode="high")
    low = drop_curve(model, pts, labels, ps, budgets=(0, SPIKES), per_step=1, mode="low")
    # Only the arg-max point gets a gradient: high-drop peels the spikes one by one.
    assert high.accuracy == {0: 1.0, SPIKES: 0.5}
    assert low.accuracy == {0: 1.0, SPIKES: 1.0}


# ------------------------------------------------------------------------------------------- renders
def _colour_positions(img, cmap):
    """(row, col) of pixels whose colour is on the colour map, and their colour-map value t in [0, 1]."""
    lut = cmap(np.linspace(0, 1, 256))[:, :3]
    rgb = img[..., :3].reshape(-1, 3)
    pix = np.flatnonzero(rgb.min(-1) < 0.95)  # skip the white background
    d = np.abs(rgb[pix, None, :] - lut[None]).max(-1)
    best = d.argmin(1)
    on_map = d[np.arange(len(pix)), best] < 0.03
    rows, cols = np.divmod(pix[on_map], img.shape[1])
    return rows, cols, best[on_map] / 255.0


def test_render_clouds_colours_follow_scores(tmp_path):
    import matplotlib
    import matplotlib.image as mpimg

    from pointlens.report.figures import render_clouds

    g = np.random.default_rng(0)
    cloud = g.uniform(-1, 1, size=(1, 400, 3)).astype(np.float32)
    cmap = matplotlib.colormaps["viridis"]
    cols = {}
    for sign in (1, -1):
        path = render_clouds(cloud, sign * cloud[..., 0], tmp_path / f"r{sign}.png", colorbar=False, dpi=60,
                             panel_size=3)
        img = mpimg.imread(path)
        assert img.shape[:2] == (180, 180)
        _, col, t = _colour_positions(img, cmap)
        hi, lo = col[t > 0.8], col[t < 0.2]
        assert len(hi) > 20 and len(lo) > 20
        cols[sign] = hi.mean() - lo.mean()
    # With the fixed view, data +x points to the image's right: score = x puts the high colour on the right.
    assert cols[1] > 20 and cols[-1] < -20
    plain = mpimg.imread(render_clouds(cloud, None, tmp_path / "plain.png", colorbar=False, dpi=60))
    assert (_colour_positions(plain, cmap)[2] > 0.8).sum() == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # atomic: no temp files left


def test_render_grid_size_ragged_clouds_and_errors(tmp_path):
    import matplotlib.image as mpimg

    from pointlens.report.figures import render_clouds

    clouds = [np.random.default_rng(i).normal(size=(n, 3)) for i, n in enumerate((30, 20, 10))]
    scores = [c[:, 2] for c in clouds]
    path = render_clouds(clouds, scores, tmp_path / "sub" / "grid.png", titles=["a", "b", "c"], ncols=2,
                         dpi=40, panel_size=2, scale="rank")
    assert mpimg.imread(path).shape[:2] == (160, 160)
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InvalidArgumentError, match="scores"):
        render_clouds(clouds, scores[:2], tmp_path / "x.png")
    with pytest.raises(InvalidArgumentError, match="titles"):
        render_clouds(clouds, None, tmp_path / "x.png", titles=["a"])
    with pytest.raises(InvalidArgumentError, match="points"):
        render_clouds(np.zeros((2, 5, 2)), None, tmp_path / "x.png")
    with pytest.raises(InvalidArgumentError, match="cmap"):
        render_clouds(clouds, None, tmp_path / "x.png", cmap="no-such-map")
    assert not os.path.exists(tmp_path / "x.png")


def test_score_colors_scales():
    import matplotlib

    from pointlens.report.figures import score_colors

    cmap = matplotlib.colormaps["viridis"]
    s = np.array([3.0, -1.0, 10.0, 0.0])
    c = score_colors(s)
    np.testing.assert_allclose(c[2], cmap(1.0))
    np.testing.assert_allclose(c[1], cmap(0.0))
    np.testing.assert_allclose(c[0], cmap(4.0 / 11.0))
    np.testing.assert_allclose(score_colors(s, scale="rank")[0], cmap(2 / 3))
    np.testing.assert_allclose(score_colors(np.ones(3))[0], cmap(0.5))
    np.testing.assert_allclose(score_colors(s, scale="shared", vmin=-1, vmax=21)[2], cmap(0.5))
    np.testing.assert_allclose(score_colors(np.array([1.0, 1.0, 2.0]), scale="rank")[:, 0],
                               [cmap(0.25)[0], cmap(0.25)[0], cmap(1.0)[0]])  # ties share their average rank
    signed = np.concatenate([np.linspace(-1, 1, 201), [50.0]])  # one outlier beyond the 99th percentile
    c = score_colors(signed, scale="signed", cmap="coolwarm")
    cw = matplotlib.colormaps["coolwarm"]
    np.testing.assert_allclose(c[100], cw(0.5))                 # 0 -> the middle colour
    np.testing.assert_allclose(c[-1], cw(1.0))                  # clipped outlier
    q = np.percentile(np.abs(signed), 99)
    np.testing.assert_allclose(c[150], cw(0.5 + 0.25 / q))      # 0.5 / q * 0.5
    np.testing.assert_allclose(c[50], cw(0.5 - 0.25 / q))       # antisymmetric
    r = score_colors(signed, scale="robust")
    np.testing.assert_allclose(r[-1], cmap(1.0))
    lo, hi = np.percentile(signed, [1, 99])
    np.testing.assert_allclose(r[100], cmap((0 - lo) / (hi - lo)))


def test_plot_curves(tmp_path):
    import matplotlib.image as mpimg

    from pointlens.report.figures import plot_curves

    curves = {"pointshift-high": {0: 0.9, 25: 0.6}, "pointshift-low": {"0": 0.9, "25": 0.92},
              "random": {0: 0.9}}
    path = plot_curves(curves, tmp_path / "c.png", title="t", dpi=50)
    assert mpimg.imread(path).shape[:2] == (220, 320)
    with pytest.raises(InvalidArgumentError, match="curves"):
        plot_curves({}, tmp_path / "d.png")
    with pytest.raises(InvalidArgumentError, match="curves"):
        plot_curves({"a": {"x": 1}}, tmp_path / "d.png")
