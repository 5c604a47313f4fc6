"""The explanation benchmark: every attribution method x every explanation metric, resumable and sharded.

The package: :mod:`~pointlens.benchmark.config` (what is computed: groups, columns, :class:`BenchmarkConfig`),
:mod:`~pointlens.benchmark.cells` (chunks, seeds, fingerprints, the run folder's state),
:mod:`~pointlens.benchmark.engine` (:func:`run_benchmark`), :mod:`~pointlens.benchmark.tables` (CSV / JSON /
Markdown); its figures are drawn by :mod:`pointlens.report.figures`.

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

from pointlens.benchmark.cells import chunk_ranges, chunk_seed
from pointlens.benchmark.config import (
    DEFAULT_METHOD_OPTIONS,
    DEFAULT_METHODS,
    GROUP_COLUMNS,
    HIGHER_IS_BETTER,
    METRIC_GROUPS,
    BenchmarkConfig,
)
from pointlens.benchmark.engine import BenchmarkResult, alternate_sampling, run_benchmark, shared_faithfulness_drops
from pointlens.benchmark.tables import table_markdown, table_rows_csv, write_outputs
from pointlens.report.figures import plot_heatmap, plot_randomisation_curves

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
