"""Salient-point dropping: accuracy while the most (or least) important points are deleted step by step.

The experiment of Zheng et al., "PointCloud Saliency Maps" (ICCV 2019; docs/methods.md §1): for each
budget ``b`` delete ``b`` points from every cloud in steps of ``per_step`` points, RE-SCORING the shrinking
cloud before each step with an attribution whose target is the TRUE label, and measure the classifier's
accuracy on what is left. "high" mode deletes the highest-scored points first (accuracy should collapse if
the scores are faithful), "low" mode the lowest-scored first (accuracy should hold or even rise).

Removal here means DELETION: the cloud really shrinks (``N - b`` points at budget ``b``), through
:func:`pointlens.ops.removal.delete_points`, the one way pointlens removes points.

Schedule: one continuous run per cloud visits every budget in ascending order; steps remove ``per_step``
points except the step that lands on a budget, which removes only what is left to reach it (so budgets need
not be multiples of ``per_step``). When every budget is a multiple of ``per_step`` the cloud at budget ``b``
is exactly the cloud a run to ``b`` alone would give. See :func:`drop_schedule`.

Ties between equal scores are broken by the current position in the cloud (stable sort): the earlier point
goes first in both modes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from pointlens.attribution.random import RandomAttribution
from pointlens.errors import PointlensError, bad_argument
from pointlens.models.hooks import min_points, model_device, preserve_model_state
from pointlens.ops.removal import delete_points
from pointlens.utils.progress import progress
from pointlens.utils.validate import as_points, as_target, check_choice, check_int

MODES = ("high", "low")
DEFAULT_BUDGETS = (0, 25, 50, 100, 150, 200)
_SCORER_KINDS = ("'random', an Attribution, a callable (points, target) -> scores, ScoreOnce(scorer) "
                 "or an (M, N) array of fixed scores")

__all__ = [
    "DEFAULT_BUDGETS",
    "MODES",
    "DropResult",
    "ScoreOnce",
    "check_budgets",
    "drop_curve",
    "drop_schedule",
    "run_drop_experiment",
]


@dataclass(frozen=True)
class ScoreOnce:
    """Wrap a scorer so that it is evaluated ONCE on the clean clouds instead of before every step.

    The scores of the clean cloud then decide the whole deletion order (each step deletes the next
    ``per_step`` remaining points in that order). Use it for baselines that are not meant to be re-run, e.g.
    critical-point counts computed on the full cloud.

    Args:
        scorer: an ``Attribution`` instance or a callable
            ``(points (B, N, 3), target (B,)) -> scores (B, N)``.
    """

    scorer: object


@dataclass
class DropResult:
    """Outcome of :func:`drop_curve` for ``M`` clouds of ``N`` points.

    Attributes:
        budgets: the budgets (numbers of deleted points), ascending.
        mode: ``"high"`` (highest scores deleted first) or ``"low"``.
        per_step: points deleted per step (the step landing on a budget may be smaller).
        accuracy: ``{budget: accuracy}`` share of clouds still classified as their true label.
        correct: ``{budget: (M,) bool}`` per-cloud correctness.
        predictions: ``{budget: (M,) int64}`` predicted classes.
        removed: ``(M, max(budgets))`` int64 indices into the ORIGINAL clouds of the deleted points, in
            deletion order (step by step; within a step by rank).
        clouds: ``{budget: (M, N - budget, 3) float32}`` the perturbed clouds (ragged across budgets, equal
            within a budget), or None when not kept.
        kept: ``{budget: (M, N - budget) int64}`` original indices of the points in ``clouds[budget]``, or
            None.
        scorer_calls: how many times the scorer was called (one call scores one batch of clouds).
        num_points: ``N``.
    """

    budgets: tuple[int, ...]
    mode: str
    per_step: int
    accuracy: dict[int, float]
    correct: dict[int, np.ndarray]
    predictions: dict[int, np.ndarray]
    removed: np.ndarray
    clouds: dict[int, np.ndarray] | None = None
    kept: dict[int, np.ndarray] | None = None
    scorer_calls: int = 0
    num_points: int = 0
    meta: dict = field(default_factory=dict)


def check_budgets(budgets, num_points: int | None = None, name: str = "budgets",
                  min_left: int = 1) -> tuple[int, ...]:
    """Validate budgets: non-empty, integers, >= 0, strictly ascending and (if given) at most ``N - min_left``.

    Args:
        budgets: a sequence of integers.
        num_points: ``N``; every budget must leave at least ``min_left`` points.
        name: the argument's name in error messages.
        min_left: points that must remain (1, or the model's :func:`~pointlens.models.hooks.min_points`).

    Returns:
        the budgets as a tuple of ``int``.
    """
    if isinstance(budgets, (int, np.integer)) and not isinstance(budgets, bool):
        budgets = (int(budgets),)
    try:
        values = list(budgets)
    except TypeError:
        raise bad_argument(name, budgets, "a sequence of non-negative integers in ascending order") from None
    if not values:
        raise bad_argument(name, "an empty sequence", "at least one budget, e.g. 0,25,50,100,150,200")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise bad_argument(name, values, "integers (numbers of points to drop)")
        if v < 0:
            raise bad_argument(name, values, "non-negative integers")
        out.append(int(v))
    if any(b <= a for a, b in zip(out, out[1:])):
        raise bad_argument(name, out, "strictly ascending budgets, e.g. 0,25,50,100,150,200")
    if num_points is not None and num_points - out[-1] < 1:
        raise bad_argument(name, out, f"budgets below the number of points per cloud ({num_points}): "
                                      "at least one point must remain")
    if num_points is not None and num_points - out[-1] < min_left:
        raise bad_argument(name, out, f"at most {num_points - min_left}: the model needs {min_left} points per "
                                      f"cloud and the clouds have {num_points}")
    return tuple(out)


def drop_schedule(budgets: Sequence[int], per_step: int) -> list[int]:
    """Sizes of the deletion steps of one continuous run through ``budgets``.

    Steps delete ``per_step`` points, except the step that lands exactly on a budget, which deletes what is
    left.

    Args:
        budgets: ascending non-negative budgets.
        per_step: the regular step size (>= 1).

    Returns:
        list of step sizes; their cumulative sums include every budget > 0.

    Example:
        >>> drop_schedule((0, 5, 12), 4)
        [4, 1, 4, 3]
    """
    budgets = check_budgets(budgets)
    per_step = check_int("per_step", per_step, minimum=1)
    steps, done = [], 0
    for b in budgets:
        while done < b:
            k = min(per_step, b - done)
            steps.append(k)
            done += k
    return steps


def _classify_scorer(scorer, m: int, n: int, model: nn.Module, seed: int):
    """Return (kind, payload): kind in fixed | once | call."""
    if isinstance(scorer, str):
        if scorer != "random":
            raise bad_argument("scorer", scorer, _SCORER_KINDS)
        scorer = ScoreOnce(RandomAttribution(model, seed=seed))
    if isinstance(scorer, ScoreOnce):
        return "once", _as_call(scorer.scorer)
    if isinstance(scorer, (np.ndarray, torch.Tensor)):
        s = torch.as_tensor(scorer).detach()
        if s.dim() != 2 or tuple(s.shape) != (m, n):
            raise bad_argument("scorer", f"an array of shape {tuple(s.shape)}",
                               f"fixed scores of shape ({m}, {n}), one per point of every cloud")
        s = s.float()
        if not bool(torch.isfinite(s).all()):
            raise bad_argument("scorer", "fixed scores with NaN or infinite values", "finite scores")
        return "fixed", s
    return "call", _as_call(scorer)


def _as_call(scorer) -> Callable:
    attribute = getattr(scorer, "attribute", None)
    if callable(attribute):
        return lambda points, target: attribute(points, target=target)
    if callable(scorer):
        return scorer
    raise bad_argument("scorer", type(scorer).__name__, _SCORER_KINDS)


def _run_scorer(call: Callable, points: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    with torch.enable_grad():
        s = call(points, target)
    if isinstance(s, np.ndarray):
        s = torch.from_numpy(s)
    if not isinstance(s, torch.Tensor):
        raise bad_argument("scorer", f"a scorer returning {type(s).__name__}", "a (B, N) tensor of scores")
    s = s.detach()
    if tuple(s.shape) != tuple(points.shape[:2]):
        raise bad_argument("scorer", f"scores of shape {tuple(s.shape)} for points {tuple(points.shape)}",
                           f"scores of shape {tuple(points.shape[:2])}")
    s = s.float().to(points.device)
    if not bool(torch.isfinite(s).all()):
        raise bad_argument("scorer", "scores with NaN or infinite values",
                           "finite scores (check the attribution)")
    return s


def _delete(points: torch.Tensor, orig: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Delete ``idx`` (B, k) from the clouds with removal.delete_points and track the original indices."""
    new_points, kept = delete_points(points, idx, return_kept=True)
    return new_points, torch.gather(orig, 1, kept)


def drop_curve(model: nn.Module, points, labels, scorer, budgets: Sequence[int] = DEFAULT_BUDGETS,
               per_step: int = 10, mode: str = "high", batch_size: int = 64, keep_clouds: bool = True,
               rescore: bool = True, seed: int = 0, desc: str | None = None) -> DropResult:
    """Accuracy of ``model`` while points are deleted by score, re-scoring the shrinking cloud at every step.

    Args:
        model: any module mapping ``(B, N, 3)`` to logits ``(B, C)``; it is evaluated in eval mode under
            ``torch.no_grad()`` (only scoring runs with gradients) and its train/eval flags are restored.
        points: ``(M, N, 3)`` clouds (array or tensor).
        labels: ``(M,)`` TRUE class indices; they are also the scorer's target.
        scorer: how to score points (higher = more important), one of
            an ``Attribution`` instance (``.attribute(points, target=target)`` is called);
            a callable ``(points (B, n, 3), target (B,)) -> scores (B, n)``;
            ``ScoreOnce(scorer)`` to score only the clean clouds and keep that order;
            an ``(M, N)`` array of fixed scores of the original points;
            ``"random"``: the random baseline, ``ScoreOnce(create_attribution("random", model, seed=seed))`` —
            uniform scores drawn once per clean cloud from ``seed`` and the cloud's geometry (independent of
            ``batch_size`` and of the cloud's position in the set).
        budgets: ascending numbers of points to delete, each at most ``N - min_points(model)`` (0 = the clean
            accuracy; :func:`pointlens.models.hooks.min_points`, 1 unless the model needs more, e.g. DGCNN's k).
        per_step: points deleted per step (the step landing on a budget deletes what is left to reach it).
        mode: ``"high"`` deletes the highest scores first, ``"low"`` the lowest.
        batch_size: clouds scored and classified together.
        keep_clouds: keep the perturbed clouds of every budget in the result.
        rescore: False is the same as ``ScoreOnce(scorer)`` (score once on the clean clouds).
        seed: seed of the ``"random"`` scorer (:class:`pointlens.attribution.RandomAttribution`).
        desc: label of the progress bar.

    Returns:
        :class:`DropResult` (accuracy per budget, per-cloud correctness and predictions, deleted indices and,
        when kept, the clouds of shape ``(M, N - b, 3)`` per budget ``b``).

    Raises:
        InvalidArgumentError: bad points, labels, budgets (not ascending, negative, leaving fewer than
            ``min_points(model)`` points), per_step, mode,
            batch_size or scorer, scores of the wrong shape or not finite, logits not ``(B, C)``.
    """
    pts = as_points(points, "points")
    m, n = pts.shape[0], pts.shape[1]
    budgets = check_budgets(budgets, n, min_left=min_points(model))
    per_step = check_int("per_step", per_step, minimum=1)
    mode = check_choice("mode", mode, MODES)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    seed = check_int("seed", seed)
    lab = _as_labels(labels, m)
    kind, payload = _classify_scorer(scorer, m, n, model, seed)
    if kind == "call" and not rescore:
        kind = "once"
    steps = drop_schedule(budgets, per_step)
    budget_set = set(budgets)
    max_budget = budgets[-1]
    device = model_device(model, pts.device)

    correct = {b: np.zeros(m, dtype=bool) for b in budgets}
    preds = {b: np.zeros(m, dtype=np.int64) for b in budgets}
    clouds = {b: np.zeros((m, n - b, 3), dtype=np.float32) for b in budgets} if keep_clouds else None
    kept = {b: np.zeros((m, n - b), dtype=np.int64) for b in budgets} if keep_clouds else None
    removed = np.zeros((m, max_budget), dtype=np.int64)
    calls = 0
    n_batches = (m + batch_size - 1) // batch_size

    def record(b: int, s: int, cur: torch.Tensor, orig: torch.Tensor, target: torch.Tensor) -> None:
        with torch.no_grad():
            logits = model(cur)
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != cur.shape[0]:
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise bad_argument("model", f"output {shape} for input {tuple(cur.shape)}",
                               "logits of shape (B, C)")
        if int(target.max()) >= logits.shape[1]:
            raise bad_argument("labels", int(target.max()),
                               f"class indices below the model's {logits.shape[1]} classes")
        p = logits.argmax(dim=1)
        e = s + cur.shape[0]
        preds[b][s:e] = p.cpu().numpy()
        correct[b][s:e] = (p == target).cpu().numpy()
        if keep_clouds:
            clouds[b][s:e] = cur.detach().cpu().numpy()
            kept[b][s:e] = orig.cpu().numpy()

    with preserve_model_state(model):
        model.eval()
        bar = progress(total=n_batches * max(1, len(steps)), desc=desc or f"drop ({mode})")
        try:
            for s in range(0, m, batch_size):
                cur = pts[s:s + batch_size].to(device)
                target = lab[s:s + batch_size].to(device)
                bsz = cur.shape[0]
                orig = torch.arange(n, device=device).unsqueeze(0).expand(bsz, n).contiguous()
                fixed = None
                if kind == "fixed":
                    fixed = payload[s:s + bsz].to(device)
                elif kind == "once":
                    fixed = _run_scorer(payload, cur, target)
                    calls += 1
                if 0 in budget_set:
                    record(0, s, cur, orig, target)
                done = 0
                for k in steps:
                    if fixed is not None:
                        scores = torch.gather(fixed, 1, orig)
                    else:
                        scores = _run_scorer(payload, cur, target)
                        calls += 1
                    order = torch.sort(scores, dim=1, descending=(mode == "high"), stable=True).indices[:, :k]
                    removed[s:s + bsz, done:done + k] = torch.gather(orig, 1, order).cpu().numpy()
                    cur, orig = _delete(cur, orig, order)
                    if tuple(cur.shape[:2]) != (bsz, n - done - k):
                        raise PointlensError(f"delete_points returned shape {tuple(cur.shape)}; expected "
                                             f"({bsz}, {n - done - k}, 3)")
                    done += k
                    if done in budget_set:
                        record(done, s, cur, orig, target)
                    bar.update(1)
                if not steps:
                    bar.update(1)
        finally:
            bar.close()

    accuracy = {b: float(correct[b].mean()) if m else float("nan") for b in budgets}
    return DropResult(budgets=budgets, mode=mode, per_step=per_step, accuracy=accuracy, correct=correct,
                      predictions=preds, removed=removed, clouds=clouds, kept=kept, scorer_calls=calls,
                      num_points=n, meta={"scorer": kind, "seed": seed, "steps": steps})


def _as_labels(labels, m: int) -> torch.Tensor:
    if labels is None:
        raise bad_argument("labels", None, f"{m} true class indices (the drop target is the true label)")
    t = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
    if t.dim() != 1:
        raise bad_argument("labels", f"shape {tuple(t.shape)}", f"shape ({m},): one class index per cloud "
                                                                "(multi-label targets are not supported)")
    t = as_target(t, m, name="labels")
    if m and int(t.min()) < 0:
        raise bad_argument("labels", int(t.min()), "non-negative class indices")
    return t


def run_drop_experiment(model: nn.Module, points, labels, methods: Mapping[str, object],
                        modes: Sequence[str] = MODES, budgets: Sequence[int] = DEFAULT_BUDGETS,
                        per_step: int = 10, batch_size: int = 64, keep_clouds: bool = False, seed: int = 0,
                        return_results: bool = False):
    """Run :func:`drop_curve` for every method and mode.

    Args:
        model: classifier mapping ``(B, N, 3)`` to ``(B, C)`` logits.
        points: ``(M, N, 3)`` clouds.
        labels: ``(M,)`` true classes.
        methods: ``{name: scorer}`` (any scorer :func:`drop_curve` accepts, e.g. an Attribution, ``"random"``,
            ``ScoreOnce(...)``).
        modes: subset of ``("high", "low")``.
        budgets: ascending budgets below ``N``.
        per_step: points deleted per step.
        batch_size: clouds per batch.
        keep_clouds: keep the perturbed clouds in the :class:`DropResult` objects (see ``return_results``).
        seed: seed of random scorers.
        return_results: also return ``{"<method>-<mode>": DropResult}``.

    Returns:
        ``{"<method>-<mode>": {budget: accuracy}}``, or ``(curves, results)`` when ``return_results``.
    """
    if not isinstance(methods, Mapping) or not methods:
        raise bad_argument("methods", methods, "a non-empty dict {name: scorer}")
    if isinstance(modes, str):
        modes = (modes,)
    modes = [check_choice("modes", md, MODES) for md in modes]
    if not modes:
        raise bad_argument("modes", modes, "at least one of high, low")
    curves, results = {}, {}
    for name, scorer in methods.items():
        for md in modes:
            key = f"{name}-{md}"
            r = drop_curve(model, points, labels, scorer, budgets=budgets, per_step=per_step, mode=md,
                           batch_size=batch_size, keep_clouds=keep_clouds, seed=seed, desc=f"drop {key}")
            curves[key] = dict(r.accuracy)
            results[key] = r
    return (curves, results) if return_results else curves
