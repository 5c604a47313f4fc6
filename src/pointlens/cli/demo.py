"""``pointlens demo``: the tour. On built-in ShapeParts data it trains a PointNet, explains it with several
methods, runs the dropping experiment and a small benchmark, and writes one offline report of it all.

Each stage writes a sub-run folder in the same format as its command (``train/``, ``explain/``, ``drop/``,
``benchmark/``), so the report (:func:`pointlens.report.build_report`, called by ``cli/main.py`` after the command)
is built from the files alone, like the report of any single run.

Stages still to come plug into :data:`EXTRA_STAGES` (FlowAM samples per class from ``pointlens.maximize``, the
trained explainer's masks from ``pointlens.explainer``): a function ``stage(ctx) -> str | None`` that writes a
sub-run folder ``ctx.out / NAME`` (with ``config.json``) and returns NAME; its report section is a module in
``pointlens/report/sections/``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from pointlens.cli.common import add_parser, add_report_option, print_json, vars_for_config

METHODS = ("pointshift", "gradient", "occlusion", "critical", "random")
BENCH_METHODS = ("pointshift", "gradient", "occlusion", "critical")


@dataclass
class DemoContext:
    """What a demo stage gets: the parsed arguments, the trained model, the data and the demo folder."""

    args: object
    model: object
    train_set: object
    test_set: object
    out: Path
    metrics: dict


def _flowam_stage(ctx) -> str | None:
    """One FlowAM sample per class (pointlens.maximize): what the trained PointNet thinks each class IS.

    Writes ``maximize/`` with ``clouds.npz`` (``clouds (K, P, 3)``, ``classes``, ``probability``) and
    ``flowam_samples.png``; 512 points and 100 steps per class keep the stage under a minute on 2 cores.
    """
    import numpy as np
    import torch

    from pointlens.maximize import flow_samples_per_class
    from pointlens.models.hooks import model_device
    from pointlens.report.figures import render_clouds
    from pointlens.utils.io import RunFolder, save_npz

    args = ctx.args
    steps, n = 100, 512
    run = RunFolder(ctx.out / "maximize", "maximize", {"method": "flow", "samples_per_class": 1, "steps": steps,
                                                      "points": n, "seed": args.seed}, seed=args.seed)
    run.write_config()
    clouds, classes = flow_samples_per_class(ctx.model, ctx.train_set.points, ctx.train_set.labels,
                                             num_classes=ctx.train_set.num_classes, steps=steps, num_points=n,
                                             seed=args.seed)
    with torch.no_grad():
        prob = torch.softmax(ctx.model(clouds.to(model_device(ctx.model))), 1).cpu()
    p_target = prob[torch.arange(len(classes)), torch.tensor(classes)].numpy()
    names = [ctx.train_set.class_names[c] for c in classes]
    save_npz(run.file("clouds.npz"), clouds=clouds.numpy(), classes=np.asarray(classes),
             probability=p_target.astype(np.float64))
    render_clouds(clouds.numpy(), None, run.file("flowam_samples.png"),
                  titles=[f"{name} (p = {p:.2f})" for name, p in zip(names, p_target)], ncols=7)
    run.write_metrics({"classes": names, "target_probability": [float(p) for p in p_target],
                       "success": float(np.mean(prob.argmax(1).numpy() == np.asarray(classes)))})
    ctx.metrics["stage_titles"]["maximize"] = "What the model thinks each class IS (FlowAM, one sample per class)"
    return "maximize"


# Stages added by studies as they land, run after the built-in ones; each returns its sub-folder's name or None.
EXTRA_STAGES: list = [_flowam_stage]

PENDING = [
    "FlowAM samples, one per class (pointlens maximize).",
    "The trained explainer's masks (pointlens explainer): joins this tour as a stage in EXTRA_STAGES "
    "(cli/demo.py) with its report section in report/sections/.",
]


def register(sub) -> None:
    p = add_parser(sub, "demo", "the tour: train, explain, drop and benchmark on built-in ShapeParts, one report",
                   "pointlens demo --out demo_out")
    p.add_argument("--out", default="demo_out", metavar="DIR", help="run folder (default demo_out)")
    p.add_argument("--data", default="shapeparts:n=1000,points=1024",
                   help="data spec (default shapeparts:n=1000,points=1024)")
    p.add_argument("--points", type=int, default=1024, help="points per cloud (default 1024)")
    p.add_argument("--epochs", type=int, default=10, help="PointNet training epochs (default 10)")
    p.add_argument("--full-size", action="store_true",
                   help="train the full-width PointNet (64-64-64-128-1024) instead of the compact demo one "
                        "(64-128-256); several times slower on a CPU")
    p.add_argument("--explain-clouds", type=int, default=60, help="test clouds to explain and drop (default 60)")
    p.add_argument("--bench-clouds", type=int, default=16,
                   help="test clouds of the small benchmark (default 16; 0 skips it)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--json", action="store_true", help="print the metrics object as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_report_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from pointlens.data import load_dataset
    from pointlens.training import TrainConfig, evaluate, train
    from pointlens.utils.io import RunFolder
    from pointlens.utils.validate import check_int

    check_int("--epochs", args.epochs, minimum=1)
    check_int("--points", args.points, minimum=16)
    check_int("--explain-clouds", args.explain_clouds, minimum=1)
    check_int("--bench-clouds", args.bench_clouds, minimum=0)
    t_start = time.perf_counter()
    folder = RunFolder(args.out, "demo", vars_for_config(args), seed=args.seed)
    folder.write_config()
    train_set = load_dataset(args.data, split="train", seed=args.seed, num_points=args.points)
    test_set = load_dataset(args.data, split="test", seed=args.seed, num_points=args.points)
    compact = {} if args.full_size else {"channels": (64, 128, 256), "head": (128,)}
    cfg = TrainConfig(model="pointnet", model_kwargs=compact, epochs=args.epochs, seed=args.seed)

    # stage 1: train (a train run folder: checkpoint, history, metrics with the evaluation for the model card)
    tr = RunFolder(folder.file("train"), "train", {"model": "pointnet", "data": args.data,
                                                   "points": train_set.num_points, "epochs": args.epochs,
                                                   "model_kwargs": compact}, seed=args.seed)
    tr.write_config()
    res = train(cfg, train_set, test_set, out_dir=tr.path, device=args.device)
    ev = evaluate(res.model, test_set, device=args.device)
    tr.write_metrics({"model": "pointnet", "epochs": args.epochs, "train_clouds": len(train_set),
                      "train_seconds": res.train_seconds, "test": ev.to_dict(), "history": res.history,
                      "class_names": list(train_set.class_names),
                      "model_config": getattr(res.model, "config", {"name": "pointnet"}),
                      "parameters": sum(p.numel() for p in res.model.parameters())})
    metrics = {"title": "pointlens demo — PointNet on ShapeParts",
               "summary": "ShapeParts is pointlens's procedural benchmark: twin classes share their body and differ "
                          "only by discriminative parts, so we know which points a faithful explanation must "
                          "highlight. This tour trains a PointNet, explains it with several methods, deletes the "
                          "points they rank highest, and scores every method against random.",
               "data": args.data, "train_clouds": len(train_set), "test_clouds": len(test_set),
               "train_seconds": res.train_seconds, "test": ev.to_dict(), "stages": ["train"],
               "stage_titles": {"train": "Training a PointNet"}, "stage_seconds": {}}
    metrics["stage_seconds"]["train"] = round(time.perf_counter() - t_start, 1)
    ctx = DemoContext(args, res.model, train_set, test_set, folder.path, metrics)
    stages = [("explain", "Where does PointNet look?", _explain_stage),
              ("drop", "Dropping salient points", _drop_stage),
              ("benchmark", "A small explanation benchmark", _benchmark_stage)]
    for name, title, stage in stages:
        t0 = time.perf_counter()
        if stage(ctx) is not None:
            metrics["stages"].append(name)
            metrics["stage_titles"][name] = title
        metrics["stage_seconds"][name] = round(time.perf_counter() - t0, 1)
    for stage in EXTRA_STAGES:
        t0 = time.perf_counter()
        name = stage(ctx)
        if name:
            metrics["stages"].append(name)
            metrics["stage_seconds"][name] = round(time.perf_counter() - t0, 1)
    metrics["pending"] = PENDING[len(EXTRA_STAGES):] if len(EXTRA_STAGES) < len(PENDING) else []
    metrics["wall_seconds"] = time.perf_counter() - t_start
    folder.write_metrics(metrics)
    if args.json:
        print_json(metrics)
    elif not args.quiet:
        print(f"demo finished in {metrics['wall_seconds']:.0f} s: test accuracy {ev.accuracy:.4f}; "
              f"report {folder.file('report.html')}")
    return 0


def _explained_subset(ctx: DemoContext):
    import numpy as np
    import torch

    k = min(ctx.args.explain_clouds, len(ctx.test_set))
    sub = ctx.test_set.subset(np.arange(k))
    return sub, torch.from_numpy(sub.points), torch.from_numpy(sub.labels.astype(np.int64))


def _explain_stage(ctx: DemoContext) -> str:
    """Score the first ``--explain-clouds`` test clouds with every method of :data:`METHODS`; localisation."""
    import numpy as np
    import torch

    from pointlens.attribution import create_attribution
    from pointlens.metrics.localisation import relevance_mass_accuracy, relevance_rank_accuracy
    from pointlens.training.evaluate import predict
    from pointlens.utils.io import RunFolder, save_npz

    args = ctx.args
    sub, points, labels = _explained_subset(ctx)
    mask = torch.from_numpy(sub.gt_mask) if sub.gt_mask is not None else None
    run = RunFolder(ctx.out / "explain", "explain", {"methods": list(METHODS), "data": args.data, "split": "test",
                                                     "limit": len(sub), "target": "true", "alpha": 1.0},
                    seed=args.seed)
    run.write_config()
    scores, loc, seconds = {}, {}, {}
    for name in METHODS:
        opts = {"alpha": 1} if name == "pointshift" else {"seed": args.seed} if name == "random" else {}
        t0 = time.perf_counter()
        s = create_attribution(name, ctx.model, **opts).attribute(points, target=labels)
        seconds[name] = round(time.perf_counter() - t0, 3)
        scores[name] = torch.as_tensor(s).detach().float()
        if mask is not None:
            loc[name] = {"relevance mass accuracy": float(relevance_mass_accuracy(scores[name], mask).nanmean()),
                         "relevance rank accuracy": float(relevance_rank_accuracy(scores[name], mask).nanmean())}
    pred = predict(ctx.model, points, device=args.device).argmax(1).numpy()
    save_npz(run.file("scores.npz"), points=points, labels=labels, predictions=pred,
             class_names=np.asarray([str(c) for c in ctx.test_set.class_names]),
             **{f"scores_{k}": v for k, v in scores.items()}, **({"gt_mask": mask} if mask is not None else {}))
    run.write_metrics({"methods": list(METHODS), "n": len(sub), "num_points": int(points.shape[1]),
                       "localisation": loc, "time_s": seconds})
    ctx.metrics["localisation"] = loc
    return "explain"


def _drop_stage(ctx: DemoContext) -> str:
    """Zheng et al.'s dropping on the explained clouds: pointshift, critical and random, high and low."""
    from pointlens.attribution import create_attribution
    from pointlens.perturb.dropping import run_drop_experiment
    from pointlens.report.figures import plot_curves
    from pointlens.utils.io import RunFolder, save_json

    args = ctx.args
    _, points, labels = _explained_subset(ctx)
    n = points.shape[1]
    budgets = [b for b in (0, 25, 50, 100, 150, 200) if b < n]
    run = RunFolder(ctx.out / "drop", "drop", {"methods": "pointshift,random,critical", "mode": "both",
                                               "budgets": budgets, "per_step": 10, "data": args.data},
                    seed=args.seed)
    run.write_config()
    curves = run_drop_experiment(ctx.model, points, labels,
                                 {"pointshift": create_attribution("pointshift", ctx.model, alpha=1),
                                  "random": "random", "critical": create_attribution("critical", ctx.model)},
                                 modes=("high", "low"), budgets=budgets, per_step=10, seed=args.seed)
    save_json(run.file("curves.json"), curves)
    plot_curves(curves, run.file("curves.png"), title="accuracy while dropping points (ShapeParts)", dpi=200)
    run.write_metrics({"curves": curves, "n": int(len(points)), "num_points": int(n), "budgets": budgets,
                       "per_step": 10, "modes": ["high", "low"]})
    ctx.metrics["drop"] = curves
    return "drop"


