"""pointlens side by side with its peers: the same numbers as Quantus 0.6, and the speed against Quantus and Captum.

Needs the ``peers`` extra (``pip install -e '.[peers]'``, done by ``make bench``): Quantus 0.6.0; Captum comes with
the ``test`` extra.

1. Agreement, per cloud, on 32 ShapeParts test clouds (512 points) with a trained PointNet and three attributions
   (point-shift, IG with 16 steps, random), true class as target. Quantus sees the clouds channel-first
   ``(B, 3, N)`` through :class:`peers_adapters.ChannelFirst`.

   * Deterministic metrics (relevance mass / rank accuracy, pointing game, sparseness, complexity, random logit
     with matched classes, independent MPRT with matched re-initialisation): max |pointlens - Quantus| over the
     clouds, first with Quantus' defaults ("raw"), then with the inputs made to mean the same thing ("matched",
     e.g. Quantus given the positive part of the scores where pointlens ignores negative relevance). Target 1e-6.
   * Stochastic metrics (faithfulness correlation, max-sensitivity, cascading MPRT, random logit): R repeats of
     each library with seeds 0..R-1 under matched perturbations (points shifted to the centre / jittered in a
     ball, see ``peers_adapters``). Per cloud, the two means agree when
     ``|mean_p - mean_q| <= t_{0.975, 2R-2} sqrt((sd_p^2 + sd_q^2) / R)``; the table gives the share of clouds
     that agree (about 95 % expected when the two estimate the same quantity).

2. Speed, side by side in one process on the same inputs: pointlens vs Quantus per metric (clouds per second,
   median of 3 alternating runs), and pointlens vs Captum for point-shift / Saliency, IG / IntegratedGradients
   (same steps and rule), SmoothGrad / NoiseTunnel and exact occlusion / FeatureAblation (one point at a time);
   median of 5 alternating runs.
3. Hand-written numerics vs scikit-learn / scipy (``peers_numerics``).

The PointNet comes from ``$POINTLENS_PEERS_CHECKPOINT``, else ``runs/pointnet/checkpoint.pt``, else it is trained
here (4 epochs). Repeats: 3 per library for the stochastic metrics (50 subsets for faithfulness correlation,
5 jitters for max-sensitivity); metrics that call the explanation many times use point-shift and 4-step IG, the
randomisation test point-shift only (each costs one explanation per module and repeat on a 2-core machine).
``run(quick=True)``: 8 clouds of 256 points, 2 repeats, to check the script works.
Speed tables only (a few minutes): ``python benchmarks/bench_peers.py --speed-only`` prints them and stores nothing
(``run_all.py peers`` always runs everything: its section replaces benchmarks/results/peers.md).
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


# --------------------------------------------------------------------------------------------- setup
def _model(quick: bool):
    from pointlens.models import load_checkpoint

    path = os.environ.get("POINTLENS_PEERS_CHECKPOINT") or str(ROOT / "runs" / "pointnet" / "checkpoint.pt")
    if Path(path).exists() and not quick:
        return load_checkpoint(path).model.eval(), f"`{os.path.relpath(path, ROOT)}`"
    from pointlens.data import load_dataset
    from pointlens.training import TrainConfig, train

    spec, points, epochs = ("shapeparts:n=200", 256, 1) if quick else ("shapeparts", 512, 4)
    tr = load_dataset(spec, split="train", num_points=points)
    model = train(TrainConfig(model="pointnet", epochs=epochs, batch_size=32, seed=0), tr).model.eval()
    return model, f"PointNet trained here on `{spec}` ({points} points, {epochs} epochs)"


def _data(quick: bool):
    from pointlens.data import load_dataset

    spec, n, b = ("shapeparts:n=200", 256, 8) if quick else ("shapeparts", 512, 32)
    ds = load_dataset(spec, split="test", num_points=n)
    pts = torch.as_tensor(ds.points[:b])
    return pts, torch.as_tensor(ds.gt_mask[:b]), torch.as_tensor(ds.labels[:b]).long(), spec


def _stable_rank_scores(a: torch.Tensor) -> torch.Tensor:
    """Distinct scores with pointlens' order: N - (position in the stable descending sort)."""
    n = a.shape[1]
    order = torch.sort(a, dim=1, descending=True, stable=True).indices
    return torch.empty_like(a, dtype=torch.float64).scatter_(
        1, order, torch.arange(n, 0, -1, dtype=torch.float64).expand(a.shape[0], n).contiguous())


