"""``pointlens demo``: the main job on built-in ShapeParts data, end to end, with an offline HTML report.

Stages: generate ShapeParts -> train PointNet -> evaluate -> explain the test clouds (PointShift) -> salient-point
dropping curves -> localisation of the discriminative parts -> report.html.
"""

from __future__ import annotations

import time

from pointlens.cli.common import add_parser, print_json
from pointlens.cli.train import vars_for_config


def register(sub) -> None:
    p = add_parser(sub, "demo", "run the main job on built-in ShapeParts data and write a report",
                   "pointlens demo --out demo_out")
    p.add_argument("--out", default="demo_out", metavar="DIR", help="run folder (default demo_out)")
    p.add_argument("--data", default="shapeparts:n=1200,points=1024",
                   help="data spec (default shapeparts:n=1200,points=1024)")
    p.add_argument("--epochs", type=int, default=12, help="PointNet training epochs (default 12)")
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
    cfg = TrainConfig(model="pointnet", epochs=args.epochs, seed=args.seed)
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
    """Explain, drop and localise on the first ``--explain-clouds`` test clouds (filled as capabilities land)."""
