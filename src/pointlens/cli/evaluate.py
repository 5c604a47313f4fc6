"""``pointlens evaluate``: accuracy, mean-class accuracy, per-class accuracy and confusion of a checkpoint."""

from __future__ import annotations

from pointlens.cli.common import (
    add_checkpoint_options,
    add_data_options,
    add_parser,
    add_report_option,
    load_model_and_data,
    print_json,
    vars_for_config,
)


def register(sub) -> None:
    p = add_parser(
        sub, "evaluate", "evaluate a classifier checkpoint on a data spec",
        "pointlens evaluate --checkpoint ../shared/data/learning3d_pointnet_cls_modelnet40_best_model.t7 "
        "--checkpoint-format learning3d --data npz:../shared/data/modelnet40_normal_resampled_subset_2048.npz "
        "--split test --points 1024 --json")
    add_checkpoint_options(p)
    add_data_options(p, split_default="test")
    p.add_argument("--batch-size", type=int, default=64, help="clouds per forward pass (default 64)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--out", default=None, metavar="DIR", help="optional run folder (config.json, metrics.json)")
    p.add_argument("--json", action="store_true", help="print the metrics object as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_report_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from pointlens.training import evaluate
    from pointlens.utils.io import RunFolder

    ck, data, device = load_model_and_data(args)
    ev = evaluate(ck.model, data, batch_size=args.batch_size, device=device)
    metrics = ev.to_dict()
    metrics["class_names"] = list(data.class_names)
    metrics["model_config"] = ck.config  # the report's model card: architecture and size
    metrics["parameters"] = sum(p.numel() for p in ck.model.parameters())
    if ck.class_names and list(ck.class_names) != list(data.class_names):
        metrics["warning"] = "the checkpoint's class names differ from the data's (same count, compared by index)"
    if args.out:
        folder = RunFolder(args.out, "evaluate", vars_for_config(args))
        folder.write_config()
        folder.write_metrics(metrics)
    if args.json:
        print_json(metrics)
    elif hasattr(ev, "map"):  # multi-label data (ShapeParts scenes)
        print(f"mAP {ev.map:.4f}  mean F1 {ev.mean_f1:.4f}  exact-match accuracy {ev.accuracy:.4f}  n {ev.n}")
    else:
        print(f"accuracy {ev.accuracy:.4f}  mean-class accuracy {ev.mean_class_accuracy:.4f}  n {ev.n}")
    return 0