def _maxdiff(p, q) -> float:
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    q = np.asarray(q, dtype=np.float64).reshape(-1)
    both = np.isfinite(p) & np.isfinite(q)
    if (np.isfinite(p) != np.isfinite(q)).any():
        return float("inf")
    return float(np.abs(p[both] - q[both]).max()) if both.any() else 0.0


def _agree(p: np.ndarray, q: np.ndarray) -> tuple[int, int]:
    """Clouds whose repeat means agree: ``p``, ``q`` are ``(R, B)`` repeats; Welch-type 95 % bound."""
    from scipy import stats

    r = p.shape[0]
    t = stats.t.ppf(0.975, 2 * r - 2)
    bound = t * np.sqrt((p.var(0, ddof=1) + q.var(0, ddof=1)) / r)
    diff = np.abs(p.mean(0) - q.mean(0))
    ok = np.isfinite(diff) & (diff <= bound + 1e-12)
    return int(ok.sum()), int(np.isfinite(diff).sum())


def _fmt(x: float) -> str:
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return str(x)
    return f"{x:.1e}" if abs(x) < 1e-3 or abs(x) >= 1e3 else f"{x:.4f}"


# --------------------------------------------------------------------------------------------- agreement
def agreement(model, pts, mask, y, *, repeats: int, quick: bool) -> tuple[list[str], dict]:
    import quantus
    from peers_adapters import (
        ChannelFirst,
        PointIndexModel,
        ball_jitter,
        mark_points,
        pointlens_explain,
        quantus_explain,
        reset_modules,
    )

    from pointlens.attribution import create_attribution
    from pointlens.metrics import (
        entropy_complexity,
        faithfulness_correlation,
        max_sensitivity,
        model_randomisation,
        pointing_game,
        random_logit_test,
        relevance_mass_accuracy,
        relevance_rank_accuracy,
        sparseness,
    )
    from pointlens.metrics.sanity import explanation_similarity

    b, n, _ = pts.shape
    ig_steps = 16
    methods = {"pointshift": {}, "ig": {"steps": ig_steps}, "random": {"seed": 0}}
    scores = {m: create_attribution(m, model, **o).attribute(pts, y).to(torch.float64) for m, o in methods.items()}
    wrapped = ChannelFirst(model).eval()
    x_cf = pts.transpose(1, 2).numpy().astype(np.float64)
    y_np = y.numpy()
    s_cf = mask.numpy()[:, None, :].astype(np.float64)
    common = {"disable_warnings": True, "display_progressbar": False}
    rows = []      # (metric, method, raw diff, matched diff, note)

    def q_loc(cls, a, **kw):
        return np.asarray(cls(normalise=False, abs=False, **common, **kw)(
            model=wrapped, x_batch=x_cf, y_batch=y_np, a_batch=np.asarray(a, np.float64)[:, None, :],
            s_batch=s_cf, channel_first=True), dtype=np.float64)

    for m, a in scores.items():
        p = relevance_mass_accuracy(a, mask).numpy()
        rows.append(("relevance mass accuracy", m, _maxdiff(p, q_loc(quantus.RelevanceMassAccuracy, a)),
                     _maxdiff(p, q_loc(quantus.RelevanceMassAccuracy, a.clamp_min(0))),
                     f"{int((a < 0).any(1).sum())}/{b} clouds with negative scores"))
        p = relevance_rank_accuracy(a, mask).numpy()
        ties = int(sum(len(torch.unique(r)) < n for r in a))
        rows.append(("relevance rank accuracy", m, _maxdiff(p, q_loc(quantus.RelevanceRankAccuracy, a)),
                     _maxdiff(p, q_loc(quantus.RelevanceRankAccuracy, _stable_rank_scores(a))),
                     f"{ties}/{b} clouds with tied scores"))
        p = pointing_game(a, mask).numpy()
        top = a == a.amax(1, keepdim=True)
        tied = (top.sum(1) > 1).numpy()
        q = q_loc(quantus.PointingGame, a)
        rows.append(("pointing game", m, _maxdiff(p, q), _maxdiff(p[~tied], q[~tied]),
                     f"{int(tied.sum())}/{b} clouds with a tied maximum (matched = the others)"))
        a_np = a.numpy()
        q = np.asarray(quantus.Sparseness(**common)(model=wrapped, x_batch=x_cf, y_batch=y_np,
                                                   a_batch=a_np[:, None, :].copy(), channel_first=True))
        p = sparseness(a).numpy()
        eps_matched = sparseness(torch.as_tensor(np.abs(a_np) / np.abs(a_np).max() + 1e-7)).numpy()
        rows.append(("sparseness (Gini)", m, _maxdiff(p, q), _maxdiff(eps_matched, q),
                     "matched: pointlens on Quantus' |a| / max|a| + 1e-7"))
        q = np.asarray(quantus.Complexity(**common)(model=wrapped, x_batch=x_cf, y_batch=y_np,
                                                   a_batch=a_np[:, None, :].copy(), channel_first=True))
        p = entropy_complexity(a).numpy()
        rows.append(("complexity (entropy)", m, _maxdiff(p, q), _maxdiff(p, q), "same inputs"))

    # Random logit, matched classes: Quantus draws the other class with numpy; replay its draw.
    n_classes = int(model(pts[:1]).shape[1])
    stoch = []     # (metric, method, agree, total, mean_p, mean_q, note)
    # metrics that call the explanation many times: point-shift and IG with 4 steps (the metric's definition,
    # not the explanation, is what is compared; 16-step IG would multiply the run time by 4)
    sanity = {"pointshift": {}, "ig": {"steps": 4}}
    s_call = {m: create_attribution(m, model, **o).attribute(pts, y).to(torch.float64) for m, o in sanity.items()}
    for m in sanity:
        q_expl = quantus_explain(m, **sanity[m])
        rl = quantus.RandomLogit(num_classes=n_classes, seed=42, similarity_func=quantus.similarity_func
                                 .correlation_spearman, abs=False, normalise=False, **common)
        q = np.asarray(rl(model=wrapped, x_batch=x_cf, y_batch=y_np, a_batch=s_call[m].numpy()[:, None, :],
                          explain_func=q_expl, channel_first=True, batch_size=b), dtype=np.float64)
        np.random.seed(42)
        draw = np.random.randint(0, n_classes - 1, b)
        other = torch.as_tensor(draw) + (torch.as_tensor(draw) >= y).long()
        s_o = pointlens_explain(m, **sanity[m])(model, pts, other)
        p = explanation_similarity(s_call[m], s_o)["spearman"].numpy()
        rows.append(("random logit (Spearman)", m, _maxdiff(p, q), _maxdiff(p, q),
                     "same other class (Quantus' numpy draw replayed)"))
        # stochastic: each library's own draws, seeds 0..R-1
        pr, qr = [], []
        for r in range(repeats):
            pr.append(random_logit_test(model, pts, pointlens_explain(m, **sanity[m]), y, seed=r).spearman.numpy())
            rl = quantus.RandomLogit(num_classes=n_classes, seed=r, similarity_func=quantus.similarity_func
                                     .correlation_spearman, abs=False, normalise=False, **common)
            qr.append(np.asarray(rl(model=wrapped, x_batch=x_cf, y_batch=y_np, a_batch=s_call[m].numpy()[:, None, :],
                                    explain_func=q_expl, channel_first=True, batch_size=b), dtype=np.float64))
        pr, qr = np.array(pr), np.array(qr)
        stoch.append(("random logit (Spearman), own draws", m, *_agree(pr, qr), np.nanmean(pr), np.nanmean(qr),
                      "class drawn uniformly among the other classes (torch vs numpy RNG)"))

    # MPRT, independent, one module at a time: Quantus seeds every module with torch.manual_seed(seed + 1);
    # pointlens' step i uses seed + i + 1, so one pointlens call per module (layers=[name], seed) matches it.
    names = reset_modules(model)
    q_names = ["inner." + nm for nm in names]
    assert q_names == reset_modules(wrapped)[1:] or q_names == reset_modules(wrapped), "module names"
    mprt_methods = {"pointshift": {}}        # one explanation per module and repeat: point-shift only
    for m, opts in mprt_methods.items():
        q_expl = quantus_explain(m, **opts)
        mprt = quantus.MPRT(layer_order="independent", seed=42, **common)
        qres = mprt(model=wrapped, x_batch=x_cf, y_batch=y_np, a_batch=s_call[m].numpy()[:, None, :],
                    explain_func=q_expl, channel_first=True, batch_size=b)
        worst = 0.0
        for nm in names:
            res = model_randomisation(model, pts, pointlens_explain(m, **opts), y, mode="independent",
                                      layers=[nm], seed=42)
            worst = max(worst, _maxdiff(res.steps[0].spearman_abs.numpy(), qres["inner." + nm]))
        rows.append(("MPRT independent (Spearman of |a|)", m, worst, worst,
                     f"every one of {len(names)} modules, same re-initialisation"))

    # MPRT cascading, per module (Quantus' granularity): stochastic (each module's re-initialisation seed).
    for m, opts in mprt_methods.items():
        q_expl = quantus_explain(m, **opts)
        pr, qr = [], []
        for r in range(repeats):
            res = model_randomisation(model, pts, pointlens_explain(m, **opts), y, mode="cascading",
                                      layers=list(reversed(names)), seed=r)
            pr.append(res.steps[-1].spearman_abs.numpy())
            qres = quantus.MPRT(layer_order="top_down", seed=r, **common)(
                model=wrapped, x_batch=x_cf, y_batch=y_np, a_batch=s_call[m].numpy()[:, None, :],
                explain_func=q_expl, channel_first=True, batch_size=b)
            qr.append(np.asarray(list(qres.values())[-1], dtype=np.float64))
        pr, qr = np.array(pr), np.array(qr)
        stoch.append(("MPRT cascading, all layers random (Spearman of abs)", m, *_agree(pr, qr), np.nanmean(pr),
                      np.nanmean(qr), "fully randomised model; per-module re-initialisation seeds differ"))

    # Faithfulness correlation: matched point removal (shift to the median centre) through point ids.
    subset = max(1, round(0.1 * n))
    n_sub = 20 if quick else 50
    idx_model = PointIndexModel(model, pts).eval()
    ids = idx_model.ids()
    for m in methods:
        a = scores[m]
        pr, qr = [], []
        for r in range(repeats):
            pr.append(faithfulness_correlation(model, pts, a, y, n_subsets=n_sub, subset_size=subset,
                                               removal="shift", seed=r).correlation.numpy())
            np.random.seed(r)
            fc = quantus.FaithfulnessCorrelation(nr_runs=n_sub, subset_size=subset, perturb_func=mark_points,
                                                 normalise=False, abs=False, return_aggregate=False, **common)
            qr.append(np.asarray(fc(model=idx_model, x_batch=ids, y_batch=y_np, a_batch=a.numpy()[:, None, :],
                                    channel_first=True, batch_size=b), dtype=np.float64))
        pr, qr = np.array(pr), np.array(qr)
        stoch.append(("faithfulness correlation", m, *_agree(pr, qr), np.nanmean(pr), np.nanmean(qr),
                      f"{n_sub} subsets of {subset} points shifted to the median centre"))
    # and Quantus' own perturbation on (B, 3, N): single coordinates replaced by the cloud's minimum ("black")
    native = {}
    for m in methods:
        np.random.seed(0)
        fc = quantus.FaithfulnessCorrelation(nr_runs=n_sub, subset_size=3 * subset, normalise=False, abs=False,
                                             return_aggregate=False, **common)
        native[m] = float(np.nanmean(fc(model=wrapped, x_batch=x_cf, y_batch=y_np,
                                        a_batch=scores[m].numpy()[:, None, :], channel_first=True, batch_size=b)))

    # Max-sensitivity: matched jitter distribution (uniform in a ball of radius 0.02), 10 samples.
    radius, n_samp = 0.02, (3 if quick else 5)
    for m in sanity:
        q_expl = quantus_explain(m, **sanity[m])
        pr, qr = [], []
        for r in range(repeats):
            pr.append(max_sensitivity(model, pts, pointlens_explain(m, **sanity[m]), y, radius=radius,
                                      n_samples=n_samp, seed=r).numpy())
            np.random.seed(r)
            ms = quantus.MaxSensitivity(nr_samples=n_samp, perturb_func=ball_jitter,
                                        perturb_func_kwargs={"radius": radius}, normalise=False, abs=False,
                                        **common)
            qr.append(np.asarray(ms(model=wrapped, x_batch=x_cf, y_batch=y_np, a_batch=s_call[m].numpy()[:, None, :],
                                    explain_func=q_expl, channel_first=True, batch_size=b), dtype=np.float64))
        pr, qr = np.array(pr), np.array(qr)
        stoch.append(("max-sensitivity", m, *_agree(pr, qr), np.nanmean(pr), np.nanmean(qr),
                      f"{n_samp} jitters uniform in a ball of radius {radius}"))

    lines = ["### Agreement: deterministic metrics (max |pointlens - Quantus| over the clouds)", "",
             "| metric | attribution | raw (Quantus defaults) | matched inputs | target | note |",
             "|---|---|---|---|---|---|"]
    for metric, m, raw, matched, note in rows:
        ok = "met" if matched <= 1e-6 else "**not met**"
        lines.append(f"| {metric} | {m} | {_fmt(raw)} | {_fmt(matched)} | 1e-6: {ok} | {note} |")
    lines += ["", f"### Agreement: stochastic metrics ({repeats} repeats each, seeds 0..{repeats - 1})", "",
              "| metric | attribution | clouds whose means agree | mean pointlens | mean Quantus | perturbation |",
              "|---|---|---|---|---|---|"]
    for metric, m, ok, tot, mp, mq, note in stoch:
        lines.append(f"| {metric} | {m} | {ok}/{tot} | {mp:.4f} | {mq:.4f} | {note} |")
    lines += ["", "Quantus' own faithfulness-correlation perturbation on `(B, 3, N)` (random single COORDINATES, "
              f"{3 * subset} per subset, replaced by the cloud's smallest coordinate): mean "
              + ", ".join(f"{m} {v:.4f}" for m, v in native.items())
              + " — pointlens shifts whole points to the centre (table above)."]
    info = {"rows": rows, "stoch": stoch, "n_modules": len(names)}
    return lines, info


