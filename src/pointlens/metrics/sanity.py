"""Sanity checks: does an explanation depend on what the model learned? (Quantus' "Randomisation" category)

* :func:`model_randomisation` — Adebayo, Gilmer, Muelly, Goodfellow, Hardt, Kim, "Sanity Checks for Saliency
  Maps", NeurIPS 2018: re-initialise the model's layers and compare each new explanation with the original.
  ``"cascading"`` re-initialises from the top (logits) down, one more layer group at each step;
  ``"independent"`` re-initialises one layer group at a time (the others keep their trained weights).
  A faithful method's explanations must change: LOW similarity after randomisation is good.
* :func:`random_logit_test` — Sixt, Granz, Landgraf, "When Explanations Lie: Why Many Modified BP
  Attributions Fail", ICML 2020: compare the explanation of the predicted class with that of a random other
  class. A class-sensitive method gives different explanations: LOW similarity is good.

Similarity (:func:`explanation_similarity`): Spearman rank correlation of the scores, Spearman rank
correlation of the absolute scores (Adebayo et al. report both) and the top-k intersection
``|top_k(a) ∩ top_k(b)| / k``.

An explanation is produced by an ``explain`` callable
``explain(model, points (B, N, 3), target (B,)) -> (B, N)``, so any method (pointlens.attribution or the
user's own) can be checked. The caller's model is NEVER modified: randomisation works on a deep copy.

Layer order (:func:`randomisation_layers`): every module that owns parameters directly, in REVERSE
registration order of ``model.named_modules()`` (for pointlens models and most modules registration order is
forward order, so the first group is the logits layer). A normalisation layer (BatchNorm, LayerNorm,
GroupNorm, InstanceNorm) is grouped with the parameterised layer registered just before it (the conv/linear
it normalises), so "one layer" means conv + its norm. Pass ``layers=`` to choose another order or grouping.
Re-initialisation calls the module's own ``reset_parameters()`` (PyTorch's default initialisation, as
Quantus does; for norm layers it also resets the running statistics); modules without it get their
parameters drawn from ``N(0, σ²)`` with σ the parameter's own standard deviation (1e-2 when that is 0).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from pointlens.errors import bad_argument
from pointlens.metrics.faithfulness import model_outputs
from pointlens.models.hooks import get_layer
from pointlens.stats import spearman, topk_mask
from pointlens.utils.progress import progress
from pointlens.utils.seed import generator
from pointlens.utils.validate import as_points, as_scores, as_target, check_choice, check_int

__all__ = [
    "ExplainFn",
    "LayerGroup",
    "RandomisationStep",
    "RandomisationResult",
    "RandomLogitResult",
    "explanation_similarity",
    "randomisation_layers",
    "randomise_layers_",
    "model_randomisation",
    "random_logit_test",
    "run_explain",
    "resolve_target",
]

ExplainFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
"""``explain(model, points (B, N, 3), target (B,) long) -> scores (B, N)``."""

_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)


# --------------------------------------------------------------------------------------------- similarity
def explanation_similarity(a, b, k: int | None = None) -> dict[str, torch.Tensor]:
    """Similarity of two explanations of the same clouds.

    Args:
        a: ``(B, N)`` scores.
        b: ``(B, N)`` scores.
        k: top-k size; default ``max(1, round(0.1 N))``.

    Returns:
        dict of ``(B,)`` float64: ``spearman`` = ρ(a, b), ``spearman_abs`` = ρ(|a|, |b|) (both in ``[-1, 1]``,
        NaN when a row is constant), ``topk_intersection`` = ``|top_k(a) ∩ top_k(b)| / k`` in ``[0, 1]``.
        1 = identical rankings.

    Example:
        >>> sim = explanation_similarity(torch.tensor([[1.0, 2, 3, 4]]), torch.tensor([[4.0, 3, 2, 1]]), k=2)
        >>> sim["spearman"], sim["topk_intersection"]      # reversed ranking: -1 and 0
    """
    a = as_scores(a, "a")
    b = as_scores(b, "b", like=a)
    n = a.shape[1]
    k = max(1, round(0.1 * n)) if k is None else check_int("k", k, minimum=1, maximum=n)
    inter = (topk_mask(a, k) & topk_mask(b, k)).sum(1).to(torch.float64) / k
    return {"spearman": spearman(a, b), "spearman_abs": spearman(a.abs(), b.abs()),
            "topk_intersection": inter}


# --------------------------------------------------------------------------------------------- layers
@dataclass(frozen=True)
class LayerGroup:
    """One randomisation step's unit: ``name`` (shown in tables) and the module names it re-initialises."""

    name: str
    modules: tuple[str, ...]


