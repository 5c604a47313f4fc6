"""``pointlens evaluate``: accuracy, mean-class accuracy, per-class accuracy and confusion of a checkpoint."""

from __future__ import annotations

from pointlens.cli.common import add_data_options, add_parser, print_json
from pointlens.cli.train import vars_for_config


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
    p.set_defaults(func=run)


def add_checkpoint_options(p) -> None:
    """``--checkpoint PATH`` and ``--checkpoint-format pointlens|learning3d``."""
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="model checkpoint file")
    p.add_argument("--checkpoint-format", default="pointlens", choices=["pointlens", "learning3d"],
                   help="layout of the checkpoint (default pointlens)")


def load_model_for_data(args, data):
    """Load ``--checkpoint`` and check it fits ``data`` (same class count); returns the LoadedCheckpoint."""
    from pointlens.errors import CheckpointError
    from pointlens.models import load_checkpoint

    ck = load_checkpoint(args.checkpoint, format=args.checkpoint_format, device=args.device)
    n_model = len(ck.class_names) if ck.class_names else ck.config.get("num_classes")
    if n_model is not None and n_model != data.num_classes:
        raise CheckpointError(f"--checkpoint: {args.checkpoint} predicts {n_model} classes but --data has "
                              f"{data.num_classes}; use a checkpoint trained on this data's classes")
    return ck


def run(args) -> int:
    from pointlens.data import load_dataset
    from pointlens.training import evaluate
    from pointlens.utils.io import RunFolder

    split = None if args.split == "all" else args.split
    data = load_dataset(args.data, split=split, num_points=args.points, sampling=args.sampling, limit=args.limit)
    ck = load_model_for_data(args, data)
    ev = evaluate(ck.model, data, batch_size=args.batch_size, device=args.device)
    metrics = ev.to_dict()
    metrics["class_names"] = list(data.class_names)
    if ck.class_names and list(ck.class_names) != list(data.class_names):
        metrics["warning"] = "the checkpoint's class names differ from the data's (same count, compared by index)"
    if args.out:
        folder = RunFolder(args.out, "evaluate", vars_for_config(args))
        folder.write_config()
        folder.write_metrics(metrics)
    if args.json:
        print_json(metrics)
    else:
        print(f"accuracy {ev.accuracy:.4f}  mean-class accuracy {ev.mean_class_accuracy:.4f}  n {ev.n}")
    return 0