# --------------------------------------------------------------------------------------------- speed
def _alternate(fns: dict, repeats: int, min_time: float = 0.25) -> dict:
    """Median seconds per call of each callable, calls alternating so every one sees the same load.

    Each timing runs its callable ``number`` times in a row, ``number`` chosen from a warm-up call so that one
    timing lasts at least ``min_time`` seconds (1 for the slow calls): sub-millisecond calls are then timed
    well above the timer's and the scheduler's noise instead of one call at a time.
    """
    numbers = {}
    for k, f in fns.items():
        t0 = time.perf_counter()
        f()
        took = time.perf_counter() - t0
        if took < min_time:                 # calibrate on a second, warm call
            t0 = time.perf_counter()
            f()
            took = time.perf_counter() - t0
        numbers[k] = max(1, math.ceil(min_time / max(took, 1e-9)))
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            for _ in range(numbers[k]):
                f()
            times[k].append((time.perf_counter() - t0) / numbers[k])
    return {k: statistics.median(v) for k, v in times.items()}


class _PassCounter:
    """Counts the model passes a metric call makes, in clouds of ``n`` points: the clouds its explanation
    function explains, and the clouds the model classifies outside explanations (point count / ``n``, so a
    forward pass of one-point clouds counts as a fraction of a cloud).

    ``explain(fn)`` wraps an explanation function (it counts only while :meth:`counting` is active).
    :meth:`counting` patches the model CLASS's ``forward`` for one counted call (an instance attribute would be
    copied into the deep copies the randomisation tests make, and a hook would switch off the max-pool shortcuts).
    """

    def __init__(self, n: int):
        self.n, self.active, self.inside = n, False, False
        self.explained = self.forwarded = 0.0

    def explain(self, fn):
        def wrapped(model, inputs, targets, **kwargs):
            if self.active and not self.inside:
                self.explained += int(np.asarray(targets).reshape(-1).shape[0])
            self.inside = True
            try:
                return fn(model, inputs, targets, **kwargs)
            finally:
                self.inside = False
        return wrapped

    def count(self, model_class, fn) -> tuple[float, float]:
        """``(clouds explained, clouds classified)`` by one call of ``fn``."""
        original = model_class.forward
        counter = self

        def forward(module, points, *args, **kwargs):
            if counter.active and not counter.inside:
                counter.forwarded += points.shape[0] * points.shape[1] / counter.n
            return original(module, points, *args, **kwargs)

        self.explained = self.forwarded = 0.0
        self.active = True
        model_class.forward = forward
        try:
            fn()
        finally:
            model_class.forward = original
            self.active = False
        return self.explained, self.forwarded


