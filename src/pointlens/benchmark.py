"""The explanation benchmark: every attribution method x every explanation metric, resumable and sharded.

``run_benchmark(model, dataset, config, out_dir=...)`` scores the clouds of ``dataset`` with every method of
``config.methods`` (:mod:`pointlens.attribution`) and evaluates every metric group of ``config.metrics`` on
those scores (:mod:`pointlens.metrics.localisation`, ``faithfulness``, ``complexity``, ``robustness``,
``sanity``). The result is one table row per method with the per-cloud means of every metric column
(:data:`GROUP_COLUMNS`), written by the ``pointlens benchmark`` command as CSV / JSON / Markdown plus plots.

Work units and resumption
    One *cell* = (method, metric group). A finished cell is saved atomically as
    ``DIR/cells/<method>__<group>.npz`` with its per-cloud values; attribution scores are cached as
    ``DIR/scores/<method>.npz`` so every metric group reuses them. ``DIR/benchmark_state.json`` stores a
    fingerprint (SHA-256 of the model weights, the clouds, labels and masks, and every metric setting); every
    cell and score file stores its own key (fingerprint +
    method + its options + group). Re-running resumes: finished cells are read, not recomputed. A different
    fingerprint or key raises :class:`~pointlens.errors.InvalidArgumentError` (use the same arguments, another
    ``out_dir`` or ``restart=True``). Adding methods or metric groups to a finished run reuses its cells.

Determinism and scale-out (``torchrun --nproc-per-node K``)
    Clouds are processed in fixed chunks of ``config.chunk_size`` clouds aligned to global indices
    (``[0, 8), [8, 16), ...``); each rank takes a contiguous block of whole chunks
    (:func:`pointlens.training.distributed.shard` over the chunk list). Every stochastic step is seeded from
    the chunk or the cloud: stochastic methods seed every cloud from ``config.seed`` and its geometry
    (:func:`pointlens.attribution.base.cloud_seeds`, independent of batching), metric draws (faithfulness
    subsets, jitter, random-logit classes) use :func:`chunk_seed`. Rank 0 gathers
    the per-cloud values, orders them globally and reduces them (a NaN-ignoring mean in float64) — so the
    table does not depend on the number of ranks: K processes give EXACTLY the single-process table (with the
    same thread count per process). The sanity group runs on the first ``config.sanity_clouds`` clouds,
    chunked and sharded the same way.

Costs (forward-pass equivalents per cloud, PointNet): attribution 1-2 (IG: 2 x steps); deletion + insertion
``~2 x deletion_steps``; faithfulness correlation ``fc_subsets`` ONCE per cloud (the perturbed outputs do not
depend on the method and are shared by every method); max-sensitivity ``sensitivity_samples`` attributions;
resampling consistency 1 attribution; sanity ``(2 L + 3)`` attributions per sanity cloud (L = layer groups).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pointlens.errors import DataError, InvalidArgumentError, bad_argument
from pointlens.models.hooks import model_device
from pointlens.training import distributed as D
from pointlens.utils.io import load_json, save_json, save_npz
from pointlens.utils.progress import progress
from pointlens.utils.validate import check_choice, check_float, check_int

__all__ = [
    "METRIC_GROUPS",
    "GROUP_COLUMNS",
    "HIGHER_IS_BETTER",
    "DEFAULT_METHODS",
    "DEFAULT_METHOD_OPTIONS",
    "BenchmarkConfig",
    "BenchmarkResult",
    "run_benchmark",
    "chunk_ranges",
    "chunk_seed",
    "shared_faithfulness_drops",
    "alternate_sampling",
    "table_rows_csv",
    "table_markdown",
    "plot_heatmap",
    "plot_randomisation_curves",
    "write_outputs",
]

METRIC_GROUPS = ("localisation", "faithfulness", "complexity", "robustness", "sanity")
"""Metric groups = the unit of work (one cell per method and group)."""

GROUP_COLUMNS = {
    "localisation": (
        "relevance_mass_accuracy",
        "relevance_rank_accuracy",
        "pointing_game",
        "topk_intersection",
        "auroc",
    ),
    "faithfulness": ("deletion_auc", "insertion_auc", "faithfulness_correlation"),
    "complexity": ("sparseness", "entropy"),
    "robustness": ("max_sensitivity", "resampling_consistency"),
    "sanity": ("cascading_spearman", "independent_spearman", "random_logit_spearman"),
}
"""The table's metric columns per group (per-cloud means)."""

HIGHER_IS_BETTER = {
    "relevance_mass_accuracy": True,
    "relevance_rank_accuracy": True,
    "pointing_game": True,
    "topk_intersection": True,
    "auroc": True,
    "deletion_auc": False,
    "insertion_auc": True,
    "faithfulness_correlation": True,
    "sparseness": True,
    "entropy": False,
    "max_sensitivity": False,
    "resampling_consistency": True,
    "cascading_spearman": False,
    "independent_spearman": False,
    "random_logit_spearman": False,
}
"""Direction of every column: True = higher is better."""

DEFAULT_METHODS = ("pointshift", "gradient", "gradxinput", "ig", "occlusion", "critical", "gradcam", "random")
"""The default benchmark's methods (``--methods default``); ``random`` is always added as a reference row."""

DEFAULT_METHOD_OPTIONS = {
    "ig": {"steps": 16},
    "smoothgrad": {"n_samples": 8},
    "rise": {"n_masks": 256},
    "lime": {"n_samples": 128},
    "occlusion-knn": {"centres": "fps", "n_centres": 32},
}
"""Cheap-enough options used unless ``config.method_options`` overrides them."""

COMPARED_GROUPS = ("localisation", "faithfulness")
"""Groups whose columns are compared with the ``random`` row cloud by cloud (table ``vs_random``)."""

