"""Activation maximisation for point-cloud classifiers: naive AM, generative AM and FlowAM (methods.md §2).

One entry point, :func:`maximize`, optimises ``samples`` clouds for one target class as ONE batch (the model is
in eval mode, so batch norm uses its running statistics and every sample's optimisation is independent of the
others'; with ``init="noise"`` sample ``i`` starts from the same cloud whatever ``samples`` is, so the first
sample of a batch of 8 equals the sample of a call with ``samples=1``, up to float rounding).

Objectives (minimised; ``t`` = target, ``f_t`` = its logit, ``x`` = the cloud ``(N, 3)``):

* ``"naive"`` (on the coordinates): ``-f_t(x) + l2 * mean ||x_i||^2 + continuity * C(x) + bounds * B(x)``.
* ``"flow"`` (FlowAM, on the coordinates): ``-f_t(x) + flow * A_t(x) + continuity * C(x) + bounds * B(x)``
  with the alignment ``A_t(x) = mean_l mean_d ((phi_l(x)_d - mu[t,l]_d) / (sd[t,l]_d + eps_l))^2`` of the
  layer descriptors ``phi_l`` (see :mod:`pointlens.maximize.flow`) to the class's activation flow;
  ``eps_l = std_floor * mean_d sd[t,l]_d``.
* ``"generative"`` (on the latent ``z`` of a point autoencoder, ``x = D(z)``):
  ``-f_t(D(z)) + prior * mean_d ((z_d - m_d) / s_d)^2`` with ``m``, ``s`` the class's latent mean / std.

``C(x)`` = mean over points of the squared mean distance to the ``knn`` nearest other points (continuity: no
outliers, no scattered points); ``B(x)`` = mean over points of the squared distance outside the data's
axis-aligned box ``[lo, hi]`` (0 inside). Adam on the variables; ``steps`` steps.

Every method also takes ``contrast``: adds ``contrast * CE_t(x)``, the cross-entropy
``logsumexp_j f_j(x) - f_t(x)``, which pushes down the classes that still beat the target (classes whose logits
rise together with the target's) and vanishes once the target wins clearly. Default 1 for naive AM (on raw
coordinates nothing else stops a co-rising class from winning: with the logit alone naive AM reached 64 % success
on a ShapeParts DGCNN, 100 % with it), 0 for FlowAM and generative AM (the papers' pure-logit objective; their
alignment term / decoder already keep the target). And ``keep``: ``"best"`` (default, Tan 2023's "keep the
highest-activation sample") returns per sample the iterate the classifier assigns to the target with the highest
target logit (the highest-logit iterate where none is assigned); ``"last"`` the final iterate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from pointlens.errors import DataError, bad_argument
from pointlens.maximize.flow import FlowStats, layer_descriptor
from pointlens.models.hooks import capture, model_device, preserve_model_state
from pointlens.ops import gather_points, knn_indices
from pointlens.utils.progress import progress
from pointlens.utils.seed import generator
from pointlens.utils.validate import as_points, check_choice, check_float, check_int

__all__ = ["AMResult", "DEFAULTS", "METHODS", "maximize", "class_medoid", "continuity", "outside_bounds"]

METHODS = ("naive", "generative", "flow")

DEFAULTS = {
    "naive": dict(steps=200, lr=0.01, init="noise", l2=0.0, continuity=0.0, bounds=10.0, knn=8, contrast=1.0,
                  keep="best"),
    "flow": dict(steps=200, lr=0.01, init="noise", flow=1.0, continuity=10.0, bounds=10.0, knn=8,
                 std_floor=0.1, contrast=0.0, keep="best"),
    "generative": dict(steps=200, lr=0.01, init="mean", prior=0.0, init_noise=0.5, contrast=0.0, keep="best"),
}
"""Default options per method (see docs/maximize.md for why)."""

_COMMON = {"steps", "lr", "points", "data", "data_labels", "bounds_box", "keep", "contrast"}
_ALLOWED = {
    "naive": _COMMON | {"init", "l2", "continuity", "bounds", "knn"},
    "flow": _COMMON | {"init", "flow", "flow_stats", "continuity", "bounds", "knn", "std_floor"},
    "generative": _COMMON | {"autoencoder", "prior", "init", "init_noise"},
}


@dataclass
class AMResult:
    """Outcome of :func:`maximize`.

    Attributes:
        clouds: ``(S, N, 3)`` the synthesised clouds.
        target: ``(S,)`` target class of each sample.
        method: ``"naive"``, ``"generative"`` or ``"flow"``.
        trace: ``{"objective", "logit", "prob"}`` each ``(T, S)`` float tensors, one row per step (before the
            step's update; the last row is the final clouds).
        options: every option in effect (defaults filled in).
        latent: ``(S, latent)`` final latent codes (generative AM only).
        step: ``(S,)`` the step each returned cloud comes from (``steps`` = the final iterate; earlier with
            ``keep="best"``).
    """

    clouds: torch.Tensor
    target: torch.Tensor
    method: str
    trace: dict
    options: dict = field(default_factory=dict)
    latent: torch.Tensor | None = None
    step: torch.Tensor | None = None


# --------------------------------------------------------------------------------------------- regularisers
def continuity(x: torch.Tensor, k: int = 8) -> torch.Tensor:
    """Continuity penalty per cloud: mean over points of (mean distance to the ``k`` nearest other points)^2.

    Shapes: ``(S, N, 3) -> (S,)``. ``k`` is clamped to ``N - 1``; 0 for one point.

    The neighbour sets are found without gradient (:func:`~pointlens.ops.knn_indices`) and only the ``N k``
    selected distances are recomputed with it: the same value and gradient as differentiating the full ``N x N``
    distance matrix and its top-k (the selection is piecewise constant), 3x cheaper at 1,024 points (the tests
    keep the full-matrix version as the reference).
    """
    n = x.shape[1]
    k = min(int(k), n - 1)
    if k < 1:
        return x.new_zeros(x.shape[0])
    with torch.no_grad():
        idx = knn_indices(x.detach(), x.detach(), k, exclude_self=True)
    d = torch.linalg.vector_norm(gather_points(x, idx) - x.unsqueeze(2), dim=-1)  # (S, N, k)
    return (d.mean(-1) ** 2).mean(-1)


def outside_bounds(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of the points outside the box ``[lo, hi]`` (0 inside). ``(S, N, 3) -> (S,)``."""
    over = torch.relu(x - hi) + torch.relu(lo - x)
    return (over ** 2).sum(-1).mean(-1)


def class_medoid(clouds: torch.Tensor, limit: int = 32) -> torch.Tensor:
    """The class's "mean shape": the medoid (smallest mean plain Chamfer to the others) of the first ``limit``
    clouds. A point-wise mean of unordered clouds is meaningless, so the medoid stands in for it.
    Shapes: ``(M, N, 3) -> (N, 3)``."""
    from pointlens.metrics.shape import chamfer_distance

    c = clouds[:limit]
    m = len(c)
    if m == 1:
        return c[0].clone()
    tot = torch.zeros(m, dtype=torch.float64)
    for i in range(m):
        tot[i] = chamfer_distance(c[i:i + 1].expand(m, -1, -1), c).double().sum()
    return c[int(tot.argmin())].clone()


# --------------------------------------------------------------------------------------------- helpers
def _options(method: str, options: dict, steps) -> dict:
    unknown = sorted(set(options) - _ALLOWED[method])
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], sorted(_ALLOWED[method]), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"one of {', '.join(sorted(_ALLOWED[method]))}"
        raise bad_argument("option", unknown[0], f"an option of {method} AM; {hint}")
    opts = dict(DEFAULTS[method])
    opts.update({k: v for k, v in options.items() if v is not None})
    if steps is not None:
        opts["steps"] = steps
    opts["steps"] = check_int("steps", opts["steps"], minimum=0)
    opts["lr"] = check_float("lr", opts["lr"], minimum=0.0, strict_min=True)
    opts["keep"] = check_choice("keep", opts["keep"], ("last", "best"))
    for k in ("l2", "continuity", "bounds", "flow", "prior", "init_noise", "std_floor", "contrast"):
        if k in opts:
            opts[k] = check_float(k, opts[k], minimum=0.0)
    if "knn" in opts:
        opts["knn"] = check_int("knn", opts["knn"], minimum=1)
    return opts