def speed_quantus(model, pts, mask, y, *, repeats: int, quick: bool) -> list[str]:
    import quantus
    from peers_adapters import (
        ChannelFirst,
        PointIndexModel,
        mark_points,
        pointlens_explain,
        quantus_explain,
        reset_modules,
    )

    from pointlens.attribution import create_attribution
    from pointlens.metrics import (
        entropy_complexity,
        faithfulness_correlation,
        max_sensitivity,
        model_randomisation,
        pointing_game,
        random_logit_test,
        relevance_mass_accuracy,
        relevance_rank_accuracy,
        sparseness,
    )

    b, n, _ = pts.shape
    a = create_attribution("pointshift", model).attribute(pts, y).to(torch.float64)
    wrapped = ChannelFirst(model).eval()
    x_cf = pts.transpose(1, 2).numpy().astype(np.float64)
    y_np, a_cf = y.numpy(), a.numpy()[:, None, :]
    s_cf = mask.numpy()[:, None, :].astype(np.float64)
    c = {"disable_warnings": True, "display_progressbar": False}
    counter = _PassCounter(n)
    expl_p = counter.explain(pointlens_explain("pointshift"))
    expl_q = counter.explain(quantus_explain("pointshift"))
    n_classes = int(model(pts[:1]).shape[1])
    names = reset_modules(model)
    subset, n_sub = max(1, round(0.1 * n)), 20
    idx_model = PointIndexModel(model, pts).eval()
    ids = idx_model.ids()

    def q(cls, **kw):
        def f():
            return cls(**c, **kw)(model=wrapped, x_batch=x_cf, y_batch=y_np, a_batch=a_cf.copy(), s_batch=s_cf,
                                  channel_first=True, batch_size=b)
        return f

    cases = [
        ("relevance mass accuracy", lambda: relevance_mass_accuracy(a, mask), q(quantus.RelevanceMassAccuracy)),
        ("relevance rank accuracy", lambda: relevance_rank_accuracy(a, mask), q(quantus.RelevanceRankAccuracy)),
        ("pointing game", lambda: pointing_game(a, mask), q(quantus.PointingGame)),
        ("sparseness", lambda: sparseness(a), q(quantus.Sparseness)),
        ("complexity", lambda: entropy_complexity(a), q(quantus.Complexity)),
        ("random logit", lambda: random_logit_test(model, pts, expl_p, y, scores=a),
         lambda: quantus.RandomLogit(num_classes=n_classes, similarity_func=quantus.similarity_func
                                     .correlation_spearman, **c)(
             model=wrapped, x_batch=x_cf, y_batch=y_np, a_batch=a_cf, explain_func=expl_q, channel_first=True,
             batch_size=b)),
        (f"faithfulness correlation ({n_sub} subsets)", lambda: faithfulness_correlation(
            model, pts, a, y, n_subsets=n_sub, subset_size=subset),
         lambda: quantus.FaithfulnessCorrelation(nr_runs=n_sub, subset_size=subset, perturb_func=mark_points,
                                                 return_aggregate=False, **c)(
             model=idx_model, x_batch=ids, y_batch=y_np, a_batch=a_cf, channel_first=True, batch_size=b)),
        (f"faithfulness correlation ({n_sub} subsets), pointlens batch_size={b}", lambda: faithfulness_correlation(
            model, pts, a, y, n_subsets=n_sub, subset_size=subset, batch_size=b),
         lambda: quantus.FaithfulnessCorrelation(nr_runs=n_sub, subset_size=subset, perturb_func=mark_points,
                                                 return_aggregate=False, **c)(
             model=idx_model, x_batch=ids, y_batch=y_np, a_batch=a_cf, channel_first=True, batch_size=b)),
        ("max-sensitivity (10 samples)", lambda: max_sensitivity(model, pts, expl_p, y, radius=0.02, n_samples=10,
                                                                 scores=a),
         lambda: quantus.MaxSensitivity(nr_samples=10, **c)(
             model=wrapped, x_batch=x_cf, y_batch=y_np, a_batch=a_cf, explain_func=expl_q, channel_first=True,
             batch_size=b)),
        (f"MPRT cascading, full model ({len(names)} modules)", lambda: model_randomisation(
            model, pts, expl_p, y, layers=list(reversed(names)), scores=a),
         lambda: quantus.MPRT(layer_order="top_down", **c)(
             model=wrapped, x_batch=x_cf, y_batch=y_np, a_batch=a_cf, explain_func=expl_q, channel_first=True,
             batch_size=b)),
    ]
    lines = ["### Speed: pointlens vs Quantus (point-shift explanations, same clouds, same model)", "",
             f"Clouds per second on {b} clouds of {n} points, median of {repeats} alternating runs (each run "
             "repeats a fast call until it lasts 0.25 s). Both libraries get the precomputed explanation "
             "(Quantus' `a_batch`, pointlens' `scores=`) and the true classes.", "",
             "| metric | pointlens clouds/s | Quantus clouds/s | ratio | >= 10x |", "|---|---|---|---|---|"]
    os.environ.setdefault("POINTLENS_PROGRESS", "0")
    passes = []
    for i, (name, fp, fq) in enumerate(cases):
        if i >= 5:                                      # the model-bound metrics: count their passes once
            passes.append((name, counter.count(type(model), fp), counter.count(type(model), fq)))
        t = _alternate({"p": fp, "q": fq}, repeats)
        ratio = t["q"] / t["p"]
        lines.append(f"| {name} | {b / t['p']:.1f} | {b / t['q']:.1f} | {ratio:.1f}x | "
                     f"{'met' if ratio >= 10 else '**not met**'} |")
    # the price of one pass of each kind, to read the counts against
    ps = create_attribution("pointshift", model)
    with torch.no_grad():
        t = _alternate({"explain": lambda: ps.attribute(pts, y), "forward": lambda: model(pts)}, repeats)
    lines += ["", f"Model passes per metric call (in clouds of {n} points; one point-shift explanation of the {b} "
              f"clouds costs {t['explain']:.3f} s, one forward pass {t['forward']:.3f} s):", "",
              "| metric | pointlens: clouds explained | pointlens: clouds classified | Quantus: clouds explained "
              "| Quantus: clouds classified |", "|---|---|---|---|---|"]
    for name, (pe, pf), (qe, qf) in passes:
        lines.append(f"| {name} | {pe:g} | {pf:.4g} | {qe:g} | {qf:.4g} |")
    return lines