def _owns_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters(recurse=False))


def randomisation_layers(model: nn.Module) -> list[LayerGroup]:
    """The default randomisation order of ``model``: top (logits) first.

    Every module owning parameters directly, in reverse ``named_modules()`` registration order; a
    normalisation layer joins the group of the parameterised module registered just before it. A root module
    with its own parameters is called ``"<root>"``.

    Args:
        model: any ``nn.Module``.

    Returns:
        list of :class:`LayerGroup`, first = the last registered layer (usually the logits layer).

    Raises:
        InvalidArgumentError: the model has no parameters.
    """
    groups: list[list[str]] = []
    for name, module in model.named_modules():
        if not _owns_params(module):
            continue
        if isinstance(module, _NORMS) and groups:
            groups[-1].append(name)
        else:
            groups.append([name])
    if not groups:
        raise bad_argument("model", type(model).__name__, "a model with parameters to randomise")
    return [LayerGroup(g[0] or "<root>", tuple(g)) for g in reversed(groups)]


def resolve_layers(model: nn.Module, layers) -> list[LayerGroup]:
    """The layer groups to randomise, top (logits) first: ``randomisation_layers(model)`` when ``layers`` is None,
    else the named layers/groups checked against the model (shared by the explanation and the AM sanity checks)."""
    if layers is None:
        return randomisation_layers(model)
    if isinstance(layers, (str, LayerGroup)) or not isinstance(layers, Sequence) or len(layers) == 0:
        raise bad_argument("layers", layers, "a non-empty list of module names (or of lists of names)")
    out = []
    for item in layers:
        if isinstance(item, LayerGroup):
            out.append(item)
            continue
        names = [item] if isinstance(item, str) else list(item)
        members: list[str] = []
        for nm in names:
            if not isinstance(nm, str):
                raise bad_argument("layers", item, "module names (str) or lists of module names")
            key = "" if nm == "<root>" else nm
            sub = get_layer(model, key)
            for child, m in sub.named_modules(prefix=key):
                if _owns_params(m) and child not in members:
                    members.append(child)
        if not members:
            raise bad_argument("layers", item, "modules that own parameters")
        out.append(LayerGroup(names[0] if len(names) == 1 else "+".join(names), tuple(members)))
    return out


def randomise_layers_(model: nn.Module, modules: Sequence[str], *, seed: int = 0) -> nn.Module:
    """Re-initialise the named modules of ``model`` IN PLACE (use on a copy).

    Each module calls its ``reset_parameters()``; one without it gets ``N(0, σ²)`` parameters (σ = the
    parameter's standard deviation, 1e-2 when 0). Global RNG state is left as it was; ``seed`` fixes the draw.

    Args:
        model: the module to modify.
        modules: dotted module names (``""`` or ``"<root>"`` = the model itself).
        seed: seed of the re-initialisation.

    Returns:
        ``model`` (modified).
    """
    devices = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        g = generator(int(seed) + 1)
        with torch.no_grad():
            for name in modules:
                m = get_layer(model, "" if name == "<root>" else name)
                reset = getattr(m, "reset_parameters", None)
                if callable(reset):
                    reset()
                    continue
                for p in m.parameters(recurse=False):
                    sd = float(p.detach().float().std()) if p.numel() > 1 else 0.0
                    sd = sd if sd > 0 and sd == sd else 1e-2
                    p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float32).mul_(sd).to(p))
    return model


