"""``pointlens explainer train|apply|evaluate``: trained explainer networks (Stalder et al.) for point clouds."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from pointlens.cli.common import (
    add_data_options,
    add_output_options,
    add_parser,
    add_seed_device,
    parse_option,
    print_json,
    vars_for_config,
)
from pointlens.errors import bad_argument

TRAIN_EXAMPLE = ("pointlens explainer train --classifier runs/scenes/checkpoint.pt --data shapeparts:scene=1,n=1500 "
                 "--points 512 --epochs 20 --out runs/explainer")
APPLY_EXAMPLE = ("pointlens explainer apply --explainer runs/explainer --data shapeparts:scene=1,n=1500 "
                 "--points 512 --split test --limit 8 --out runs/explainer_apply")
EVAL_EXAMPLE = ("pointlens explainer evaluate --explainer runs/explainer --rtis runs/rtis "
                "--data shapeparts:scene=1,n=1500 --points 512 --split test --methods explainer,rtis,pointshift,"
                "ig,gradcam,random --out runs/explainer_eval --json")
DEFAULT_METHODS = "explainer,rtis,pointshift,ig,occlusion-knn,rise,gradcam,random"


def register(sub) -> None:
    p = add_parser(sub, "explainer", "train, apply and evaluate explainer networks (one forward pass per cloud)",
                   TRAIN_EXAMPLE,
                   description="Trained explainers (Stalder et al., NeurIPS 2022) for point-cloud classifiers: "
                               "'train' learns per-class point masks for a frozen classifier, 'apply' writes "
                               "masks and PNGs, 'evaluate' scores them beside attribution baselines. "
                               "See docs/explainer.md.")
    subs = p.add_subparsers(dest="action", metavar="<action>")
    p.set_defaults(func=lambda args: _no_action(p))

    t = add_parser(subs, "train", "train an explainer (or the RTIS baseline) for a classifier", TRAIN_EXAMPLE)
    _classifier_options(t, required=True)
    add_data_options(t, split_default="train")
    t.add_argument("--objective", default="stalder", choices=["stalder", "rtis"],
                   help="stalder (Stalder et al.) or rtis (Dabkowski & Gal's real-time saliency) (default stalder)")
    t.add_argument("--network", default="pointnet-seg", choices=["pointnet-seg", "dgcnn-seg"],
                   help="explainer backbone (default pointnet-seg)")
    t.add_argument("--network-option", action="append", default=[], metavar="KEY=VALUE",
                   help="network option, e.g. k=16 (repeatable)")
    t.add_argument("--preset", default="vgg16", choices=["vgg16", "resnet50"],
                   help="the paper's loss weights for the stalder objective (default vgg16)")
    t.add_argument("--weight", action="append", default=[], metavar="KEY=VALUE",
                   help="override one loss weight, e.g. entropy=3 or a_max=0.4 (repeatable)")
    t.add_argument("--k", type=int, default=10, help="neighbours of the smoothness graph (default 10)")
    t.add_argument("--epochs", type=int, default=30, help="most epochs (default 30)")
    t.add_argument("--batch-size", type=int, default=16, help="clouds per step (default 16)")
    t.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    t.add_argument("--val-fraction", type=float, default=0.1, help="validation share of the clouds (default 0.1)")
    t.add_argument("--patience", type=int, default=5, help="early stopping patience in epochs (default 5)")
    t.add_argument("--target", default="label", choices=["label", "prediction"],
                   help="single-label data: explain the label or the prediction (default label)")
    t.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    add_seed_device(t)
    add_output_options(t)
    t.set_defaults(func=run_train)

    a = add_parser(subs, "apply", "write an explainer's per-class masks (.npz) and PNGs", APPLY_EXAMPLE)
    a.add_argument("--explainer", required=True, metavar="DIR", help="explainer run folder (or explainer.pt)")
    add_data_options(a, split_default="test")
    a.add_argument("--batch-size", type=int, default=32, help="clouds per forward pass (default 32)")
    a.add_argument("--png", type=int, default=4, help="clouds to render as PNG (default 4; 0 = none)")
    add_seed_device(a)
    add_output_options(a)
    a.set_defaults(func=run_apply)

    e = add_parser(subs, "evaluate", "mask metrics of the explainer, RTIS and attribution baselines", EVAL_EXAMPLE)
    e.add_argument("--explainer", required=True, metavar="DIR", help="explainer run folder (or explainer.pt)")
    e.add_argument("--rtis", default=None, metavar="DIR", help="RTIS explainer run folder (for method rtis)")
    _classifier_options(e, required=False)
    add_data_options(e, split_default="test")
    e.add_argument("--methods", default=None,
                   help=f"comma-separated methods (default {DEFAULT_METHODS}; rtis only with --rtis)")
    e.add_argument("--method-option", action="append", default=[], metavar="METHOD:KEY=VALUE",
                   help="an attribution option, e.g. rise:samples=2000 or ig:steps=16 (repeatable)")
    e.add_argument("--target", default="label", choices=["label", "prediction"],
                   help="single-label data: the present class is the label or the prediction (default label)")
    e.add_argument("--batch-size", type=int, default=16, help="clouds per call (default 16)")
    add_seed_device(e)
    add_output_options(e)
    e.set_defaults(func=run_evaluate)


def _no_action(p) -> int:
    p.print_help()
    return 2


def _classifier_options(p, required: bool) -> None:
    p.add_argument("--classifier", required=required, metavar="CKPT",
                   help="classifier checkpoint" + ("" if required else " (default: the one the explainer was "
                                                                          "trained for)"))
    p.add_argument("--checkpoint-format", default=None, choices=["pointlens", "learning3d"],
                   help="checkpoint format (default pointlens, or the explainer's)")


def _load_classifier(args, dataset, device):
    from pointlens.cli.common import check_classes, load_checkpoint_for

    args.checkpoint = args.classifier
    if args.checkpoint_format is None:
        args.checkpoint_format = "pointlens"
    loaded = load_checkpoint_for(args)
    check_classes(args, loaded, dataset, device)
    return loaded.model.eval()


def _options(items, name):
    """``KEY=VALUE`` options; a VALUE in brackets is a JSON list (``local=[64,128]``)."""
    import json

    out = {}
    for item in items:
        key, value = parse_option(item, name)
        if isinstance(value, str) and value.startswith("["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise bad_argument(name, item, "KEY=[a,b,...] with numbers, e.g. local=[64,128]") from None
        out[key] = value
    return out


def run_train(args) -> int:
    from pointlens.cli.common import load_data_for
    from pointlens.explainer import ExplainerConfig, train_explainer
    from pointlens.utils.io import RunFolder

    cfg = ExplainerConfig(objective=args.objective, network=args.network,
                          network_kwargs=_options(args.network_option, "--network-option"), preset=args.preset,
                          weights=_options(args.weight, "--weight"), k=args.k, epochs=args.epochs,
                          batch_size=args.batch_size, lr=args.lr, val_fraction=args.val_fraction,
                          patience=args.patience, seed=args.seed, target=args.target).validate()
    from pointlens.explainer import create_explainer_network

    create_explainer_network(cfg.network, 2, **cfg.network_kwargs)  # bad network options fail before loading
    data = load_data_for(args)
    classifier = _load_classifier(args, data, args.device)
    if args.k >= data.num_points:
        raise bad_argument("--k", args.k, f"fewer than the {data.num_points} points per cloud")
    folder = RunFolder(args.out, "explainer train", vars_for_config(args), seed=args.seed)
    folder.write_config()
    t0 = time.perf_counter()
    meta = {"classifier": str(Path(args.classifier).resolve()), "checkpoint_format": args.checkpoint_format,
            "data": args.data, "points": args.points}
    res = train_explainer(cfg, classifier, data, out_dir=folder.path, resume=args.resume, device=args.device,
                          meta=meta)
    metrics = {"objective": cfg.objective, "network": cfg.network, "epochs_run": len(res.history),
               "best_epoch": res.best_epoch, "best_val_loss": res.best_val, "stopped_early": res.stopped_early,
               "train_seconds": res.train_seconds, "wall_seconds": time.perf_counter() - t0,
               "train_clouds": len(data), "history": res.history}
    folder.write_metrics(metrics)
    if args.json:
        print_json({k: v for k, v in metrics.items() if k != "history"})
    elif not args.quiet:
        print(f"trained {cfg.objective} explainer ({cfg.network}) for {len(res.history)} epochs in "
              f"{res.train_seconds:.0f} s; best validation loss {res.best_val:.4f} at epoch {res.best_epoch}; "
              f"run folder {folder.path}")
    return 0


def run_apply(args) -> int:
    from pointlens.cli.common import load_data_for
    from pointlens.explainer import explain_masks, load_explainer
    from pointlens.utils.io import RunFolder, save_npz
    from pointlens.utils.validate import check_int

    check_int("--png", args.png, minimum=0)
    check_int("--batch-size", args.batch_size, minimum=1)
    ex = load_explainer(args.explainer, device=args.device)
    data = load_data_for(args)
    if data.num_classes != len(ex.class_names):
        raise bad_argument("--data", f"{args.data} ({data.num_classes} classes)",
                           f"data with the explainer's {len(ex.class_names)} classes")
    folder = RunFolder(args.out, "explainer apply", vars_for_config(args), seed=args.seed)
    folder.write_config()
    t0 = time.perf_counter()
    masks = explain_masks(ex.network, data.points, batch_size=args.batch_size, device=args.device)
    sec = time.perf_counter() - t0
    names = data.names if data.names is not None else np.array([str(i) for i in range(len(data))])
    save_npz(folder.file("masks.npz"), masks=masks.numpy(), points=data.points, names=names,
             class_names=np.array(ex.class_names))
    pngs = []
    if args.png:
        from pointlens.report.figures import render_clouds

        k = min(args.png, len(data))
        top = masks[:k].mean(2).argmax(1)  # the class whose mask covers most of the cloud
        for c_rank, (label, scores) in enumerate((("union of classes", masks[:k].amax(1)),
                                                  ("largest class", masks[torch.arange(k), top]))):
            titles = [f"{names[i]}: {label}" + (f" ({ex.class_names[int(top[i])]})" if c_rank else "")
                      for i in range(k)]
            path = folder.file(f"masks_{'union' if c_rank == 0 else 'top_class'}.png")
            render_clouds(data.points[:k], scores.numpy(), path, titles, scale="shared")
            pngs.append(path.name)
    metrics = {"clouds": len(data), "seconds": sec, "clouds_per_second": len(data) / max(sec, 1e-9),
               "mean_mask": float(masks.mean()), "files": ["masks.npz", *pngs]}
    folder.write_metrics(metrics)
    if args.json:
        print_json(metrics)
    elif not args.quiet:
        print(f"masks of {len(data)} clouds in {sec:.2f} s -> {folder.file('masks.npz')}")
    return 0


def _method_options(items) -> dict:
    out: dict = {}
    for item in items:
        head, sep, rest = item.partition(":")
        if not sep or not head.strip():
            raise bad_argument("--method-option", item, "METHOD:KEY=VALUE, e.g. rise:samples=2000")
        k, v = parse_option(rest, "--method-option")
        out.setdefault(head.strip(), {})[k] = v
    return out


def run_evaluate(args) -> int:
    from pointlens.attribution import attribution_class
    from pointlens.cli.common import load_data_for
    from pointlens.explainer import evaluate_methods, load_explainer, table_csv, table_markdown
    from pointlens.explainer.evaluate import NETWORK_METHODS
    from pointlens.metrics.masks import METRIC_NAMES
    from pointlens.utils.io import RunFolder, save_json, save_text

    methods = [m.strip() for m in (args.methods or DEFAULT_METHODS).split(",") if m.strip()]
    if args.methods is None and args.rtis is None:
        methods.remove("rtis")
    if not methods:
        raise bad_argument("--methods", args.methods, "at least one method")
    for m in methods:
        if m not in NETWORK_METHODS:
            attribution_class(m)  # unknown names fail now, with the list of names
    if "rtis" in methods and args.rtis is None:
        raise bad_argument("--methods", "rtis", "rtis together with --rtis DIR (an RTIS explainer run folder)")
    options = _method_options(args.method_option)
    ex = load_explainer(args.explainer, device=args.device)
    networks = {"explainer": ex.network}
    if args.rtis is not None:
        networks["rtis"] = load_explainer(args.rtis, device=args.device).network
    if args.classifier is None:
        args.classifier = ex.meta.get("classifier")
        if not args.classifier:
            raise bad_argument("--classifier", None, "a classifier checkpoint (the explainer does not name one)")
        args.checkpoint_format = args.checkpoint_format or ex.meta.get("checkpoint_format", "pointlens")
    data = load_data_for(args)
    classifier = _load_classifier(args, data, args.device)
    folder = RunFolder(args.out, "explainer evaluate", vars_for_config(args), seed=args.seed)
    folder.write_config()
    torch.manual_seed(args.seed)
    table, masks = evaluate_methods(classifier, data, methods, networks=networks, method_options=options,
                                    target=args.target, batch_size=args.batch_size, device=args.device)
    md = table_markdown(table)
    save_text(folder.file("table.md"), md + "\n")
    save_text(folder.file("table.csv"), table_csv(table))
    save_json(folder.file("table.json"), table)
    report = (f"## Explainer masks on {args.data} ({args.split}, {len(data)} clouds)\n\n"
              "Soft accuracy, MAE and mean IoU (thresholds 0.1..0.9, strict >) against the ground truth of the "
              "present classes; saliency metric (lower is better); class-specific check (share of present-class "
              "pairs where a class's own mask keeps it above the other; 0.5 = not class-specific). "
              "Trivial rows in italics.\n\n" + md + "\n")
    save_text(folder.file("report.md"), report)
    folder.write_metrics({"table": table, "methods": methods, "clouds": len(data)})
    if args.json:
        print_json({name: {k: r[k] for k in METRIC_NAMES} for name, r in table.items()})
    elif not args.quiet:
        print(md)
    return 0
