"""What a benchmark run computes: the metric groups and their columns, the default methods, and
:class:`BenchmarkConfig` (validated through the attribution registry)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from pointlens.errors import bad_argument
from pointlens.utils.validate import check_choice, check_float, check_int

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