def _changed_modules(model: nn.Module, reference: dict[str, torch.Tensor],
                     modules: Sequence[str]) -> tuple[str, ...]:
    """Those of ``modules`` with a parameter different from ``reference`` (a state dict)."""
    out = []
    for name in modules:
        m = get_layer(model, "" if name == "<root>" else name)
        prefix = f"{name}." if name not in ("", "<root>") else ""
        if any(not torch.equal(p.detach(), reference[prefix + pname])
               for pname, p in m.named_parameters(recurse=False)):
            out.append(name)
    return tuple(out)


# --------------------------------------------------------------------------------------------- results
@dataclass
class RandomisationStep:
    """One step of :func:`model_randomisation`.

    Attributes:
        layer: name of the layer group randomised at this step.
        modules: every module re-initialised in the model explained at this step (cumulative when
            cascading).
        scores: ``(B, N)`` explanation of the randomised model.
        spearman: ``(B,)`` ρ(original, scores).
        spearman_abs: ``(B,)`` ρ(|original|, |scores|).
        topk_intersection: ``(B,)`` ``|top_k(original) ∩ top_k(scores)| / k``.
        changed: the modules of this step's group whose parameters really differ from the trained ones
            (a norm layer still at its default weight 1 / bias 0 is re-initialised to the same values).
    """

    layer: str
    modules: tuple[str, ...]
    scores: torch.Tensor
    spearman: torch.Tensor
    spearman_abs: torch.Tensor
    topk_intersection: torch.Tensor
    changed: tuple[str, ...]


@dataclass
class RandomisationResult:
    """Result of :func:`model_randomisation`.

    Attributes:
        mode: ``"cascading"`` or ``"independent"``.
        target: ``(B,)`` explained class (the original model's prediction unless given), fixed for all steps.
        original: ``(B, N)`` explanation of the unchanged model.
        k: top-k size of the intersection.
        steps: one :class:`RandomisationStep` per layer group, in randomisation order.
    """

    mode: str
    target: torch.Tensor
    original: torch.Tensor
    k: int
    steps: list[RandomisationStep] = field(default_factory=list)

    def table(self) -> list[dict]:
        """Per-step table: ``step``, ``layer``, ``modules``, batch means (NaN ignored) of ``spearman``,
        ``spearman_abs``, ``topk_intersection``, and ``changed`` (modules whose parameters changed).
        JSON-friendly (python floats and lists)."""
        rows = []
        for i, st in enumerate(self.steps, 1):
            rows.append({"step": i, "layer": st.layer, "modules": list(st.modules),
                         "spearman": float(torch.nanmean(st.spearman)),
                         "spearman_abs": float(torch.nanmean(st.spearman_abs)),
                         "topk_intersection": float(torch.nanmean(st.topk_intersection)),
                         "changed": list(st.changed)})
        return rows


@dataclass
class RandomLogitResult:
    """Result of :func:`random_logit_test`.

    Attributes:
        target: ``(B,)`` explained class (predicted unless given).
        other: ``(B,)`` random class different from ``target``.
        scores_target: ``(B, N)`` explanation of ``target``.
        scores_other: ``(B, N)`` explanation of ``other``.
        spearman, spearman_abs, topk_intersection: ``(B,)`` similarity of the two (LOWER is better).
    """

    target: torch.Tensor
    other: torch.Tensor
    scores_target: torch.Tensor
    scores_other: torch.Tensor
    spearman: torch.Tensor
    spearman_abs: torch.Tensor
    topk_intersection: torch.Tensor

    def summary(self) -> dict:
        """Batch means (NaN ignored) of the three similarities, as python floats."""
        keys = ("spearman", "spearman_abs", "topk_intersection")
        return {k: float(torch.nanmean(getattr(self, k))) for k in keys}


# --------------------------------------------------------------------------------------------- checks
def run_explain(explain: ExplainFn, model: nn.Module, pts: torch.Tensor,
                target: torch.Tensor) -> torch.Tensor:
    """Call ``explain(model, pts, target)`` and check it returned finite scores of shape ``(B, N)``.

    Args:
        explain: the explanation callable.
        model: the model to explain.
        pts: ``(B, N, 3)``.
        target: ``(B,)`` long.

    Returns:
        ``(B, N)`` float64 detached scores.

    Raises:
        InvalidArgumentError: the callable returned something else.
    """
    out = explain(model, pts, target)
    if not isinstance(out, torch.Tensor):
        raise bad_argument("explain", f"a callable returning {type(out).__name__}", "scores of shape (B, N)")
    if tuple(out.shape) != tuple(pts.shape[:2]):
        raise bad_argument("explain", f"a callable returning shape {tuple(out.shape)}",
                           f"scores of shape {tuple(pts.shape[:2])}")
    return as_scores(out.detach(), "explain(...) scores")