def _class_data(opts: dict, target: int, need: bool, what: str):
    data = opts.get("data")
    if data is None:
        if need:
            raise bad_argument("data", None, f"real training clouds (and data_labels) for {what}")
        return None
    pts = as_points(data)
    labels = opts.get("data_labels")
    if labels is not None:
        lab = torch.as_tensor(np.asarray(labels)).reshape(-1)
        if len(lab) != len(pts):
            raise bad_argument("data_labels", f"{len(lab)} labels", f"{len(pts)} (one per cloud in data)")
        pts = pts[lab.to(pts.device) == target]
    if len(pts) == 0:
        raise DataError(f"data: no real instance of class {target}; {what} needs at least one")
    return pts


def _bounds_box(opts: dict, device) -> tuple[torch.Tensor, torch.Tensor]:
    box = opts.get("bounds_box")
    if box is None and opts.get("data") is not None:
        d = as_points(opts["data"]).reshape(-1, 3)
        box = (d.amin(0), d.amax(0))
    if box is None:
        box = (-torch.ones(3), torch.ones(3))
    lo = torch.as_tensor(box[0], dtype=torch.float32).reshape(-1).expand(3).to(device)
    hi = torch.as_tensor(box[1], dtype=torch.float32).reshape(-1).expand(3).to(device)
    return lo, hi