def _benchmark_stage(ctx: DemoContext) -> str | None:
    """Every metric for a few methods on ``--bench-clouds`` test clouds (the benchmark command's outputs)."""
    import numpy as np

    from pointlens.benchmark import BenchmarkConfig, run_benchmark, write_outputs
    from pointlens.utils.io import RunFolder

    args = ctx.args
    k = min(args.bench_clouds, len(ctx.test_set))
    if k == 0:
        return None
    data = ctx.test_set.subset(np.arange(k))
    cfg = BenchmarkConfig(methods=BENCH_METHODS, metrics=("all",), seed=args.seed, sanity_clouds=min(8, k),
                          fc_subsets=16, sensitivity_samples=2, deletion_steps=8)
    run = RunFolder(ctx.out / "benchmark", "benchmark", {"methods": ",".join(BENCH_METHODS), "data": args.data,
                                                         "limit": k, "sanity_clouds": cfg.sanity_clouds},
                    seed=args.seed)
    run.write_config()
    t0 = time.perf_counter()
    result = run_benchmark(ctx.model, data, cfg, out_dir=run.path, device=args.device)
    write_outputs(result, run.path)
    run.write_metrics({"table": result.table, "wall_seconds": time.perf_counter() - t0,
                       "class_names": list(data.class_names)})
    return "benchmark"
