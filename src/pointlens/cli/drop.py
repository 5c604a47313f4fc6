"""``pointlens drop``: accuracy while salient points are deleted step by step (Zheng et al., ICCV 2019)."""

from __future__ import annotations

import time

import numpy as np
import torch

from pointlens.cli import common
from pointlens.cli.common import POINTS_ONLY, add_checkpoint_options, load_model_and_data, vars_for_config
from pointlens.errors import bad_argument

EXAMPLE = ("pointlens drop --checkpoint ../shared/data/learning3d_pointnet_cls_modelnet40_best_model.t7 "
           "--checkpoint-format learning3d "
           "--data npz:../shared/data/modelnet40_normal_resampled_subset_2048.npz --split test --points 1024 "
           "--methods pointshift,random,critical --mode both --budgets 0,25,50,100,150,200 --per-step 10 "
           "--alpha 1 --json --out runs/drop")
BUDGETS_HELP = "comma-separated non-negative integers in ascending order, e.g. 0,25,50,100,150,200"


def parse_methods(text: str, valid: list[str], name: str = "--methods") -> list[str]:
    """Comma-separated method names -> list (no empties, no repeats, each one valid)."""
    items = [s.strip() for s in str(text).split(",")]
    if not items or any(not s for s in items):
        raise bad_argument(name, text, "comma-separated method names from: " + ", ".join(valid))
    for s in items:
        if s not in valid:
            raise bad_argument(name, s, "comma-separated method names from: " + ", ".join(valid))
    if len(set(items)) != len(items):
        raise bad_argument(name, text, "each method once")
    return items


def parse_budgets(text: str) -> list[int]:
    """``"0,25,50"`` -> ``[0, 25, 50]`` (ascending, non-negative; the bound ``< N`` is checked later)."""
    from pointlens.perturb.dropping import check_budgets

    try:
        values = [int(s.strip()) for s in str(text).split(",")]
    except ValueError:
        raise bad_argument("--budgets", text, BUDGETS_HELP) from None
    return list(check_budgets(values, name="--budgets"))


def register(sub) -> None:
    p = common.add_parser(
        sub, "drop", help="accuracy while the most / least salient points are deleted step by step",
        example=EXAMPLE,
        description="Salient-point dropping (Zheng et al., ICCV 2019): delete points from every cloud in "
                    "steps of --per-step, re-scoring the shrinking cloud before each step with each method "
                    "(target = the TRUE label), and measure the accuracy at every budget. high = most "
                    "important points first, low = least important first. Writes curves.json, curves.csv, "
                    "curves.png, metrics.json, config.json (and dropped.npz with --save-clouds); --json "
                    'prints {"<method>-<mode>": {"<budget>": accuracy}} and nothing else.')
    add_checkpoint_options(p)
    common.add_data_options(p)
    p.add_argument("--methods", default="pointshift,random,critical",
                   help="comma-separated attribution methods (pointlens.attribution names); random = the "
                        "random baseline of the attribution package (uniform scores seeded by --seed and each "
                        "cloud's geometry), scored once on the clean clouds; default pointshift,random,critical")
    p.add_argument("--mode", default="both", choices=["high", "low", "both"],
                   help="drop the highest scores first, the lowest, or both (default both)")
    p.add_argument("--budgets", default="0,25,50,100,150,200",
                   help="numbers of points to drop: " + BUDGETS_HELP + " (default 0,25,50,100,150,200)")
    p.add_argument("--per-step", type=int, default=10, help="points deleted per re-scoring step (default 10)")
    p.add_argument("--alpha", type=float, default=1.0, help="pointshift's power alpha (default 1)")
    p.add_argument("--score-once", default="", metavar="METHODS",
                   help="comma-separated methods scored only once on the clean clouds instead of before "
                        "every step (e.g. critical); default none")
    p.add_argument("--batch-size", type=int, default=64, help="clouds per batch (default 64)")
    p.add_argument("--save-clouds", action="store_true",
                   help="also write the perturbed clouds to dropped.npz")
    common.add_output_options(p)
    common.add_seed_device(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from pointlens.perturb.dropping import ScoreOnce, check_budgets, drop_curve
    from pointlens.report.figures import plot_curves
    from pointlens.utils.io import RunFolder, save_json, save_npz, save_text
    from pointlens.utils.seed import seed_everything
    from pointlens.utils.validate import check_float, check_int

    check_int("--per-step", args.per_step, minimum=1)
    check_int("--batch-size", args.batch_size, minimum=1)
    check_float("--alpha", args.alpha)
    budgets = parse_budgets(args.budgets)
    from pointlens.attribution import list_attributions

    valid = list_attributions()
    methods = parse_methods(args.methods, valid)
    once = parse_methods(args.score_once, methods, "--score-once") if args.score_once.strip() else []
    if "random" in once:
        raise bad_argument("--score-once", args.score_once,
                           "methods other than random (random is always scored once on the clean clouds)")
    modes = ["high", "low"] if args.mode == "both" else [args.mode]

    seed_everything(args.seed)
    loaded, dataset, device = load_model_and_data(args, POINTS_ONLY)
    if dataset.labels.ndim != 1:
        raise bad_argument("--data", f"{args.data} (multi-label)",
                           "single-label data: dropping measures accuracy")
    budgets = list(check_budgets(budgets, dataset.num_points, name="--budgets"))
    model = loaded.model
    points = torch.from_numpy(dataset.points)
    labels = torch.from_numpy(dataset.labels.astype(np.int64))

    curves, timings, clouds = {}, {}, {}
    for name in methods:
        scorer = common.make_attribution(name, model, alpha=args.alpha, seed=args.seed, arg="--methods")
        if name in once or name == "random":
            scorer = ScoreOnce(scorer)
        for mode in modes:
            key = f"{name}-{mode}"
            t0 = time.perf_counter()
            res = drop_curve(model, points, labels, scorer, budgets=budgets, per_step=args.per_step,
                             mode=mode, batch_size=args.batch_size, keep_clouds=args.save_clouds,
                             seed=args.seed, desc=f"drop {key}")
            timings[key] = round(time.perf_counter() - t0, 4)
            curves[key] = {str(b): float(res.accuracy[b]) for b in budgets}
            if args.save_clouds:
                for b in budgets:
                    clouds[f"{key}_{b}"] = res.clouds[b]
                    clouds[f"{key}_{b}_kept"] = res.kept[b]
                clouds[f"{key}_removed"] = res.removed

    folder = RunFolder(args.out, "drop", config=vars_for_config(args), seed=args.seed)
    folder.write_config()
    save_json(folder.file("curves.json"), curves)
    rows = ["curve,method,mode,budget,accuracy"]
    for key, curve in curves.items():
        name, mode = key.rsplit("-", 1)
        rows += [f"{key},{name},{mode},{b},{acc:.6f}" for b, acc in curve.items()]
    save_text(folder.file("curves.csv"), "\n".join(rows) + "\n")
    title = f"Point dropping ({len(points)} clouds, {dataset.num_points} points, {args.per_step} per step)"
    plot_curves(curves, folder.file("curves.png"), title=title)
    if args.save_clouds:
        save_npz(folder.file("dropped.npz"), labels=dataset.labels, budgets=np.asarray(budgets), **clouds)
    folder.write_metrics({
        "curves": curves,
        "n": int(len(points)),
        "num_points": int(dataset.num_points),
        "budgets": budgets,
        "per_step": int(args.per_step),
        "modes": modes,
        "methods": methods,
        "score_once": once,
        "time_s": timings,
    })
    if args.json:
        common.print_json(curves)
    return 0
