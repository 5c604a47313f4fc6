"""``pointlens train``: train a classifier on a data spec and write a resumable run folder."""

from __future__ import annotations

import time

from pointlens.cli.common import (
    add_data_options,
    add_output_options,
    add_parser,
    add_seed_device,
    parse_option,
    print_json,
    vars_for_config,
)


def register(sub) -> None:
    p = add_parser(sub, "train", "train a classifier: point clouds (PointNet, PointNet++, DGCNN) or images (cnn)",
                   "pointlens train --model pointnet --data shapeparts --epochs 30 --out runs/pointnet\n"
                   "  pointlens train --model cnn --data digitscenes --out runs/cnn")
    p.add_argument("--model", default="pointnet",
                   help="model name: pointnet, pointnet2, dgcnn (points) or cnn (images) (default pointnet)")
    add_data_options(p, split_default="train")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 30; 8 for cnn)")
    p.add_argument("--batch-size", type=int, default=32, help="clouds per step (default 32)")
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate, cosine decay (default 1e-3; 2e-3 for cnn)")
    p.add_argument("--no-augment", action="store_true",
                   help="disable jitter/scale/shift augmentation (point clouds; images are never augmented)")
    p.add_argument("--rotate", action="store_true", help="add random up-axis rotation to the augmentation")
    p.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                   help="extra model option, e.g. k=10 or dropout=0.5 (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    add_seed_device(p)
    add_output_options(p)
    p.set_defaults(func=run)


def parse_model_options(items: list[str]) -> dict:
    """``["k=10", "dropout=0.5"]`` -> ``{"k": 10, "dropout": 0.5}`` (ints, floats, booleans, strings)."""
    return dict(parse_option(item, "--model-option") for item in items)


# defaults per model where they differ from the point models' (measured: BENCHMARKS.md, issue 13)
MODEL_DEFAULTS = {"cnn": {"epochs": 8, "lr": 2e-3}}
DEFAULTS = {"epochs": 30, "lr": 1e-3}


def run(args) -> int:
    from pointlens.data import load_dataset
    from pointlens.training import TrainConfig, evaluate, train
    from pointlens.training import distributed as D
    from pointlens.utils.io import RunFolder

    for key, value in {**DEFAULTS, **MODEL_DEFAULTS.get(args.model, {})}.items():
        if getattr(args, key) is None:
            setattr(args, key, value)  # config.json records the value used
    aug = {} if args.no_augment else {"rotate": args.rotate, "jitter": True, "scale": True, "shift": True}
    cfg = TrainConfig(model=args.model, model_kwargs=parse_model_options(args.model_option), epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, seed=args.seed, augment=aug)
    cfg.validate()
    common = dict(num_points=args.points, sampling=args.sampling, seed=args.seed)
    train_set = load_dataset(args.data, split="train" if args.split == "train" else args.split,
                             limit=args.limit, **common)
    test_set = load_dataset(args.data, split="test", **common) if args.split == "train" else None
    if test_set is not None and len(test_set) == 0:
        test_set = None
    D.init_from_env(args.device)  # under torchrun: DDP, rank 0 writes the run folder and prints
    folder = RunFolder(args.out, "train", vars_for_config(args), seed=args.seed)
    if D.is_main():
        folder.write_config()
    t0 = time.perf_counter()
    result = train(cfg, train_set, test_set, out_dir=folder.path, resume=args.resume, device=args.device)
    metrics = {"model": args.model, "epochs": cfg.epochs, "train_clouds": len(train_set),
               "train_seconds": result.train_seconds, "wall_seconds": time.perf_counter() - t0,
               "clouds_per_second": len(train_set) * cfg.epochs / max(result.train_seconds, 1e-9)}
    if test_set is not None:
        ev = evaluate(result.model, test_set, device=args.device)
        metrics["test"] = ev.to_dict()
    metrics["history"] = result.history
    metrics["class_names"] = list(train_set.class_names)  # the report's model card
    metrics["model_config"] = getattr(result.model, "config", {"name": args.model})
    metrics["parameters"] = sum(p.numel() for p in result.model.parameters())
    metrics["world_size"] = D.world()[1]
    if not D.is_main():
        return 0
    folder.write_metrics(metrics)
    if args.json:
        print_json({k: v for k, v in metrics.items() if k != "history"})
    elif not args.quiet:
        test = metrics.get("test", {})
        score = (f"; test mAP {test['map']:.4f}, mean F1 {test['mean_f1']:.4f}" if "map" in test else
                 f"; test accuracy {test['accuracy']:.4f}" if "accuracy" in test else "")
        print(f"trained {args.model} for {cfg.epochs} epochs in {result.train_seconds:.0f} s" + score
              + f"; run folder {folder.path}")
    return 0