def _init_points(opts: dict, target: int, s: int, n: int, g: torch.Generator, lo, hi) -> torch.Tensor:
    init = check_choice("init", opts["init"], ("noise", "mean", "instance"))
    if init == "noise":
        # uniform in the ball inscribed in the data box (its centre, its smallest half-side)
        centre, radius = (lo + hi).cpu() / 2, float(((hi - lo) / 2).min())
        out = []
        for _ in range(s):  # sample by sample: sample i starts the same whatever the batch size
            v = torch.randn(n, 3, generator=g)
            v = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            out.append(centre + radius * torch.rand(n, 1, generator=g) ** (1 / 3) * v)
        return torch.stack(out)
    real = _class_data(opts, target, True, f"init={init!r}").cpu().float()
    if real.shape[1] != n:
        idx = torch.stack([torch.randperm(real.shape[1], generator=g)[:n] for _ in range(len(real))]) \
            if real.shape[1] > n else None
        if idx is None:
            raise bad_argument("points", n, f"at most the real clouds' {real.shape[1]} points for init={init!r}")
        real = torch.gather(real, 1, idx[..., None].expand(-1, -1, 3))
    if init == "mean":
        base = class_medoid(real)
        return base.expand(s, n, 3).clone() + 0.01 * torch.randn(s, n, 3, generator=g)  # samples differ
    pick = torch.randint(0, len(real), (s,), generator=g)
    return real[pick].clone()


