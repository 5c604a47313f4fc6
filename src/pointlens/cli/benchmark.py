"""``pointlens benchmark``: every attribution method x every explanation metric, resumable, torchrun-sharded.

A thin layer over :func:`pointlens.benchmark.run_benchmark`: loads the checkpoint and the data, runs the
benchmark (resuming finished cells in ``--out``), and on rank 0 writes ``table.csv``, ``table.json``,
``table.md``, ``heatmap.png``, ``randomisation_curves.png``, ``config.json`` and ``metrics.json``.
"""

from __future__ import annotations

import sys
import time

from pointlens.cli import common
from pointlens.errors import bad_argument

EXAMPLE = (
    "pointlens benchmark --checkpoint runs/pointnet/checkpoint.pt --data shapeparts --split test "
    "--limit 200 --methods default --metrics all --out runs/bench   "
    "(scale out: torchrun --nproc-per-node 2 -m pointlens.cli.main benchmark ...)"
)


def register(sub) -> None:
    """Add ``pointlens benchmark``."""
    from pointlens.cli.common import add_checkpoint_options

    p = common.add_parser(
        sub,
        "benchmark",
        "every attribution method x every explanation metric: a table, resumable",
        EXAMPLE,
        description="Score the clouds with every method and evaluate localisation, faithfulness, complexity, "
        "robustness and sanity metrics. Finished cells are saved in OUT/cells and reused when the "
        "same command is run again; under torchrun each process takes a shard of the clouds and "
        "rank 0 writes the table (equal to the single-process table). See docs/benchmark.md.",
    )
    add_checkpoint_options(p)
    common.add_data_options(p, split_default="test")
    p.set_defaults(limit=200)
    p.add_argument(
        "--methods",
        default="default",
        metavar="default|all|A,B",
        help="methods: default (pointshift, gradient, gradxinput, ig, occlusion, critical, gradcam, "
        "random), all (every registered method) or a comma-separated list; random is always "
        "added as the reference row",
    )
    p.add_argument(
        "--metrics",
        default="all",
        metavar="all|M1,M2",
        help="metric groups (localisation, faithfulness, complexity, robustness, sanity) or column "
        "names, comma separated (default all)",
    )
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="METHOD.KEY=VALUE",
        help="a method option, e.g. ig.steps=32 (repeatable)",
    )
    p.add_argument(
        "--target",
        default="label",
        choices=["label", "predicted"],
        help="class to explain: the true label or the model's prediction (default label)",
    )
    p.add_argument(
        "--sanity-clouds", type=int, default=32, help="clouds used by the sanity metrics (default 32)"
    )
    p.add_argument(
        "--sanity-threshold",
        type=float,
        default=0.5,
        help="a method fails the sanity check when its Spearman after randomising every layer is "
        "above this (default 0.5)",
    )
    p.add_argument("--chunk-size", type=int, default=8, help="clouds per work chunk (default 8)")
    p.add_argument(
        "--deletion-steps", type=int, default=10, help="steps of deletion/insertion curves (default 10)"
    )
    p.add_argument(
        "--fc-subsets", type=int, default=32, help="subsets of the faithfulness correlation (default 32)"
    )
    p.add_argument(
        "--sensitivity-samples", type=int, default=4, help="samples of max-sensitivity (default 4)"
    )
    p.add_argument(
        "--sensitivity-radius",
        type=float,
        default=0.01,
        help="jitter radius of max-sensitivity (default 0.01)",
    )
    p.add_argument("--restart", action="store_true", help="discard the cached cells in --out and start over")
    common.add_seed_device(p)
    common.add_output_options(p)
    p.set_defaults(func=run)


def parse_method_options(items: list[str]) -> dict:
    """``["ig.steps=32", "rise.n_masks=128"]`` -> ``{"ig": {"steps": 32}, "rise": {"n_masks": 128}}``."""
    from pointlens.cli.common import parse_option

    out: dict = {}
    for item in items:
        head = item.split("=", 1)[0]
        if "." not in head or "=" not in item:
            raise bad_argument("--option", item, "METHOD.KEY=VALUE, e.g. ig.steps=32")
        method, rest = item.split(".", 1)
        key, value = parse_option(rest)
        out.setdefault(method.strip(), {})[key] = value
    return out


def run(args) -> int:
    """Run the benchmark; rank 0 writes the run folder and prints the table (or ``--json``)."""
    from pointlens.benchmark import BenchmarkConfig, alternate_sampling, run_benchmark, write_outputs
    from pointlens.cli.common import POINTS_ONLY, load_model_and_data
    from pointlens.training import distributed as D
    from pointlens.utils.io import RunFolder

    rank, world = D.init_from_env(args.device)
    cfg = BenchmarkConfig(
        methods=args.methods,
        metrics=args.metrics,
        method_options=parse_method_options(args.option),
        seed=args.seed,
        chunk_size=args.chunk_size,
        target=args.target,
        sanity_clouds=args.sanity_clouds,
        sanity_threshold=args.sanity_threshold,
        deletion_steps=args.deletion_steps,
        fc_subsets=args.fc_subsets,
        sensitivity_samples=args.sensitivity_samples,
        sensitivity_radius=args.sensitivity_radius,
    ).validate()
    if args.limit is not None and args.limit < 1:
        raise bad_argument("--limit", args.limit, "a positive integer")
    loaded, dataset, device = load_model_and_data(args, POINTS_ONLY)
    loaded.model.eval()
    alt, alt_note = (None, "not requested")
    if "robustness" in cfg.groups():
        split = None if args.split in (None, "all") else args.split
        alt, alt_note = alternate_sampling(
            args.data, dataset, split=split, num_points=args.points, seed=args.seed, limit=args.limit
        )
    t0 = time.perf_counter()
    try:
        result = run_benchmark(
            loaded.model, dataset, cfg, out_dir=args.out, alt_points=alt, restart=args.restart, device=device
        )
    finally:
        if world > 1:
            import torch.distributed as dist

            D.barrier()
            dist.destroy_process_group()
    seconds = time.perf_counter() - t0
    if rank != 0:
        return 0
    config = {k: v for k, v in vars(args).items() if k != "func"}
    config.update(world_size=world, resampling=alt_note)
    folder = RunFolder(args.out, "benchmark", config, seed=args.seed)
    folder.write_config()
    paths = write_outputs(result, folder.path)
    folder.write_metrics(
        {
            "table": result.table,
            "wall_seconds": seconds,
            "world_size": world,
            "computed_cells": result.computed,
            "reused_cells": result.reused,
            "cell_seconds_rank0": result.seconds,
            "resampling": alt_note,
            "class_names": list(dataset.class_names),
        }
    )
    if args.json:
        common.print_json(result.table)
    elif not args.quiet:
        from pointlens.benchmark import table_markdown

        sys.stdout.write(table_markdown(result.table))
        sys.stdout.write(
            f"\n{len(result.computed)} cells computed, {len(result.reused)} reused, "
            f"{seconds:.0f} s on {world} process(es); wrote {', '.join(p.name for p in paths)} "
            f"in {folder.path}\n"
        )
    return 0