def resolve_target(model: nn.Module, pts: torch.Tensor, target) -> tuple[torch.Tensor, int]:
    """The explained class of every cloud and the number of classes.

    ``target`` None: the model's prediction (one forward pass of every cloud). Given: checked against the class
    count, which the logits of ONE cloud tell (the metrics that only need the count do not classify the batch).

    Args:
        model: maps ``(B, N, 3)`` to logits ``(B, C)``.
        pts: ``(B, N, 3)`` checked points.
        target: None, an int or ``B`` ints.

    Returns:
        ``(target (B,) long on pts' device, C)``.
    """
    logits = model_outputs(model, pts if target is None else pts[:1])
    c = logits.shape[1]
    t = as_target(target, pts.shape[0], c)
    return (logits.argmax(1) if t is None else t.to(pts.device)), c


def _given_scores(scores, pts: torch.Tensor, name: str = "scores") -> torch.Tensor:
    """Precomputed ``(B, N)`` scores checked against the clouds ``(B, N, 3)``, float64."""
    s = as_scores(scores, name)
    if tuple(s.shape) != tuple(pts.shape[:2]):
        raise bad_argument(name, f"shape {tuple(s.shape)}", f"shape {tuple(pts.shape[:2])} (one per point)")
    return s.to(pts.device)


def model_randomisation(model: nn.Module, points, explain: ExplainFn, target=None, *, mode: str = "cascading",
                        layers=None, k: int | None = None, seed: int = 0, scores=None) -> RandomisationResult:
    """Model-parameter randomisation test (Adebayo et al., NeurIPS 2018; Quantus ``MPRT``).

    For step ``i`` the model ``f_i`` is the trained model with layer groups ``1..i`` (``"cascading"``, top
    down) or only group ``i`` (``"independent"``) re-initialised, and the metrics compare
    ``explain(f_i, x, t)`` with ``explain(f, x, t)`` for the same target ``t``: Spearman ρ of scores, ρ of
    absolute scores, top-k intersection. Range ``[-1, 1]`` (ρ) and ``[0, 1]`` (top-k); a method that passes
    the check shows LOW values once the top layers are random; values near 1 mean the explanation ignores the
    weights.

    The caller's model is left untouched (weights, buffers, train/eval modes, ``requires_grad``): everything
    runs on ``copy.deepcopy(model)``. Step ``i`` re-initialises with seed ``seed + i``.

    Args:
        model: maps ``(B, N, 3)`` to logits ``(B, C)``, used in its current mode.
        points: ``(B, N, 3)`` clouds.
        explain: ``explain(model, points, target) -> (B, N)`` scores.
        target: class per cloud; default the original model's prediction.
        mode: ``"cascading"`` or ``"independent"``.
        layers: layer groups in randomisation order: None (see :func:`randomisation_layers`) or a list whose
            items are module names or lists of module names (all parameterised modules under each name).
        k: top-k size; default ``max(1, round(0.1 N))``.
        seed: re-initialisation seed.
        scores: the explanation of the unchanged model ``explain(model, points, target)`` when already computed
            ``(B, N)`` (as Quantus' ``a_batch``): it is used instead of explaining once more.

    Returns:
        :class:`RandomisationResult` (``.table()`` gives the per-step table).

    Example:
        >>> res = model_randomisation(model, points, lambda m, x, t: my_saliency(m, x, t))
        >>> [(row["layer"], round(row["spearman"], 2)) for row in res.table()]
    """
    check_choice("mode", mode, ("cascading", "independent"))
    if not callable(explain):
        raise bad_argument("explain", type(explain).__name__, "a callable explain(model, points, target)")
    pts = as_points(points)
    n = pts.shape[1]
    k = max(1, round(0.1 * n)) if k is None else check_int("k", k, minimum=1, maximum=n)
    given = None if scores is None else _given_scores(scores, pts)
    work = copy.deepcopy(model)
    groups = resolve_layers(work, layers)
    t, _ = resolve_target(work, pts, target)
    original_state = {name: v.detach().clone() for name, v in work.state_dict(keep_vars=True).items()}
    dev = next(iter(original_state.values())).device if original_state else pts.device
    pts_dev = pts.to(dev)
    if given is None:
        original = run_explain(explain, work, pts_dev, t.to(dev))
        work.load_state_dict(original_state)       # undo anything explain may have touched (e.g. BN stats)
    else:
        original = given.to(dev)
    result = RandomisationResult(mode, t, original, k)
    done: list[str] = []
    for i, grp in enumerate(progress(groups, desc=f"{mode} randomisation")):
        if mode == "independent":
            work.load_state_dict(original_state)
            done = []
        randomise_layers_(work, grp.modules, seed=seed + i + 1)
        done += [m for m in grp.modules if m not in done]
        changed = _changed_modules(work, original_state, grp.modules)
        state = {name: v.detach().clone() for name, v in work.state_dict().items()}
        scores = run_explain(explain, work, pts_dev, t.to(dev))
        work.load_state_dict(state)
        sim = explanation_similarity(original, scores, k)
        result.steps.append(RandomisationStep(grp.name, tuple(done), scores, sim["spearman"],
                                              sim["spearman_abs"], sim["topk_intersection"], changed))
    return result


