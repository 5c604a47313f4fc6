"""The sanity check for activation maximisation (Adebayo et al. 2018's cascading randomisation, applied to AM as
in FlowAM, Tan 2024).

The classifier's layers are re-initialised from the logits down, one more layer group per step, on a COPY (the
caller's model is never touched; the layer order and the re-initialisation are
:func:`pointlens.metrics.sanity.randomisation_layers` / :func:`~pointlens.metrics.sanity.randomise_layers_`).
At every step the AM method regenerates with the same seeds, and the report says how far each sample moved from
the trained model's sample (plain Chamfer, per sample) and whether the randomised model still assigns the
target (success). A faithful method's outputs must move: they explain the classifier, so a random classifier
must give other clouds.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from pointlens.errors import bad_argument
from pointlens.maximize.core import AMResult
from pointlens.metrics.sanity import randomise_layers_, resolve_layers
from pointlens.metrics.shape import chamfer_distance
from pointlens.models.hooks import preserve_model_state
from pointlens.stats import bootstrap_mean_ci
from pointlens.utils.progress import progress

__all__ = ["AMSanityStep", "AMSanityResult", "am_randomisation", "own_success", "paired_ratio"]

GenerateFn = Callable[[nn.Module], AMResult]
"""``generate(model) -> AMResult``: run one AM method on ``model`` with fixed seeds and options."""


def own_success(model: nn.Module, clouds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``(S,)`` bool: does ``model`` (eval mode) assign each cloud ``(S, N, 3)`` to its ``target (S,)``?"""
    from pointlens.models.hooks import model_device

    with preserve_model_state(model), torch.no_grad():
        model.eval()
        pred = model(clouds.to(model_device(model))).argmax(1).cpu()
    return pred == target.cpu()


@dataclass
class AMSanityStep:
    """One cascading step.

    Attributes:
        layer: the layer group randomised at this step (all groups before it are random too).
        modules: every module re-initialised so far.
        clouds: ``(S, N, 3)`` the samples of the randomised model.
        moved: ``(S,)`` plain Chamfer between each sample and the trained model's sample of the same seed.
        success: ``(S,)`` bool, the randomised model assigns the target to its own sample.
    """

    layer: str
    modules: tuple[str, ...]
    clouds: torch.Tensor
    moved: torch.Tensor
    success: torch.Tensor


@dataclass
class AMSanityResult:
    """Result of :func:`am_randomisation`: the trained model's samples and one :class:`AMSanityStep` per step."""

    original: AMResult
    success: torch.Tensor
    steps: list[AMSanityStep] = field(default_factory=list)

    def curve(self) -> dict:
        """``{"<layer randomised (cumulative)>": mean moved Chamfer}`` in step order (JSON-friendly)."""
        return {st.layer: float(st.moved.mean()) for st in self.steps}

    def table(self, level: float = 0.95, seed: int = 0) -> list[dict]:
        """Per step: ``layer``, ``moved`` (mean), ``moved_low``/``moved_high`` (bootstrap interval over samples),
        ``success`` (share)."""
        rows = []
        for i, st in enumerate(self.steps, 1):
            m, lo, hi, _ = bootstrap_mean_ci(st.moved.numpy(), level=level, seed=seed)
            rows.append({"step": i, "layer": st.layer, "moved": m, "moved_low": lo, "moved_high": hi,
                         "success": float(st.success.float().mean())})
        return rows


def am_randomisation(model: nn.Module, generate: GenerateFn, *, layers=None, seed: int = 0,
                     max_steps: int | None = None, at=None) -> AMSanityResult:
    """Cascading model randomisation of an AM method.

    Args:
        model: the trained classifier; never modified (work happens on ``copy.deepcopy(model)``).
        generate: ``generate(model) -> AMResult``; must use fixed seeds so that a changed output is caused by
            the weights (e.g. ``lambda m: maximize(m, t, "flow", seed=0, flow_stats=collect_flow(m, ...))``:
            FlowAM re-collects its activation flow from the randomised model, because the flow is a property
            of the classifier being explained).
        layers: layer groups top first (default :func:`pointlens.metrics.sanity.randomisation_layers`).
        seed: step ``i`` re-initialises with seed ``seed + i`` (as :func:`~pointlens.metrics.sanity.
            model_randomisation`).
        max_steps: stop after this many groups (default all: full randomisation at the last step).
        at: 1-based step numbers at which to regenerate (default every step); the groups in between are still
            randomised (cascading), only not regenerated, which saves time on deep models. The last step is
            always included.

    Returns:
        :class:`AMSanityResult`; ``.curve()`` gives the moved-Chamfer curve.
    """
    if not callable(generate):
        raise bad_argument("generate", type(generate).__name__, "a callable generate(model) -> AMResult")
    work = copy.deepcopy(model)
    groups = resolve_layers(work, layers)
    if max_steps is not None:
        groups = groups[:max(1, int(max_steps))]
    original = generate(work)
    if not isinstance(original, AMResult):
        raise bad_argument("generate", f"a callable returning {type(original).__name__}", "an AMResult")
    result = AMSanityResult(original, own_success(work, original.clouds, original.target))
    wanted = set(range(1, len(groups) + 1)) if at is None else {int(a) for a in at} | {len(groups)}
    done: list[str] = []
    for i, grp in enumerate(progress(groups, desc="AM cascading randomisation")):
        randomise_layers_(work, grp.modules, seed=seed + i + 1)
        done += [m for m in grp.modules if m not in done]
        if i + 1 not in wanted:
            continue
        state = {k: v.detach().clone() for k, v in work.state_dict().items()}
        res = generate(work)
        work.load_state_dict(state)  # nothing generate does may leak into the next step
        moved = chamfer_distance(res.clouds, original.clouds).float().cpu()
        result.steps.append(AMSanityStep(grp.name, tuple(done), res.clouds, moved,
                                         own_success(work, res.clouds, res.target)))
    return result


def paired_ratio(a, b, *, level: float = 0.95, seed: int = 0) -> dict:
    """Mean of the per-sample ratios ``a_j / b_j`` (samples paired by class and seed) with its percentile
    bootstrap interval over samples (:func:`pointlens.stats.bootstrap_mean_ci`).

    Returns:
        ``{"ratio", "low", "high", "n"}``; pairs with ``b_j = 0`` are left out.
    """
    import numpy as np

    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise bad_argument("b", f"{b.size} values", f"{a.size} (one per sample of a)")
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(b > 0, a / b, np.nan)
    m, lo, hi, n = bootstrap_mean_ci(r, level=level, seed=seed)
    return {"ratio": m, "low": lo, "high": hi, "n": n}