# --------------------------------------------------------------------------------------------- maximize
def maximize(model: nn.Module, target, method: str = "flow", *, samples: int = 4, steps: int | None = None,
             seed: int = 0, points: int = 1024, progress_desc: str | None = None, **options) -> AMResult:
    """Synthesise ``samples`` clouds that maximise the ``target`` logit of ``model``.

    Args:
        model: classifier ``(B, N, 3) -> (B, K)`` logits; used in eval mode, never modified (modes and
            ``requires_grad`` restored).
        target: class index (int) shared by all samples.
        method: ``"naive"``, ``"generative"`` or ``"flow"`` (see the module docstring for the objectives).
        samples: ``S``, clouds optimised together as one batch.
        steps: optimisation steps (default: the method's, :data:`DEFAULTS`).
        seed: seed of the initialisation; same seed, model and options -> same clouds.
        points: ``N`` for naive AM and FlowAM (generative AM decodes the autoencoder's point count).
        progress_desc: label of the progress bar.
        **options: the method's options (:data:`DEFAULTS` lists each method's defaults):

            * all: ``lr`` (Adam learning rate), ``contrast`` (weight of the target's cross-entropy; 0 = the
              pure logit objective; default 1 for naive AM, 0 otherwise), ``keep`` (``"best"``, the default: per
              sample the iterate assigned to the target with the highest target logit; ``"last"``: the final
              iterate), ``data`` (``(M, N', 3)`` real training clouds) with
              ``data_labels`` (``(M,)``; without it ``data`` is taken as the target class's clouds),
              ``bounds_box`` (``(lo, hi)``, default the data's per-axis min/max or ``[-1, 1]``);
            * naive: ``init`` (``"noise"`` uniform in the ball inscribed in the box; ``"mean"`` the class's
              medoid shape plus N(0, 0.01^2) jitter so samples differ; ``"instance"`` a random real instance
              per sample), ``l2``, ``continuity``, ``knn``, ``bounds`` (regulariser weights);
            * flow: the same plus ``flow`` (alignment weight), ``flow_stats`` (a
              :class:`~pointlens.maximize.flow.FlowStats`; required), ``std_floor``;
            * generative: ``autoencoder`` (a :class:`~pointlens.maximize.autoencoder.PointAutoencoder`,
              required; ``data`` required for the class's mean latent), ``init`` (``"mean"`` latent plus
              noise of ``init_noise`` class-latent standard deviations, or ``"instance"``), ``prior``.

    Returns:
        :class:`AMResult` with ``clouds (S, N, 3)`` and the trace.

    Example:
        >>> res = maximize(model, 3, "naive", samples=4, steps=100, seed=0)
        >>> res.clouds.shape, res.trace["logit"][-1]
    """
    method = check_choice("method", method, METHODS)
    s = check_int("samples", samples, minimum=1)
    n = check_int("points", points, minimum=1)
    opts = _options(method, options, steps)
    dev = model_device(model)
    with preserve_model_state(model), torch.no_grad():
        model.eval()
        probe = model((torch.rand(1, max(n, 32), 3, generator=generator(0)) - 0.5).to(dev))  # global RNG untouched
    k = probe.shape[1]
    if isinstance(target, torch.Tensor):
        target = int(target.reshape(-1)[0]) if target.numel() == 1 else target
    if not isinstance(target, (int, np.integer)) or isinstance(target, bool) or not 0 <= int(target) < k:
        raise bad_argument("target", target, f"a class index in [0, {k - 1}]")
    t = int(target)
    g = generator(seed)
    lo, hi = _bounds_box(opts, dev)
    tgt = torch.full((s,), t, dtype=torch.long, device=dev)
    flow = None
    ae = None
    latent_mean = latent_std = None
    if method == "flow":
        flow = opts.get("flow_stats")
        if not isinstance(flow, FlowStats):
            raise bad_argument("flow_stats", type(flow).__name__, "FlowStats from pointlens.maximize.collect_flow")
        flow.check_class(t)
    if method == "generative":
        from pointlens.maximize.autoencoder import PointAutoencoder

        ae = opts.get("autoencoder")
        if not isinstance(ae, PointAutoencoder):
            raise bad_argument("autoencoder", type(ae).__name__, "a PointAutoencoder (load_autoencoder)")
        init = check_choice("init", opts["init"], ("mean", "instance"))
        real = _class_data(opts, t, True, "generative AM's class latent")
        with preserve_model_state(ae), torch.no_grad():
            ae.eval()
            zr = ae.encode(real.to(model_device(ae)).float()).cpu()
        latent_mean = zr.mean(0)
        latent_std = zr.std(0, unbiased=False).clamp_min(1e-6) if len(zr) > 1 else torch.ones_like(latent_mean)
        if init == "mean":
            z0 = latent_mean + opts["init_noise"] * latent_std * torch.randn(s, zr.shape[1], generator=g)
        else:
            z0 = zr[torch.randint(0, len(zr), (s,), generator=g)]
        var = z0.to(model_device(ae)).clone().requires_grad_(True)
    else:
        var = _init_points(opts, t, s, n, g, lo, hi).to(dev).float().requires_grad_(True)

    layers = flow.layers if flow is not None else []
    if flow is not None:
        mu = {ln: flow.mean[ln][t].to(dev) for ln in layers}
        sd = {ln: flow.std[ln][t].to(dev) for ln in layers}
        eps = {ln: opts["std_floor"] * sd[ln].mean().clamp_min(1e-6) + 1e-6 for ln in layers}

    def decode(v):
        return ae.decode(v).to(dev) if ae is not None else v

    def objective(v):
        x = decode(v)
        if layers:
            with capture(model, layers) as acts:
                logits = model(x)
        else:
            logits = model(x)
        logit = logits.gather(1, tgt[:, None])[:, 0]
        logp = logits.log_softmax(1).gather(1, tgt[:, None])[:, 0]
        won = logits.argmax(1) == tgt
        loss = -logit
        if opts["contrast"]:
            loss = loss - opts["contrast"] * logp
        if method == "generative":
            if opts["prior"]:
                zs = (v - latent_mean.to(v.device)) / latent_std.to(v.device)
                loss = loss + opts["prior"] * (zs ** 2).mean(1).to(dev)
        else:
            if opts.get("l2"):
                loss = loss + opts["l2"] * (x ** 2).sum(-1).mean(-1)
            if opts.get("continuity"):
                loss = loss + opts["continuity"] * continuity(x, opts["knn"])
            if opts.get("bounds"):
                loss = loss + opts["bounds"] * outside_bounds(x, lo, hi)
            if layers and opts.get("flow"):
                al = torch.stack([(((layer_descriptor(acts[ln].output, flow.reduce) - mu[ln]) / (sd[ln] + eps[ln]))
                                   ** 2).mean(1) for ln in layers]).mean(0)
                loss = loss + opts["flow"] * al
        return loss, logit, logp.exp(), won

    trace = {"objective": [], "logit": [], "prob": []}
    models = [model] + ([ae] if ae is not None else [])
    with preserve_model_state(model), torch.enable_grad():  # works inside a caller's torch.no_grad() too
        ctx = preserve_model_state(ae) if ae is not None else preserve_model_state(nn.Module())
        with ctx:
            for m in models:
                m.eval()
                for p in m.parameters():
                    p.requires_grad_(False)
            opt = torch.optim.Adam([var], lr=opts["lr"])
            best = _BestIterate(var) if opts["keep"] == "best" else None

            def record(step, loss, logit, prob, won):
                for key, val in (("objective", loss), ("logit", logit), ("prob", prob)):
                    trace[key].append(val.detach().cpu())
                if best is not None:
                    best.offer(var, logit, won, step)
                return loss

            for step in progress(range(opts["steps"]), desc=progress_desc or f"{method} AM ({s} samples)"):
                loss = record(step, *objective(var))
                opt.zero_grad(set_to_none=True)
                loss.sum().backward()
                opt.step()
            with torch.no_grad():
                record(opts["steps"], *objective(var))
                kept = torch.full((s,), opts["steps"], dtype=torch.long)
                if best is not None:
                    var, kept = best.value, best.step
                clouds = decode(var).detach().float().cpu()
    trace = {k: torch.stack(v).float() for k, v in trace.items()}
    shown = {k: v for k, v in opts.items() if k not in ("data", "data_labels", "flow_stats", "autoencoder")}
    if flow is not None:
        shown["flow_layers"] = list(flow.layers)
        shown["flow_reduce"] = flow.reduce
    return AMResult(clouds, tgt.cpu(), method, trace, shown,
                    var.detach().cpu() if method == "generative" else None, kept)


class _BestIterate:
    """Per sample the best iterate seen so far: assigned to the target beats not assigned, then the higher
    target logit wins (ties keep the earlier step)."""

    def __init__(self, var: torch.Tensor):
        s = var.shape[0]
        self.value = var.detach().clone()
        self.logit = torch.full((s,), -float("inf"), device=var.device)
        self.won = torch.zeros(s, dtype=torch.bool, device=var.device)
        self.step = torch.zeros(s, dtype=torch.long)

    @torch.no_grad()
    def offer(self, var: torch.Tensor, logit: torch.Tensor, won: torch.Tensor, step: int) -> None:
        """Consider ``var (S, ...)`` with its target ``logit (S,)`` and ``won (S,)`` (assigned to the target)."""
        logit, won = logit.detach().to(self.logit.device), won.to(self.won.device)
        better = (won & ~self.won) | ((won == self.won) & (logit > self.logit))
        self.value[better] = var.detach()[better]
        self.logit[better] = logit[better]
        self.won[better] = won[better]
        self.step[better.cpu()] = step
