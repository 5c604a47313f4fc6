"""``pointlens autoencoder train``: train generative AM's point autoencoder and write a resumable run folder."""

from __future__ import annotations

import time

from pointlens.cli.common import add_data_options, add_output_options, add_seed_device, print_json, vars_for_config


def register(sub) -> None:
    p = sub.add_parser("autoencoder", help="point autoencoder for generative activation maximisation",
                       description="point autoencoder for generative activation maximisation")
    inner = p.add_subparsers(dest="action", metavar="<action>")
    from pointlens.cli.common import add_parser

    t = add_parser(inner, "train", "train the point autoencoder (PointNet encoder, 128-d latent, MLP decoder, "
                   "Chamfer loss) on real clouds",
                   "pointlens autoencoder train --data shapeparts --points 1024 --epochs 40 --out runs/ae")
    add_data_options(t, split_default="train")
    t.add_argument("--epochs", type=int, default=40, help="training epochs (default 40)")
    t.add_argument("--batch-size", type=int, default=32, help="clouds per step (default 32, as the paper)")
    t.add_argument("--lr", type=float, default=5e-4, help="Adam learning rate (default 5e-4, as the paper)")
    t.add_argument("--latent", type=int, default=128, help="latent size (default 128)")
    t.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    add_seed_device(t)
    add_output_options(t)
    t.set_defaults(func=run_train)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_train(args) -> int:
    import torch

    from pointlens.cli.common import POINTS_ONLY, load_data_for
    from pointlens.data import load_dataset
    from pointlens.maximize.autoencoder import AEConfig, evaluate_autoencoder, train_autoencoder
    from pointlens.utils.io import RunFolder
    from pointlens.utils.validate import check_int

    check_int("--latent", args.latent, minimum=1)
    train_set = load_data_for(args, POINTS_ONLY)
    test = None
    if args.split == "train":
        try:
            test = load_dataset(args.data, split="test", num_points=args.points, sampling=args.sampling,
                                seed=args.seed)
        except Exception:  # noqa: BLE001 - data without a test split trains without a test loss
            test = None
        if test is not None and len(test) == 0:
            test = None
    cfg = AEConfig(num_points=args.points, latent=args.latent, epochs=args.epochs, batch_size=args.batch_size,
                   lr=args.lr, seed=args.seed, data=args.data)
    folder = RunFolder(args.out, "autoencoder train", vars_for_config(args), seed=args.seed)
    folder.write_config()
    t0 = time.perf_counter()
    test_pts = torch.from_numpy(test.points) if test is not None else None
    model, history = train_autoencoder(cfg, torch.from_numpy(train_set.points), test_points=test_pts,
                                       out_dir=folder.path, resume=args.resume, device=args.device)
    metrics = {"epochs": cfg.epochs, "train_clouds": len(train_set), "points": cfg.num_points,
               "latent": cfg.latent, "final_loss": history[-1]["loss"] if history else None,
               "train_seconds": sum(h["seconds"] for h in history), "wall_seconds": time.perf_counter() - t0,
               "history": history}
    if test_pts is not None:
        metrics["test_loss"] = evaluate_autoencoder(model, test_pts, device=args.device)
    folder.write_metrics(metrics)
    if args.json:
        print_json({k: v for k, v in metrics.items() if k != "history"})
    elif not args.quiet:
        print(f"trained the autoencoder for {cfg.epochs} epochs in {metrics['train_seconds']:.0f} s; "
              f"Chamfer loss {metrics['final_loss']:.5f}; run folder {folder.path}")
    return 0