CI_LEVEL, CI_BOOT = 0.95, 2000
"""Coverage and bootstrap resamples of the table's confidence intervals."""

_STATE = "benchmark_state.json"


# --------------------------------------------------------------------------------------------- configuration
def _column_group(name: str) -> str | None:
    for g, cols in GROUP_COLUMNS.items():
        if name in cols:
            return g
    return None


@dataclass
class BenchmarkConfig:
    """Every setting of a benchmark run.

    Attributes:
        methods: method names (``pointlens.attribution.list_attributions()``); ``"default"`` =
            :data:`DEFAULT_METHODS`, ``"all"`` = every registered method. ``random`` is always included.
        metrics: metric group names (:data:`METRIC_GROUPS`) and/or column names (:data:`GROUP_COLUMNS`);
            ``"all"`` = every group. A column name computes its whole group but shows only that column.
        method_options: ``{method: {option: value}}`` merged over :data:`DEFAULT_METHOD_OPTIONS`.
        seed: the run's seed.
        chunk_size: clouds per chunk (the unit of sharding and seeding; it changes the seeded metrics).
        target: ``"label"`` (explain the true class; multi-label data falls back to the prediction) or
            ``"predicted"`` (the model's predicted class).
        sanity_clouds: the sanity group runs on the first ``sanity_clouds`` clouds.
        sanity_threshold: a method whose mean cascading Spearman (all layers randomised) is ABOVE this fails.
        deletion_steps: intervals of the deletion / insertion curves (``steps + 1`` fractions).
        fc_subsets: random subsets of the faithfulness correlation.
        fc_subset_size: points per subset (default ``round(0.1 N)``).
        sensitivity_samples: jittered copies of max-sensitivity.
        sensitivity_radius: jitter radius of max-sensitivity (clouds are in the unit sphere).
        topk: ``k`` of the top-k intersection (default ``max(1, N // 10)``).
        batch_size: clouds per forward pass inside the metrics.
    """

    methods: tuple = ("default",)
    metrics: tuple = ("all",)
    method_options: dict = field(default_factory=dict)
    seed: int = 0
    chunk_size: int = 8
    target: str = "label"
    sanity_clouds: int = 32
    sanity_threshold: float = 0.5
    deletion_steps: int = 10
    fc_subsets: int = 32
    fc_subset_size: int | None = None
    sensitivity_samples: int = 4
    sensitivity_radius: float = 0.01
    topk: int | None = None
    batch_size: int = 64

    def validate(self) -> "BenchmarkConfig":
        """Check every setting and return a normalised copy (methods and metrics resolved to names).

        Raises:
            InvalidArgumentError: an unknown method, metric or option value, naming it and the accepted ones.
        """
        from pointlens.attribution import check_method, list_attributions

        names = list_attributions()
        methods = _split_names(self.methods, "methods")
        if methods in (["default"],):
            methods = list(DEFAULT_METHODS)
        elif methods == ["all"]:
            methods = list(names)
        for m in methods:
            if m not in ("default", "all"):
                check_method(m, arg="methods")
        methods = [m for i, m in enumerate(methods) if m not in methods[:i] and m not in ("default", "all")]
        if "random" not in methods:
            methods.append("random")
        metrics = _split_names(self.metrics, "metrics")
        if metrics == ["all"]:
            metrics = list(METRIC_GROUPS)
        accepted = list(METRIC_GROUPS) + [c for cols in GROUP_COLUMNS.values() for c in cols]
        for m in metrics:
            check_choice("metrics", m, accepted + ["all"])
        metrics = [m for i, m in enumerate(metrics) if m not in metrics[:i] and m != "all"]
        if not isinstance(self.method_options, dict):
            raise bad_argument("method_options", self.method_options, "a dict {method: {option: value}}")
        for m, opts in self.method_options.items():
            if not isinstance(opts, dict):
                raise bad_argument(f"method_options[{m!r}]", opts, "a dict {option: value}")
            check_method(m, opts, arg="method_options")
        check_int("seed", self.seed)
        check_int("chunk_size", self.chunk_size, minimum=1)
        check_choice("target", self.target, ("label", "predicted"))
        check_int("sanity_clouds", self.sanity_clouds, minimum=1)
        check_float("sanity_threshold", self.sanity_threshold, minimum=-1.0, maximum=1.0)
        check_int("deletion_steps", self.deletion_steps, minimum=1)
        check_int("fc_subsets", self.fc_subsets, minimum=2)
        if self.fc_subset_size is not None:
            check_int("fc_subset_size", self.fc_subset_size, minimum=1)
        check_int("sensitivity_samples", self.sensitivity_samples, minimum=1)
        check_float("sensitivity_radius", self.sensitivity_radius, minimum=0.0)
        if self.topk is not None:
            check_int("topk", self.topk, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        return replace(
            self,
            methods=tuple(methods),
            metrics=tuple(metrics),
            method_options={k: dict(v) for k, v in self.method_options.items()},
        )

    def groups(self) -> list[str]:
        """The metric groups to compute, in :data:`METRIC_GROUPS` order."""
        wanted = {m if m in METRIC_GROUPS else _column_group(m) for m in self.metrics}
        return [g for g in METRIC_GROUPS if g in wanted]

    def columns(self, group: str) -> list[str]:
        """The columns of ``group`` shown in the table."""
        if group in self.metrics:
            return list(GROUP_COLUMNS[group])
        return [c for c in GROUP_COLUMNS[group] if c in self.metrics]

    def options_for(self, method: str) -> dict:
        """Options ``method`` is built with: :data:`DEFAULT_METHOD_OPTIONS` updated by ``method_options``."""
        return {**DEFAULT_METHOD_OPTIONS.get(method, {}), **self.method_options.get(method, {})}

    def metric_settings(self) -> dict:
        """The settings every cell depends on (part of the fingerprint)."""
        d = asdict(self)
        for k in ("methods", "metrics", "method_options"):
            d.pop(k)
        return d


def _split_names(value, name: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    try:
        items = [s.strip() for v in value for s in str(v).split(",") if s.strip()]
    except TypeError:
        raise bad_argument(name, value, "a list of names or a comma-separated string") from None
    if not items:
        raise bad_argument(name, value, "at least one name")
    return items


# --------------------------------------------------------------------------------------------- helpers
def chunk_ranges(n: int, size: int) -> list[range]:
    """Fixed chunks of global indices ``[0, size), [size, 2 size), ...`` covering ``range(n)``.

    Args:
        n: number of items.
        size: chunk size (>= 1).

    Returns:
        list of ``range``; the last may be shorter.
    """
    size = check_int("chunk_size", size, minimum=1)
    return [range(s, min(s + size, n)) for s in range(0, n, size)]


def chunk_seed(seed: int, start: int, salt: int) -> int:
    """Seed of a metric's random draws for the chunk starting at global index ``start``.

    Depends only on the run's seed, the chunk and the metric (``salt``), never on the rank.
    """
    return (int(seed) * 1_000_003 + int(start) * 7919 + int(salt) * 104_729) % (2**62)


def _explain_fn(method: str, options: dict, seed_base: int):
    """``explain(model, points, target) -> (B, N)`` for ``method``; stochastic methods get ``seed_base``."""
    from pointlens.attribution import create_attribution, is_stochastic

    opts = dict(options)
    if is_stochastic(method):
        opts["seed"] = int(opts.get("seed", 0)) + int(seed_base)

    def explain(model, pts, target):
        return create_attribution(method, model, **opts).attribute(pts, target)

    return explain


def _hash_arrays(h, *arrays) -> None:
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())


def _fingerprint(model: nn.Module, dataset, alt_points, config: BenchmarkConfig) -> str:
    h = hashlib.sha256()
    for name, v in sorted(model.state_dict().items()):
        h.update(name.encode())
        _hash_arrays(h, v.detach().cpu().numpy())
    _hash_arrays(h, dataset.points, np.asarray(dataset.labels), dataset.gt_mask, alt_points)
    h.update(json.dumps(config.metric_settings(), sort_keys=True).encode())
    return h.hexdigest()


def _key(fingerprint: str, *parts) -> str:
    return hashlib.sha256(json.dumps([fingerprint, *parts], sort_keys=True, default=str).encode()).hexdigest()


def _nanmean(v: np.ndarray) -> float | None:
    v = np.asarray(v, dtype=np.float64)
    ok = np.isfinite(v)
    if not ok.any():
        return None
    return float(v[ok].sum(dtype=np.float64) / ok.sum())


def shared_faithfulness_drops(
    model: nn.Module,
    points: torch.Tensor,
    target: torch.Tensor,
    *,
    n_subsets: int,
    subset_size: int | None,
    seed: int,
    batch_size: int = 64,
):
    """The method-independent half of the faithfulness correlation: random subsets and the output drops.

    Calls :func:`pointlens.metrics.faithfulness.faithfulness_correlation` once with zero scores; for any
    method's scores ``s`` the metric is then ``pearson(Σ_{i∈S_j} s_i, drops_j)`` (see :func:`_fc_from_drops`),
    equal to calling ``faithfulness_correlation`` with ``s`` and the same ``seed`` (tested).

    Args:
        model: the classifier.
        points: ``(B, N, 3)``.
        target: ``(B,)`` long.
        n_subsets, subset_size, seed, batch_size: as ``faithfulness_correlation``.

    Returns:
        ``(subsets (B, S, m) long, drops (B, S) float64)``.
    """
    from pointlens.metrics.faithfulness import faithfulness_correlation

    zeros = torch.zeros(points.shape[:2], dtype=torch.float64)
    res = faithfulness_correlation(
        model,
        points,
        zeros,
        target,
        n_subsets=n_subsets,
        subset_size=subset_size,
        seed=seed,
        batch_size=batch_size,
    )
    return res.subsets.cpu(), res.output_drops.cpu()


def _fc_from_drops(scores: torch.Tensor, subsets: torch.Tensor, drops: torch.Tensor) -> torch.Tensor:
    from pointlens.stats import pearson
    from pointlens.utils.validate import as_scores

    s = as_scores(scores).cpu()
    b, n_sub, _ = subsets.shape
    sums = torch.gather(s.unsqueeze(1).expand(b, n_sub, s.shape[1]), 2, subsets).sum(2)
    return pearson(sums, drops)


# --------------------------------------------------------------------------------------------- result
@dataclass
class BenchmarkResult:
    """Outcome of :func:`run_benchmark` (complete on rank 0; on other ranks ``table`` is None).

    Attributes:
        table: the table object: ``columns`` (metric columns shown), ``rows`` (one dict per method:
            ``method``, every column's per-cloud mean or None, ``sanity_pass`` when the sanity group ran),
            ``directions`` (column -> ``"higher"``/``"lower"`` is better), ``n_clouds``, ``n_sanity_clouds``,
            ``mask_fraction`` (mean share of ground-truth points: the chance level of relevance mass
            accuracy), notes.
        per_cloud: ``{(method, group): {name: array}}``: per-cloud values ``(M,)`` (sanity: ``(S,)``) and
            curves (``cascading_curve (L, S)``, ``independent_curve (L, S)``, ``deletion_curve (M, F)``, ...).
        curves: ``{method: {"layers": [...], "cascading": [...], "independent": [...]}}`` mean sanity curves.
        computed: cells computed by this call, ``["method/group", ...]``; ``reused``: cells read from disk.
        seconds: wall seconds per computed cell on this rank.
        config: the validated :class:`BenchmarkConfig`.
    """

    table: dict | None
    per_cloud: dict
    curves: dict
    computed: list
    reused: list
    seconds: dict
    config: BenchmarkConfig

    def to_dict(self) -> dict:
        """The table object (what ``--json`` prints)."""
        return self.table


# --------------------------------------------------------------------------------------------- the engine
class _Engine:
    def __init__(self, model, dataset, config: BenchmarkConfig, out_dir, alt_points, device):
        self.model = model
        self.ds = dataset
        self.cfg = config
        self.out = Path(out_dir) if out_dir is not None else None
        self.device = torch.device(device) if device is not None else model_device(model)
        self.points = torch.from_numpy(np.ascontiguousarray(dataset.points, dtype=np.float32))
        self.alt = (
            None
            if alt_points is None
            else torch.from_numpy(np.ascontiguousarray(alt_points, dtype=np.float32))
        )
        self.m, self.n = self.points.shape[:2]
        self.chunks = chunk_ranges(self.m, config.chunk_size)
        self.mine = [self.chunks[i] for i in D.shard(len(self.chunks))]
        s = min(config.sanity_clouds, self.m)
        self.sanity_chunks = chunk_ranges(s, config.chunk_size)
        self.sanity_mine = [self.sanity_chunks[i] for i in D.shard(len(self.sanity_chunks))]
        self.n_sanity = s
        self.scores: dict[str, dict[int, np.ndarray]] = {}
        self.fc_cache: dict[int, tuple] = {}
        self.targets = self._targets()

    # ---------------------------------------------------------------- targets
    def _targets(self) -> torch.Tensor:
        labels = np.asarray(self.ds.labels)
        if self.cfg.target == "label" and labels.ndim == 1:
            return torch.from_numpy(labels.astype(np.int64))
        from pointlens.metrics.faithfulness import model_outputs

        out = torch.empty(self.m, dtype=torch.long)
        for ch in self.chunks:  # every rank predicts every chunk, in the same chunks: identical everywhere
            logits = model_outputs(
                self.model, self.points[ch.start : ch.stop].to(self.device), batch_size=self.cfg.batch_size
            )
            out[ch.start : ch.stop] = logits.argmax(1).cpu()
        return out

    def _chunk(self, ch: range, alt: bool = False):
        src = self.alt if alt else self.points
        return src[ch.start : ch.stop].to(self.device), self.targets[ch.start : ch.stop].to(self.device)

    # ---------------------------------------------------------------- files
    def _path(self, kind: str, name: str) -> Path | None:
        return None if self.out is None else self.out / kind / f"{name}.npz"

    def _load(self, path: Path | None, key: str, what: str) -> dict | None:
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise DataError(
                f"{path}: unreadable benchmark {what} file ({e}); delete it or use --restart"
            ) from None
        if str(data.pop("key", "")) != key:
            raise InvalidArgumentError(
                f"out_dir: {path} holds a {what} computed with different settings (method options or metric "
                "settings); expected the same arguments as the first run: rerun with them, use a new --out, "
                "or pass --restart to discard the old results"
            )
        return data

    # ---------------------------------------------------------------- scores
    def method_scores(self, method: str, fingerprint: str) -> dict[int, np.ndarray]:
        """Scores of this rank's chunks (and of its sanity chunks' clouds are not needed)."""
        if method in self.scores:
            return self.scores[method]
        opts = self.cfg.options_for(method)
        key = _key(fingerprint, "scores", method, opts)
        path = self._path("scores", method)
        data = D.all_gather_object(self._load(path, key, "scores") is not None)[0]
        if data:
            full = self._load(path, key, "scores")["scores"]
            local = {ch.start: full[ch.start : ch.stop] for ch in self.mine}
            self.reused.append(f"{method}/scores")
        else:
            local = {}
            for ch in self.mine:
                pts, t = self._chunk(ch)
                s = _explain_fn(method, opts, self.cfg.seed)(self.model, pts, t)
                local[ch.start] = s.detach().cpu().numpy()
            merged = self._merge(local)
            if D.is_main() and path is not None:
                save_npz(
                    path, scores=np.concatenate([merged[c.start] for c in self.chunks], 0), key=np.array(key)
                )
            self.computed.append(f"{method}/scores")
        self.scores[method] = local
        return local

    def _merge(self, local: dict) -> dict | None:
        parts = D.all_gather_object(local)
        if not D.is_main():
            return None
        merged = {}
        for p in parts:
            merged.update(p)
        return merged

    # ---------------------------------------------------------------- metric groups (one chunk)
    def _localisation(self, ch, s, method, opts):
        from pointlens.metrics.localisation import localisation_metrics

        mask = torch.from_numpy(np.asarray(self.ds.gt_mask[ch.start : ch.stop], dtype=bool))
        return {
            k: v.numpy() for k, v in localisation_metrics(torch.from_numpy(s), mask, k=self.cfg.topk).items()
        }

    def _faithfulness(self, ch, s, method, opts):
        from pointlens.metrics.faithfulness import deletion_curve, insertion_curve

        pts, t = self._chunk(ch)
        st = torch.from_numpy(s).to(self.device)
        dc = deletion_curve(
            self.model, pts, st, t, steps=self.cfg.deletion_steps, batch_size=self.cfg.batch_size
        )
        ic = insertion_curve(
            self.model, pts, st, t, steps=self.cfg.deletion_steps, batch_size=self.cfg.batch_size
        )
        if ch.start not in self.fc_cache:
            self.fc_cache[ch.start] = shared_faithfulness_drops(
                self.model,
                pts,
                t,
                n_subsets=self.cfg.fc_subsets,
                subset_size=self.cfg.fc_subset_size,
                seed=chunk_seed(self.cfg.seed, ch.start, 1),
                batch_size=self.cfg.batch_size,
            )
        subsets, drops = self.fc_cache[ch.start]
        return {
            "deletion_auc": dc.auc.cpu().numpy(),
            "insertion_auc": ic.auc.cpu().numpy(),
            "faithfulness_correlation": _fc_from_drops(torch.from_numpy(s), subsets, drops).numpy(),
            "deletion_curve": dc.probabilities.cpu().numpy(),
            "insertion_curve": ic.probabilities.cpu().numpy(),
            "fractions": np.tile(dc.fractions.cpu().numpy(), (len(ch), 1)),
        }

    def _complexity(self, ch, s, method, opts):
        from pointlens.metrics.complexity import entropy_complexity, sparseness

        st = torch.from_numpy(s)
        return {
            "sparseness": sparseness(st).numpy(),
            "entropy": entropy_complexity(st, normalise=True).numpy(),
        }

    def _robustness(self, ch, s, method, opts):
        from pointlens.metrics.robustness import max_sensitivity, resampling_consistency

        pts, t = self._chunk(ch)
        explain = _explain_fn(method, opts, self.cfg.seed)
        sens = max_sensitivity(
            self.model,
            pts,
            explain,
            t,
            radius=self.cfg.sensitivity_radius,
            n_samples=self.cfg.sensitivity_samples,
            seed=chunk_seed(self.cfg.seed, ch.start, 2),
        )
        out = {"max_sensitivity": sens.cpu().numpy()}
        if self.alt is not None:
            alt_pts, _ = self._chunk(ch, alt=True)
            alt_s = explain(self.model, alt_pts, t)
            out["resampling_consistency"] = (
                resampling_consistency(pts, torch.from_numpy(s).to(self.device), alt_pts, alt_s).cpu().numpy()
            )
        else:
            out["resampling_consistency"] = np.full(len(ch), np.nan)
        return out

    def _sanity(self, ch, s, method, opts):
        from pointlens.metrics.sanity import model_randomisation, random_logit_test

        pts, t = self._chunk(ch)
        explain = _explain_fn(method, opts, self.cfg.seed)
        cas = model_randomisation(self.model, pts, explain, t, mode="cascading", seed=self.cfg.seed)
        ind = model_randomisation(self.model, pts, explain, t, mode="independent", seed=self.cfg.seed)
        out = {"cascading_spearman": cas.steps[-1].spearman.cpu().numpy()}
        for name, res in (("cascading", cas), ("independent", ind)):
            for what in ("spearman", "spearman_abs", "topk_intersection"):
                out[f"{name}_{what}_curve"] = (
                    torch.stack([getattr(st, what) for st in res.steps], 1).cpu().numpy()
                )
        with np.errstate(all="ignore"):
            ind_curve = out["independent_spearman_curve"]
            ok = np.isfinite(ind_curve)
            cnt = ok.sum(1)
            out["independent_spearman"] = np.where(
                cnt > 0, np.where(ok, ind_curve, 0).sum(1) / np.maximum(cnt, 1), np.nan
            )
        rl = random_logit_test(self.model, pts, explain, t, seed=chunk_seed(self.cfg.seed, ch.start, 3))
        out["random_logit_spearman"] = rl.spearman.cpu().numpy()
        self.layer_names = [st.layer for st in cas.steps]
        return out

    # ---------------------------------------------------------------- one cell
    def cell(self, method: str, group: str, fingerprint: str) -> dict:
        opts = self.cfg.options_for(method)
        key = _key(fingerprint, "cell", method, opts, group)
        path = self._path("cells", f"{method}__{group}")
        done = D.all_gather_object(self._load(path, key, "cell") is not None)[0]
        if done:
            self.reused.append(f"{method}/{group}")
            return self._load(path, key, "cell") if D.is_main() else {}
        t0 = time.perf_counter()
        chunks = self.sanity_mine if group == "sanity" else self.mine
        all_chunks = self.sanity_chunks if group == "sanity" else self.chunks
        fn = getattr(self, f"_{group}")
        local = {}
        if group == "sanity":
            for ch in chunks:
                local[ch.start] = fn(ch, None, method, opts)
        else:
            scores = self.method_scores(method, fingerprint)
            for ch in chunks:
                local[ch.start] = fn(ch, scores[ch.start], method, opts)
        if group == "sanity":
            names = D.all_gather_object(getattr(self, "layer_names", None))
            layers = next((n for n in names if n is not None), [])
        merged = self._merge(local)
        self.seconds[f"{method}/{group}"] = time.perf_counter() - t0
        self.computed.append(f"{method}/{group}")
        if not D.is_main():
            return {}
        values = {}
        for name in merged[all_chunks[0].start]:
            values[name] = np.concatenate([merged[c.start][name] for c in all_chunks], 0)
        if group == "sanity":
            values["layers"] = np.array(layers, dtype=str)
        if path is not None:
            save_npz(path, key=np.array(key), **values)
        return values


def run_benchmark(
    model: nn.Module,
    dataset,
    config: BenchmarkConfig | None = None,
    *,
    out_dir=None,
    alt_points=None,
    restart: bool = False,
    device=None,
) -> BenchmarkResult:
    """Run every method x metric group on ``dataset`` (resumable; sharded under torchrun).

    Args:
        model: classifier mapping ``(B, N, 3)`` to logits ``(B, C)``; put in ``eval()`` mode by the caller
            (methods run it in eval mode; metrics use it as it is). Never modified.
        dataset: :class:`~pointlens.data.dataset.PointCloudDataset` with ``points (M, N, 3)``, ``labels``
            and, for the localisation group, ``gt_mask (M, N)`` (the group is skipped without it).
        config: :class:`BenchmarkConfig` (default settings when None).
        out_dir: folder for ``cells/``, ``scores/`` and ``benchmark_state.json`` (None: nothing cached).
        alt_points: optional ``(M, N', 3)`` second sampling of the same shapes for the resampling
            consistency (:func:`alternate_sampling`); without it that column is None.
        restart: delete the cached cells and scores of ``out_dir`` first.
        device: torch device of the model (default: that of its parameters).

    Returns:
        :class:`BenchmarkResult` (the table on rank 0).

    Raises:
        InvalidArgumentError: bad config or data, or ``out_dir`` holding a run with other settings.
    """
    cfg = (config or BenchmarkConfig()).validate()
    if not isinstance(model, nn.Module):
        raise bad_argument(
            "model", type(model).__name__, "a torch.nn.Module mapping (B, N, 3) to logits (B, C)"
        )
    if not hasattr(dataset, "points") or len(dataset) == 0:
        raise bad_argument("dataset", type(dataset).__name__, "a PointCloudDataset with at least one cloud")
    if alt_points is not None:
        alt_points = np.asarray(alt_points, dtype=np.float32)
        if alt_points.ndim != 3 or alt_points.shape[0] != len(dataset) or alt_points.shape[2] != 3:
            raise bad_argument("alt_points", f"shape {alt_points.shape}", f"({len(dataset)}, N', 3)")
    groups = cfg.groups()
    notes = []
    if "localisation" in groups and dataset.gt_mask is None:
        groups.remove("localisation")
        notes.append("localisation skipped: the data has no ground-truth mask (gt_mask)")
    if "robustness" in groups and alt_points is None:
        notes.append("resampling_consistency: no second sampling of the clouds is available for this data")
    fingerprint = _fingerprint(model, dataset, alt_points, cfg)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        _check_state(out, fingerprint, restart)
    eng = _Engine(model, dataset, cfg, out, alt_points, device)
    eng.computed, eng.reused, eng.seconds = [], [], {}
    per_cloud = {}
    cells = [(m, g) for m in cfg.methods for g in groups]
    for method, group in progress(cells, desc="benchmark cells"):
        per_cloud[(method, group)] = eng.cell(method, group, fingerprint)
    D.barrier()
    if not D.is_main():
        return BenchmarkResult(None, {}, {}, eng.computed, eng.reused, eng.seconds, cfg)
    table = _build_table(cfg, groups, per_cloud, dataset, eng, notes)
    curves = {}
    for method in cfg.methods:
        v = per_cloud.get((method, "sanity"))
        if v:
            curves[method] = {
                "layers": [str(x) for x in v["layers"]],
                "cascading": [_nanmean(c) for c in v["cascading_spearman_curve"].T],
                "independent": [_nanmean(c) for c in v["independent_spearman_curve"].T],
            }
    return BenchmarkResult(table, per_cloud, curves, eng.computed, eng.reused, eng.seconds, cfg)


def _check_state(out: Path, fingerprint: str, restart: bool) -> None:
    state = out / _STATE
    D.barrier()  # every rank reads the state before rank 0 may rewrite it
    if restart:
        D.barrier()
        if D.is_main():
            for sub in ("cells", "scores"):
                shutil.rmtree(out / sub, ignore_errors=True)
            state.unlink(missing_ok=True)
        D.barrier()
    elif state.is_file():
        old = load_json(state).get("fingerprint")
        if old != fingerprint:
            raise InvalidArgumentError(
                f"--out: {out} holds a benchmark run with different settings (model weights, data, seed or "
                "metric settings differ; fingerprint "
                f"{str(old)[:12]} vs {fingerprint[:12]}); expected the "
                "same arguments to resume: rerun with them, use a new --out, or pass --restart"
            )
    D.barrier()
    if D.is_main():
        save_json(state, {"fingerprint": fingerprint})
    D.barrier()


def _build_table(cfg, groups, per_cloud, dataset, eng, notes) -> dict:
    columns = [c for g in groups for c in cfg.columns(g)]
    rows = []
    for method in cfg.methods:
        row = {"method": method}
        for g in groups:
            vals = per_cloud[(method, g)]
            for c in cfg.columns(g):
                row[c] = _nanmean(vals[c])
        if "sanity" in groups:
            rho = _nanmean(per_cloud[(method, "sanity")]["cascading_spearman"])
            row["sanity_pass"] = None if rho is None else bool(rho <= cfg.sanity_threshold)
        rows.append(row)
    gt = dataset.gt_mask
    vs_random, sanity_ci = _uncertainty(cfg, groups, per_cloud)
    return {
        "columns": columns + (["sanity_pass"] if "sanity" in groups else []),
        "rows": rows,
        "directions": {c: "higher" if HIGHER_IS_BETTER[c] else "lower" for c in columns},
        "groups": groups,
        "n_clouds": int(eng.m),
        "n_points": int(eng.n),
        "n_sanity_clouds": int(eng.n_sanity) if "sanity" in groups else 0,
        "sanity_threshold": cfg.sanity_threshold,
        "mask_fraction": None if gt is None else float(np.asarray(gt, dtype=np.float64).mean()),
        "target": cfg.target,
        "method_options": {m: cfg.options_for(m) for m in cfg.methods},
        "notes": notes,
        "vs_random": vs_random,
        "sanity_ci": sanity_ci,
        "ci": {"level": CI_LEVEL, "n_boot": CI_BOOT, "seed": cfg.seed},
    }


def _uncertainty(cfg, groups, per_cloud) -> tuple[dict, dict]:
    """Paired per-cloud differences to ``random`` (localisation and faithfulness columns) and the spread of
    the cascading Spearman, each as a mean with a percentile-bootstrap interval (:func:`bootstrap_mean_ci`)."""
    from pointlens.stats import bootstrap_mean_ci

    def ci(values):
        mean, low, high, n = bootstrap_mean_ci(values, level=CI_LEVEL, n_boot=CI_BOOT, seed=cfg.seed)
        return {"mean": _finite(mean), "low": _finite(low), "high": _finite(high), "n": n}

    vs_random = {}
    for method in cfg.methods:
        if method == "random":
            continue
        cols = {}
        for g in groups:
            if g not in COMPARED_GROUPS:
                continue
            for c in cfg.columns(g):
                d = np.asarray(per_cloud[(method, g)][c], float) - np.asarray(per_cloud[("random", g)][c], float)
                e = ci(d)
                if e["low"] is None:
                    e["better"] = None
                else:
                    e["better"] = bool(e["low"] > 0) if HIGHER_IS_BETTER[c] else bool(e["high"] < 0)
                cols[c] = e
        if cols:
            vs_random[method] = cols
    sanity_ci = {}
    if "sanity" in groups:
        for method in cfg.methods:
            e = ci(per_cloud[(method, "sanity")]["cascading_spearman"])
            if e["low"] is None:
                e["verdict_certain"] = None
            else:
                e["verdict_certain"] = bool(e["low"] > cfg.sanity_threshold or e["high"] <= cfg.sanity_threshold)
            sanity_ci[method] = e
    return vs_random, sanity_ci


def _finite(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


# --------------------------------------------------------------------------------------------- data helper
def alternate_sampling(spec: str, dataset, *, split, num_points: int, seed: int = 0, limit=None):
    """A second sampling of the same shapes, for the resampling-consistency metric.

    * Data whose clouds have more points than used (``dataset.meta["source_points"] > num_points``): the
      same spec loaded again with ``sampling="random"`` and seed ``seed + 1``.
    * ShapeParts without an explicit ``points`` option: regenerated with twice the points (the generator's
      shape and label streams do not depend on the point count, so the shapes are the same) and subsampled
      at random to ``num_points``.

    Both are accepted only when labels (and names, when present) match the dataset cloud by cloud.

    Args:
        spec: the data spec of ``dataset``.
        dataset: the benchmark's dataset (from :func:`pointlens.data.load_dataset`).
        split, num_points, seed, limit: the arguments ``dataset`` was loaded with.

    Returns:
        ``(alt_points (M, num_points, 3) float32 or None, note str)``.
    """
    from pointlens.data import load_dataset
    from pointlens.data.spec import parse_spec

    kind, _, options = parse_spec(spec)
    source = int(dataset.meta.get("source_points") or dataset.num_points)
    if source > num_points:
        alt_spec, how = spec, f"a second random subsample of the {source} source points (seed {seed + 1})"
    elif kind == "shapeparts" and "points" not in options:
        sep = "," if ":" in spec else ":"
        alt_spec = f"{spec}{sep}points={2 * num_points}"
        how = f"ShapeParts regenerated with {2 * num_points} points, random subsample (seed {seed + 1})"
    else:
        return None, "not available: the clouds have no more points than used"
    alt = load_dataset(
        alt_spec, split=split, num_points=num_points, sampling="random", seed=seed + 1, limit=limit
    )
    same = len(alt) == len(dataset) and np.array_equal(np.asarray(alt.labels), np.asarray(dataset.labels))
    if same and dataset.names is not None and alt.names is not None:
        same = np.array_equal(np.asarray(alt.names), np.asarray(dataset.names))
    if not same:
        return None, "not available: the second sampling does not match the clouds one by one"
    return alt.points, how


# --------------------------------------------------------------------------------------------- outputs
def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "pass" if v else "**FAIL** ✗"
    return f"{v:.3f}"


def table_rows_csv(table: dict) -> str:
    """The table as CSV text (header ``method,<columns>``; floats with full precision, empty = n/a)."""
    cols = ["method"] + list(table["columns"])
    lines = [",".join(cols)]
    for row in table["rows"]:
        cells = []
        for c in cols:
            v = row.get(c)
            cells.append(
                ""
                if v is None
                else (
                    str(v).lower()
                    if isinstance(v, bool)
                    else (repr(float(v)) if isinstance(v, float) else str(v))
                )
            )
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def table_markdown(table: dict) -> str:
    """The table as Markdown: ↑/↓ mark the better direction; a failed sanity check shows ``**FAIL** ✗``."""
    cols = list(table["columns"])
    head = ["method"] + [
        f"{c} {'↑' if table['directions'].get(c) == 'higher' else '↓'}" if c in table["directions"] else c
        for c in cols
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table["rows"]:
        name = row["method"] + (" ✗" if row.get("sanity_pass") is False else "")
        lines.append("| " + " | ".join([name] + [_fmt(row.get(c)) for c in cols]) + " |")
    text = "\n".join(lines) + "\n"
    info = [f"{table['n_clouds']} clouds of {table['n_points']} points; target: {table['target']}."]
    if table.get("mask_fraction") is not None:
        info.append(
            f"Ground-truth mask covers {table['mask_fraction']:.3f} of the points (chance level of "
            "relevance mass / rank accuracy and top-k intersection)."
        )
    if table.get("n_sanity_clouds"):
        info.append(
            f"Sanity metrics on the first {table['n_sanity_clouds']} clouds; ✗ = FAILS the sanity check "
            f"(Spearman after randomising every layer > {table['sanity_threshold']})."
        )
    info += list(table.get("notes", []))
    return text + "\n" + "\n".join(f"- {s}" for s in info) + "\n" + _uncertainty_markdown(table)


def _ci_text(e: dict, signed: bool = True) -> str:
    if e.get("mean") is None:
        return "n/a"
    f = "{:+.3f}" if signed else "{:.3f}"
    if e.get("low") is None:
        return f.format(e["mean"]) + " (1 cloud)"
    return f"{f.format(e['mean'])} [{f.format(e['low'])}, {f.format(e['high'])}]"


def _uncertainty_markdown(table: dict) -> str:
    vs, sanity = table.get("vs_random") or {}, table.get("sanity_ci") or {}
    if not vs and not sanity:
        return ""
    level = round(100 * table.get("ci", {}).get("level", CI_LEVEL))
    cols = [c for c in table["columns"] if any(c in v for v in vs.values())]
    head = ["method"] + [f"{c} − random" for c in cols] + (["cascading_spearman"] if sanity else [])
    lines = ["", f"Against the random row, cloud by cloud: mean difference [{level} % bootstrap interval]; ✓ = the "
             "interval lies on the better side of 0. Cascading Spearman: mean [interval]; ? = the interval "
             "straddles the sanity threshold, so the verdict could change with other clouds.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table["rows"]:
        m = row["method"]
        if m not in vs and m not in sanity:
            continue
        cells = [m]
        for c in cols:
            e = vs.get(m, {}).get(c)
            cells.append("" if e is None else _ci_text(e) + (" ✓" if e.get("better") else ""))
        if sanity:
            e = sanity.get(m)
            cells.append("" if e is None else _ci_text(e, signed=False)
                         + (" ?" if e.get("verdict_certain") is False else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _figure_save(fig, path) -> Path:
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from pointlens.utils.io import atomic_open

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    with atomic_open(path, "wb") as f:
        f.write(buf.getvalue())
    return Path(path)


def plot_heatmap(table: dict, path) -> Path:
    """PNG heat-map of methods x metric columns; colour = rank-free min-max score per column (1 = best method
    for that column, direction-aware), text = the value.

    Args:
        table: the table object of :class:`BenchmarkResult`.
        path: PNG file to write (atomically).

    Returns:
        the path.
    """
    from matplotlib.figure import Figure

    cols = [c for c in table["columns"] if c in table["directions"]]
    methods = [r["method"] for r in table["rows"]]
    vals = np.array(
        [[np.nan if r.get(c) is None else r[c] for c in cols] for r in table["rows"]], dtype=float
    )
    colour = np.full_like(vals, np.nan)
    for j, c in enumerate(cols):
        v = vals[:, j]
        ok = np.isfinite(v)
        if ok.sum() == 0:
            continue
        lo, hi = v[ok].min(), v[ok].max()
        t = np.where(ok, 0.5 if hi <= lo else (v - lo) / max(hi - lo, 1e-300), np.nan)
        colour[:, j] = t if table["directions"][c] == "higher" else 1 - t
    fig = Figure(figsize=(max(6.0, 0.9 * len(cols) + 2), max(3.0, 0.45 * len(methods) + 1.8)))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(np.ma.masked_invalid(colour), cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(cols)), [c.replace("_", "\n") for c in cols], fontsize=7)
    labels = [m + (" ✗" if r.get("sanity_pass") is False else "") for m, r in zip(methods, table["rows"])]
    ax.set_yticks(range(len(methods)), labels, fontsize=8)
    for i in range(len(methods)):
        for j in range(len(cols)):
            ax.text(
                j,
                i,
                "n/a" if not np.isfinite(vals[i, j]) else f"{vals[i, j]:.2f}",
                ha="center",
                va="center",
                fontsize=7,
            )
    ax.set_title("explanation benchmark (green = best in column; ✗ = fails sanity)", fontsize=9)
    fig.tight_layout()
    return _figure_save(fig, path)


def plot_randomisation_curves(curves: dict, path, threshold: float = 0.5) -> Path:
    """PNG of the mean Spearman correlation per randomisation step, one line per method (cascading: left,
    independent: right); step 0 = the trained model (ρ = 1).

    Args:
        curves: :attr:`BenchmarkResult.curves`.
        path: PNG file to write (atomically).
        threshold: the sanity threshold drawn as a dashed line.

    Returns:
        the path.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.4))
    for k, mode in enumerate(("cascading", "independent")):
        ax = fig.add_subplot(1, 2, k + 1)
        layers = []
        for i, (method, c) in enumerate(curves.items()):
            layers = c["layers"]
            ys = [1.0] + [np.nan if v is None else v for v in c[mode]]
            ax.plot(range(len(ys)), ys, marker="o", markersize=3, color=f"C{i % 10}", label=method)
        ax.axhline(threshold, ls="--", color="grey", lw=1)
        ax.set_xticks(range(len(layers) + 1), ["trained"] + list(layers), rotation=60, fontsize=6, ha="right")
        ax.set_ylabel("Spearman ρ with the original explanation")
        ax.set_title(f"{mode} randomisation (top layer first)", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _figure_save(fig, path)


def write_outputs(result: BenchmarkResult, out_dir) -> list[Path]:
    """Write ``table.csv``, ``table.json``, ``table.md``, ``heatmap.png``, ``randomisation_curves.png`` and
    ``randomisation_curves.json`` (rank 0; atomic writes).

    Args:
        result: a rank-0 :class:`BenchmarkResult`.
        out_dir: the run folder.

    Returns:
        the paths written.
    """
    from pointlens.utils.io import save_text

    out = Path(out_dir)
    t = result.table
    paths = [
        save_text(out / "table.csv", table_rows_csv(t)),
        save_json(out / "table.json", t),
        save_text(out / "table.md", table_markdown(t)),
    ]
    if any(c in t["directions"] for c in t["columns"]):
        paths.append(plot_heatmap(t, out / "heatmap.png"))
    if result.curves:
        paths.append(save_json(out / "randomisation_curves.json", result.curves))
        paths.append(
            plot_randomisation_curves(
                result.curves, out / "randomisation_curves.png", result.config.sanity_threshold
            )
        )
    return paths
