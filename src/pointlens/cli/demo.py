"""``pointlens demo``: the main job on built-in ShapeParts data, end to end, with an offline HTML report.

Stages: generate ShapeParts -> train PointNet -> evaluate -> explain the test clouds (PointShift) -> salient-point
dropping curves -> localisation of the discriminative parts -> report.html.
"""

from __future__ import annotations

import time

from pointlens.cli.common import add_parser, print_json, vars_for_config


def register(sub) -> None:
    p = add_parser(sub, "demo", "run the main job on built-in ShapeParts data and write a report",
                   "pointlens demo --out demo_out")
    p.add_argument("--out", default="demo_out", metavar="DIR", help="run folder (default demo_out)")
    p.add_argument("--data", default="shapeparts:n=1000,points=1024",
                   help="data spec (default shapeparts:n=1000,points=1024)")
    p.add_argument("--epochs", type=int, default=10, help="PointNet training epochs (default 10)")
    p.add_argument("--full-size", action="store_true",
                   help="train the full-width PointNet (64-64-64-128-1024) instead of the compact demo one "
                        "(64-128-256); several times slower on a CPU")
    p.add_argument("--explain-clouds", type=int, default=60, help="test clouds to explain and drop (default 60)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--json", action="store_true", help="print the metrics object as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    from pointlens.data import load_dataset
    from pointlens.report.html import Report
    from pointlens.training import TrainConfig, evaluate, train
    from pointlens.utils.io import RunFolder

    t_start = time.perf_counter()
    folder = RunFolder(args.out, "demo", vars_for_config(args), seed=args.seed)
    folder.write_config()
    train_set = load_dataset(args.data, split="train", seed=args.seed)
    test_set = load_dataset(args.data, split="test", seed=args.seed)
    compact = {} if args.full_size else {"channels": (64, 128, 256), "head": (128,)}
    cfg = TrainConfig(model="pointnet", model_kwargs=compact, epochs=args.epochs, seed=args.seed)
    res = train(cfg, train_set, test_set, out_dir=folder.path, device=args.device)
    ev = evaluate(res.model, test_set, device=args.device)
    metrics = {"data": args.data, "train_clouds": len(train_set), "test_clouds": len(test_set),
               "train_seconds": res.train_seconds, "test": ev.to_dict()}

    rep = Report("pointlens demo — PointNet on ShapeParts")
    rep.text("ShapeParts is pointlens's procedural benchmark: twin classes share their body and differ only by "
             "discriminative parts, so we know which points a faithful explanation must highlight.")
    rep.heading("Classifier")
    rep.metrics({"test accuracy": ev.accuracy, "mean-class accuracy": ev.mean_class_accuracy, "test clouds": ev.n,
                 "training seconds": res.train_seconds})
    rep.table([{"class": k, "accuracy": v} for k, v in ev.per_class.items()], caption="per-class test accuracy")
    rep.plotly({"data": [{"type": "scatter", "x": [h["epoch"] for h in res.history],
                          "y": [h.get("test", {}).get("accuracy") for h in res.history], "name": "test"},
                         {"type": "scatter", "x": [h["epoch"] for h in res.history],
                          "y": [h["train_accuracy"] for h in res.history], "name": "train"}],
                "layout": {"xaxis": {"title": {"text": "epoch"}}, "yaxis": {"title": {"text": "accuracy"}}}},
               caption="accuracy per epoch")
    _explanation_stages(args, res.model, test_set, folder, rep, metrics)

    metrics["wall_seconds"] = time.perf_counter() - t_start
    folder.write_metrics(metrics)
    path = rep.write(folder.path)
    if args.json:
        print_json(metrics)
    elif not args.quiet:
        print(f"demo finished in {metrics['wall_seconds']:.0f} s: test accuracy {ev.accuracy:.4f}; "
              f"report {path}")
    return 0


def _explanation_stages(args, model, test_set, folder, rep, metrics) -> None:
    """Explain, drop and localise on the first ``--explain-clouds`` test clouds."""
    import numpy as np
    import torch

    from pointlens.attribution import create_attribution
    from pointlens.metrics.localisation import relevance_mass_accuracy, relevance_rank_accuracy
    from pointlens.perturb.dropping import run_drop_experiment
    from pointlens.report.figures import plot_curves, render_clouds
    from pointlens.utils.io import save_npz

    k = min(args.explain_clouds, len(test_set))
    sub = test_set.subset(np.arange(k))
    points = torch.from_numpy(sub.points)
    labels = torch.from_numpy(sub.labels.astype(np.int64))
    mask = torch.from_numpy(sub.gt_mask) if sub.gt_mask is not None else None
    methods = {"pointshift": create_attribution("pointshift", model, alpha=1),
               "occlusion": create_attribution("occlusion", model),
               "critical": create_attribution("critical", model),
               "random": create_attribution("random", model, seed=args.seed)}

    rep.heading("Where does PointNet look?")
    rep.text("Each score says how much a point supports the true class. Localisation compares the scores with "
             "ShapeParts' ground truth: the discriminative parts, the only evidence that separates twin classes. "
             "Relevance mass accuracy = share of positive relevance on those parts (the random row is the "
             "chance level: the parts' share of the points).")
    rows, scores_all = [], {}
    for name, method in methods.items():
        s = method.attribute(points, target=labels)
        scores_all[name] = s
        if mask is not None:
            rows.append({"method": name,
                         "relevance mass accuracy": float(relevance_mass_accuracy(s, mask).nanmean()),
                         "relevance rank accuracy": float(relevance_rank_accuracy(s, mask).nanmean())})
    save_npz(folder.file("scores.npz"), points=points, labels=labels, **{k2: v for k2, v in scores_all.items()},
             **({"gt_mask": mask} if mask is not None else {}))
    if rows:
        rep.table(rows, caption=f"localisation of the discriminative parts ({k} test clouds)")
        metrics["localisation"] = {r["method"]: {kk: v for kk, v in r.items() if kk != "method"} for r in rows}
    shown = min(4, k)
    names = [test_set.class_names[int(c)] for c in labels[:shown]]
    render_clouds(points[:shown], scores_all["pointshift"][:shown], folder.file("pointshift.png"), titles=names,
                  scale="signed", cmap="coolwarm")
    rep.image("pointshift.png", "PointShift scores (red = supports the class) on the first test clouds")
    if mask is not None:
        render_clouds(points[:shown], mask[:shown].float(), folder.file("ground_truth.png"), titles=names)
        rep.image("ground_truth.png", "ground truth: the discriminative parts")
    rep.cloud(points[0].numpy(), scores_all["pointshift"][0].numpy(),
              caption=f"interactive: PointShift scores on a {names[0]} (red = supports the class)",
              colorscale="RdBu_r", symmetric=True)

    rep.heading("Dropping salient points")
    n = points.shape[1]
    budgets = [b for b in (0, 25, 50, 100, 150, 200) if b < n]
    curves = run_drop_experiment(model, points, labels,
                                 {"pointshift": methods["pointshift"], "random": "random",
                                  "critical": methods["critical"]},
                                 modes=("high", "low"), budgets=budgets, per_step=10, seed=args.seed)
    metrics["drop"] = curves
    plot_curves(curves, folder.file("drop_curves.png"), title="accuracy while dropping points (ShapeParts)")
    rep.image("drop_curves.png", "accuracy vs. number of points deleted: high = most salient first")
    rep.table([{"curve": c, **{str(b): a for b, a in v.items()}} for c, v in curves.items()],
              caption="accuracy per budget")