def speed_captum(model, pts, y, *, repeats: int) -> list[str]:
    from captum.attr import FeatureAblation, IntegratedGradients, NoiseTunnel, Saliency

    from pointlens.attribution import create_attribution

    b, n, _ = pts.shape
    steps = 8
    zeros = torch.zeros_like(pts)
    ps = create_attribution("pointshift", model, batch_size=b)
    ig = create_attribution("ig", model, steps=steps, method="gausslegendre", baseline="zeros", batch_size=b)
    sg = create_attribution("smoothgrad", model, method="gradient", n_samples=4, sigma=0.02, batch_size=b)
    occ = create_attribution("occlusion", model, batch_size=256)
    sal, cig = Saliency(model), IntegratedGradients(model)
    nt = NoiseTunnel(Saliency(model))
    fa = FeatureAblation(model)
    point_mask = torch.arange(n).view(1, n, 1).expand(1, n, 3)
    cases = [
        ("point-shift vs `Saliency`", lambda: ps.attribute(pts, y),
         lambda: sal.attribute(pts.clone().requires_grad_(True), target=y)),
        (f"IG vs `IntegratedGradients` ({steps} steps, Gauss-Legendre, zero baseline)",
         lambda: ig.attribute(pts, y),
         lambda: cig.attribute(pts, baselines=zeros, target=y, n_steps=steps, method="gausslegendre",
                               internal_batch_size=b * steps)),
        ("SmoothGrad (gradient, 4 samples, sigma 0.02) vs `NoiseTunnel(Saliency)`", lambda: sg.attribute(pts, y),
         lambda: nt.attribute(pts.clone().requires_grad_(True), nt_type="smoothgrad", nt_samples=4, stdevs=0.02,
                              target=y, nt_samples_batch_size=4)),
    ]
    lines = ["### Speed: pointlens vs Captum (same PointNet, same clouds)", "",
             f"{b} clouds of {n} points, median of {repeats} alternating runs in one process.", "",
             "| method | pointlens clouds/s | Captum clouds/s | ratio | target |", "|---|---|---|---|---|"]
    targets = {0: ">= 1.0x", 1: ">= 1.0x", 2: "-"}
    for i, (name, fp, fq) in enumerate(cases):
        t = _alternate({"p": fp, "q": fq}, repeats)
        ratio = t["q"] / t["p"]
        verdict = targets[i] if targets[i] == "-" else (targets[i] + (": met" if ratio >= 1.0 else ": **not met**"))
        lines.append(f"| {name} | {b / t['p']:.1f} | {b / t['q']:.1f} | {ratio:.2f}x | {verdict} |")
    # occlusion: Captum ablates one point per forward (N forwards per cloud batch); time on few clouds
    bo = min(b, 4)
    t = _alternate({"p": lambda: occ.attribute(pts[:bo], y[:bo]),
                    "q": lambda: fa.attribute(pts[:bo], target=y[:bo], feature_mask=point_mask, baselines=0.0,
                                              perturbations_per_eval=64)}, max(1, repeats // 2))
    s_p = occ.attribute(pts[:bo], y[:bo])
    lines.append(f"| exact occlusion (leave-one-out) vs `FeatureAblation` (one point to the origin, {bo} clouds) | "
                 f"{bo / t['p']:.1f} | {bo / t['q']:.2f} | {t['q'] / t['p']:.0f}x | - |")
    lines += ["", "pointlens' gradient methods back-propagate through the max pool's critical points only (the "
              "points that are the arg-max of some channel; every other point's gradient is exactly 0 — "
              "`pointlens.attribution.gradient._pooled_input_grad`, the same gradient to float rounding), after one "
              "forward pass without gradients; Captum back-propagates through every point.",
              "", f"Occlusion scores differ by definition: pointlens deletes the point (exact leave-one-out, max-pool "
              f"fast path, {tuple(s_p.shape)} scores), Captum's `FeatureAblation` moves it to the baseline 0 "
              "(the origin), which is still a point the max-pool sees."]
    return lines


def run(quick: bool = False, speed_only: bool = False) -> str:
    """Agreement and speed tables; returns the Markdown section.

    ``speed_only`` (``--speed-only`` on the command line): only the two speed tables (a few minutes instead of
    the agreement run's half hour).
    """
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    os.environ["POINTLENS_PROGRESS"] = "0"
    import quantus

    torch.manual_seed(0)
    model, model_note = _model(quick)
    pts, mask, y, spec = _data(quick)
    with torch.no_grad():
        acc = float((model(pts).argmax(1) == y).float().mean())
    repeats = 2 if quick else 3
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    if speed_only:
        speed_q = speed_quantus(model, pts, mask, y, repeats=3 if not quick else 1, quick=quick)
        speed_c = speed_captum(model, pts, y, repeats=2 if quick else 5)
        load2 = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        return "\n".join([f"Speed only ({len(pts)} clouds of {pts.shape[1]} points, PointNet {model_note}). Load "
                          f"before: `{load}`; after: `{load2}`.", ""] + speed_q + [""] + speed_c)
    t0 = time.perf_counter()
    agree_lines, _ = agreement(model, pts, mask, y, repeats=repeats, quick=quick)
    t_agree = time.perf_counter() - t0
    from peers_numerics import run as numerics

    num_lines = numerics(quick)
    load2 = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    speed_q = speed_quantus(model, pts, mask, y, repeats=3 if not quick else 1, quick=quick)
    speed_c = speed_captum(model, pts, y, repeats=2 if quick else 5)
    load3 = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    head = [
        "## Side by side with Quantus and Captum",
        "",
        f"{len(pts)} `{spec}` test clouds of {pts.shape[1]} points, PointNet {model_note} (accuracy "
        f"{acc:.3f} on these clouds), true class as target, Quantus {quantus.__version__}, one torch thread. "
        "Quantus sees the clouds channel-first `(B, 3, N)` through a transposing wrapper "
        "(`benchmarks/peers_adapters.py`). What each difference means: docs/metrics_explanations.md, section "
        "\"pointlens vs Quantus\"." + (" **--quick sizes (not the headline numbers).**" if quick else ""),
        "",
        f"Load (`uptime`) before the agreement run: `{load}`; before the speed runs: `{load2}`; after: `{load3}`. "
        f"Agreement run: {t_agree:.0f} s.",
        "",
    ]
    return "\n".join(head + agree_lines + [""] + speed_q + [""] + speed_c + [""] + num_lines)


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv[1:], speed_only="--speed-only" in sys.argv[1:]))