def random_logit_test(model: nn.Module, points, explain: ExplainFn, target=None, *, k: int | None = None,
                      seed: int = 0, scores=None) -> RandomLogitResult:
    """Random logit test (Sixt, Granz, Landgraf, ICML 2020; Quantus ``RandomLogit``).

    Compares ``explain(f, x, t)`` with ``explain(f, x, t')`` for a class ``t'`` drawn uniformly among the
    OTHER classes (seeded). Similarities as :func:`explanation_similarity`; LOWER is better (the explanation
    depends on the class asked about); ρ ≈ 1 means the method ignores the class.

    Args:
        model: maps ``(B, N, 3)`` to logits ``(B, C)`` with ``C >= 2``; not modified.
        points: ``(B, N, 3)`` clouds.
        explain: ``explain(model, points, target) -> (B, N)`` scores.
        target: class per cloud; default the model's prediction.
        k: top-k size; default ``max(1, round(0.1 N))``.
        seed: seed of the random class draw.
        scores: the explanation of ``target`` ``explain(model, points, target)`` when already computed ``(B, N)``
            (as Quantus' ``a_batch``): used instead of explaining ``target`` once more, so only the other class
            is explained (the same result).

    Returns:
        :class:`RandomLogitResult` with ``(B,)`` similarities.
    """
    if not callable(explain):
        raise bad_argument("explain", type(explain).__name__, "a callable explain(model, points, target)")
    pts = as_points(points)
    n = pts.shape[1]
    k = max(1, round(0.1 * n)) if k is None else check_int("k", k, minimum=1, maximum=n)
    given = None if scores is None else _given_scores(scores, pts)
    logits = model_outputs(model, pts if target is None else pts[:1])   # one cloud tells the class count
    c = logits.shape[1]
    if c < 2:
        raise bad_argument("model", f"{c} output class", "a classifier with at least 2 classes")
    t = as_target(target, pts.shape[0], c)
    t = logits.argmax(1) if t is None else t.to(pts.device)
    draw = torch.randint(0, c - 1, (pts.shape[0],), generator=generator(seed)).to(pts.device)
    other = draw + (draw >= t).long()                 # uniform over the classes != t
    s_t = run_explain(explain, model, pts, t) if given is None else given
    s_o = run_explain(explain, model, pts, other)
    sim = explanation_similarity(s_t, s_o, k)
    return RandomLogitResult(t, other, s_t, s_o, sim["spearman"], sim["spearman_abs"],
                             sim["topk_intersection"])
