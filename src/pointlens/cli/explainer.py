"""``pointlens explainer train|apply|evaluate``: trained explainer networks (Stalder et al.) for point clouds and
images (the data's modality picks the masking, the smoothness and the default network; ``--points`` is ignored
for image data)."""

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
from pointlens.errors import InvalidArgumentError, bad_argument

TRAIN_EXAMPLE = ("pointlens explainer train --classifier runs/scenes/checkpoint.pt --data shapeparts:scene=1,n=1500 "
                 "--points 512 --epochs 20 --out runs/explainer")
APPLY_EXAMPLE = ("pointlens explainer apply --explainer runs/explainer --data shapeparts:scene=1,n=1500 "
                 "--points 512 --split test --limit 8 --out runs/explainer_apply")
EVAL_EXAMPLE = ("pointlens explainer evaluate --explainer runs/explainer --rtis runs/rtis "
                "--data shapeparts:scene=1,n=1500 --points 512 --split test --methods explainer,rtis,pointshift,"
                "ig,gradcam,random --out runs/explainer_eval --json")
IMAGE_TRAIN_EXAMPLE = ("pointlens explainer train --classifier runs/digits_cnn/checkpoint.pt --data digitscenes "
                       "--epochs 10 --out runs/digits_explainer")
DEFAULT_METHODS = "explainer,rtis,pointshift,ig,occlusion-knn,rise,gradcam,random"
DEFAULT_IMAGE_METHODS = "explainer,rtis,gradcam,rise,gradient,ig,extremal,igos++"
#: per-class overlays drawn per image by ``apply`` / ``evaluate`` (the present classes, at most this many)
OVERLAY_CLASSES = 3


def register(sub) -> None:
    p = add_parser(sub, "explainer", "train, apply and evaluate explainer networks (one forward pass per cloud)",
                   TRAIN_EXAMPLE,
                   description="Trained explainers (Stalder et al., NeurIPS 2022) for point-cloud and image "
                               "classifiers: 'train' learns per-class point (pixel) masks for a frozen classifier, "
                               "'apply' writes masks and PNGs, 'evaluate' scores them beside attribution baselines. "
                               "The data's modality picks the masking and the default network; --points is "
                               "ignored for image data (digitscenes, voc). Images: " + IMAGE_TRAIN_EXAMPLE
                               + ". See docs/explainer.md.")
    subs = p.add_subparsers(dest="action", metavar="<action>")
    p.set_defaults(func=lambda args: _no_action(p))

    t = add_parser(subs, "train", "train an explainer (or the RTIS baseline) for a classifier", TRAIN_EXAMPLE)
    _classifier_options(t, required=True)
    add_data_options(t, split_default="train")
    t.add_argument("--objective", default="stalder", choices=["stalder", "rtis"],
                   help="stalder (Stalder et al.) or rtis (Dabkowski & Gal's real-time saliency) (default stalder)")
    t.add_argument("--network", default=None, choices=["pointnet-seg", "dgcnn-seg", "unet"],
                   help="explainer backbone (default: pointnet-seg for clouds, unet for images)")
    t.add_argument("--network-option", action="append", default=[], metavar="KEY=VALUE",
                   help="network option, e.g. k=16 (repeatable)")
    t.add_argument("--preset", default="vgg16", choices=["vgg16", "resnet50"],
                   help="the paper's loss weights for the stalder objective (default vgg16)")
    t.add_argument("--weight", action="append", default=[], metavar="KEY=VALUE",
                   help="override one loss weight, e.g. entropy=3 or a_max=0.4 (repeatable)")
    t.add_argument("--k", type=int, default=10, help="clouds: neighbours of the smoothness graph (default 10)")
    t.add_argument("--fill", default="zero", choices=["zero", "grey", "blur"],
                   help="images: what a masked-out pixel becomes: zero (m * x, the paper), grey (0.5) or blur "
                        "(default zero)")
    t.add_argument("--epochs", type=int, default=30, help="most epochs (default 30)")
    t.add_argument("--batch-size", type=int, default=16, help="clouds (images) per step (default 16)")
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
    a.add_argument("--batch-size", type=int, default=32, help="inputs per forward pass (default 32)")
    a.add_argument("--png", type=int, default=4, help="clouds (images) to render as PNG (default 4; 0 = none)")
    add_seed_device(a)
    add_output_options(a)
    a.set_defaults(func=run_apply)

    e = add_parser(subs, "evaluate", "mask metrics of the explainer, RTIS and attribution baselines", EVAL_EXAMPLE)
    e.add_argument("--explainer", required=True, metavar="DIR", help="explainer run folder (or explainer.pt)")
    e.add_argument("--rtis", default=None, metavar="DIR", help="RTIS explainer run folder (for method rtis)")
    _classifier_options(e, required=False)
    add_data_options(e, split_default="test")
    e.add_argument("--methods", default=None,
                   help=f"comma-separated methods (default for clouds {DEFAULT_METHODS}; for images "
                        f"{DEFAULT_IMAGE_METHODS}; rtis only with --rtis)")
    e.add_argument("--method-option", action="append", default=[], metavar="METHOD:KEY=VALUE",
                   help="an attribution option, e.g. rise:samples=2000 or ig:steps=16 (repeatable)")
    e.add_argument("--target", default="label", choices=["label", "prediction"],
                   help="single-label data: the present class is the label or the prediction (default label)")
    e.add_argument("--batch-size", type=int, default=16, help="inputs per call (default 16)")
    e.add_argument("--png", type=int, default=4, help="images: how many to draw with every method's masks "
                   "(default 4; 0 = none)")
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
    from pointlens.explainer import ExplainerConfig, create_explainer_network, train_explainer
    from pointlens.utils.io import RunFolder

    cfg = ExplainerConfig(objective=args.objective, network=args.network,
                          network_kwargs=_options(args.network_option, "--network-option"), preset=args.preset,
                          weights=_options(args.weight, "--weight"), k=args.k, fill=args.fill, epochs=args.epochs,
                          batch_size=args.batch_size, lr=args.lr, val_fraction=args.val_fraction,
                          patience=args.patience, seed=args.seed, target=args.target).validate()
    if cfg.network is not None:  # bad network options fail before loading
        create_explainer_network(cfg.network, 2, **cfg.network_kwargs)
    data = load_data_for(args)
    modality = getattr(data, "modality", "points")
    try:
        cfg = cfg.resolved(modality)
    except InvalidArgumentError as e:  # a network of the other modality: name the CLI option
        raise bad_argument("--network", args.network, f"a network for {modality} data "
                           f"({'unet' if modality == 'image' else 'pointnet-seg or dgcnn-seg'})") from e
    create_explainer_network(cfg.network, 2, **cfg.network_kwargs)
    classifier = _load_classifier(args, data, args.device)
    if modality == "points" and args.k >= data.num_points:
        raise bad_argument("--k", args.k, f"fewer than the {data.num_points} points per cloud")
    folder = RunFolder(args.out, "explainer train", vars_for_config(args), seed=args.seed)
    folder.write_config()
    t0 = time.perf_counter()
    meta = {"classifier": str(Path(args.classifier).resolve()), "checkpoint_format": args.checkpoint_format,
            "data": args.data, "points": args.points if modality == "points" else None}
    res = train_explainer(cfg, classifier, data, out_dir=folder.path, resume=args.resume, device=args.device,
                          meta=meta)
    metrics = {"objective": cfg.objective, "modality": modality, "network": cfg.network,
               "epochs_run": len(res.history), "best_epoch": res.best_epoch, "best_val_loss": res.best_val,
               "stopped_early": res.stopped_early, "train_seconds": res.train_seconds,
               "wall_seconds": time.perf_counter() - t0, "train_inputs": len(data), "history": res.history}
    folder.write_metrics(metrics)
    if args.json:
        print_json({k: v for k, v in metrics.items() if k != "history"})
    elif not args.quiet:
        print(f"trained {cfg.objective} explainer ({cfg.network}) for {len(res.history)} epochs in "
              f"{res.train_seconds:.0f} s; best validation loss {res.best_val:.4f} at epoch {res.best_epoch}; "
              f"run folder {folder.path}")
    return 0


def _check_modality(ex, data, args) -> None:
    mod = getattr(data, "modality", "points")
    if ex.modality != mod:
        raise bad_argument("--data", f"{args.data} ({mod} data)", f"{ex.modality} data: the explainer in "
                           f"{args.explainer} was trained on {ex.modality}")
    if data.num_classes != len(ex.class_names):
        raise bad_argument("--data", f"{args.data} ({data.num_classes} classes)",
                           f"data with the explainer's {len(ex.class_names)} classes")


def overlay_panels(masks: np.ndarray, present: np.ndarray, class_names, k: int):
    """The per-class panels of :func:`pointlens.report.figures.render_image_overlays` for the first ``k`` images:
    ``(k, J, H, W)`` masks of up to :data:`OVERLAY_CLASSES` present classes (NaN = no panel) and their titles."""
    j = max(1, min(OVERLAY_CLASSES, int(present[:k].sum(1).max()) if k else 1))
    h, w = masks.shape[2:]
    panels = np.full((k, j, h, w), np.nan, dtype=np.float32)
    titles = [[""] * j for _ in range(k)]
    for i in range(k):
        for slot, c in enumerate(np.flatnonzero(present[i])[:j]):
            panels[i, slot] = masks[i, c]
            titles[i][slot] = f"class {class_names[c]}"
    return panels, titles


def run_apply(args) -> int:
    from pointlens.cli.common import load_data_for
    from pointlens.explainer import explain_masks, load_explainer, present_classes
    from pointlens.utils.io import RunFolder, save_npz
    from pointlens.utils.validate import check_int

    check_int("--png", args.png, minimum=0)
    check_int("--batch-size", args.batch_size, minimum=1)
    ex = load_explainer(args.explainer, device=args.device)
    data = load_data_for(args)
    _check_modality(ex, data, args)
    folder = RunFolder(args.out, "explainer apply", vars_for_config(args), seed=args.seed)
    folder.write_config()
    t0 = time.perf_counter()
    masks = explain_masks(ex.network, data.inputs, batch_size=args.batch_size, device=args.device)
    sec = time.perf_counter() - t0
    names = data.names if data.names is not None else np.array([str(i) for i in range(len(data))])
    pngs = []
    if ex.modality == "image":
        # the classes of each image's label (multi-label) or its label (single-label): what the overlays show
        present = present_classes(None, data, "label").numpy()
        save_npz(folder.file("masks.npz"), masks=masks.numpy().astype(np.float16), images=data.inputs,
                 present=present, names=names, class_names=np.array(ex.class_names))
        if args.png:
            from pointlens.report.figures import render_image_overlays

            k = min(args.png, len(data))
            panels, titles = overlay_panels(masks.numpy(), present, ex.class_names, k)
            render_image_overlays(data.inputs[:k], panels, folder.file("overlays.png"), titles,
                                  row_titles=[str(n) for n in names[:k]])
            pngs.append("overlays.png")
    else:
        save_npz(folder.file("masks.npz"), masks=masks.numpy(), points=data.points, names=names,
                 class_names=np.array(ex.class_names))
    if args.png and ex.modality == "points":
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
    metrics = {"inputs": len(data), "clouds": len(data), "modality": ex.modality, "seconds": sec,
               "clouds_per_second": len(data) / max(sec, 1e-9), "mean_mask": float(masks.mean()),
               "files": ["masks.npz", *pngs]}
    folder.write_metrics(metrics)
    if args.json:
        print_json(metrics)
    elif not args.quiet:
        print(f"masks of {len(data)} {'images' if ex.modality == 'image' else 'clouds'} in {sec:.2f} s -> "
              f"{folder.file('masks.npz')}")
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


def _check_methods(methods, options: dict, modality: str) -> None:
    """Unknown method names and options fail here, before any work, with one line naming the modality."""
    from pointlens.attribution import attribution_class, check_method
    from pointlens.explainer.evaluate import NETWORK_METHODS

    kw = {} if modality == "points" else {"modality": modality}
    for m in methods:
        if m not in NETWORK_METHODS:
            attribution_class(m, arg="--methods", **kw)  # unknown names fail now, with the list of names
    for m, opts in options.items():
        if m in NETWORK_METHODS:
            raise bad_argument("--method-option", m, "an attribution method (explainer/rtis take no options)")
        check_method(m, opts, arg="--method-option", **kw)


def run_evaluate(args) -> int:
    from pointlens.cli.common import load_data_for
    from pointlens.explainer import evaluate_methods, load_explainer, table_csv, table_markdown
    from pointlens.metrics.masks import METRIC_NAMES
    from pointlens.utils.io import RunFolder, save_json, save_text
    from pointlens.utils.validate import check_int

    check_int("--png", args.png, minimum=0)
    ex = load_explainer(args.explainer, device=args.device)
    default = DEFAULT_IMAGE_METHODS if ex.modality == "image" else DEFAULT_METHODS
    methods = [m.strip() for m in (args.methods or default).split(",") if m.strip()]
    if args.methods is None and args.rtis is None:
        methods.remove("rtis")
    if not methods:
        raise bad_argument("--methods", args.methods, "at least one method")
    options = _method_options(args.method_option)
    _check_methods(methods, options, ex.modality)
    if "rtis" in methods and args.rtis is None:
        raise bad_argument("--methods", "rtis", "rtis together with --rtis DIR (an RTIS explainer run folder)")
    networks = {"explainer": ex.network}
    if args.rtis is not None:
        rt = load_explainer(args.rtis, device=args.device)
        if rt.modality != ex.modality:
            raise bad_argument("--rtis", args.rtis, f"an RTIS explainer trained on {ex.modality} data")
        networks["rtis"] = rt.network
    if args.classifier is None:
        args.classifier = ex.meta.get("classifier")
        if not args.classifier:
            raise bad_argument("--classifier", None, "a classifier checkpoint (the explainer does not name one)")
        args.checkpoint_format = args.checkpoint_format or ex.meta.get("checkpoint_format", "pointlens")
    data = load_data_for(args)
    _check_modality(ex, data, args)
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
    unit = "images" if ex.modality == "image" else "clouds"
    masking = ("masked inputs m * x" if ex.modality == "image" else "masks applied by shifting points to the median "
               "centre")
    report = (f"## Explainer masks on {args.data} ({args.split}, {len(data)} {unit})\n\n"
              "Soft accuracy, MAE and mean IoU (thresholds 0.1..0.9, strict >) against the ground truth of the "
              f"present classes; saliency metric (lower is better; {masking}); class-specific check (share of "
              "present-class pairs where a class's own mask keeps it above the other; 0.5 = not class-specific). "
              "Trivial rows in italics.\n\n" + md + "\n")
    files = ["table.md", "table.csv", "table.json", "report.md"]
    if ex.modality == "image" and args.png:
        from pointlens.explainer import present_classes
        from pointlens.report.figures import render_image_overlays

        k = min(args.png, len(data))
        present = present_classes(classifier, data, args.target, device=args.device).numpy()
        names = data.names if data.names is not None else np.array([str(i) for i in range(len(data))])
        shown = [m for m in table if m not in ("all-0", "all-0.5", "all-1")]
        for i in range(k):
            cls = np.flatnonzero(present[i])[:OVERLAY_CLASSES]
            panels = np.stack([masks[m][i, cls] for m in shown], 1)  # (classes, methods, H, W)
            titles = [[f"{m}: {ex.class_names[c]}" for m in shown] for c in cls]
            name = f"overlays_{i}.png"
            render_image_overlays(np.repeat(data.inputs[i:i + 1], len(cls), 0), panels, folder.file(name), titles,
                                  row_titles=[f"{names[i]}: class {ex.class_names[c]}" for c in cls])
            files.append(name)
            report += f"\n![{names[i]}: every method's mask per present class]({name})\n"
    save_text(folder.file("report.md"), report)
    folder.write_metrics({"table": table, "methods": methods, "inputs": len(data), "clouds": len(data),
                          "modality": ex.modality, "files": files})
    if args.json:
        print_json({name: {k: r[k] for k in METRIC_NAMES} for name, r in table.items()})
    elif not args.quiet:
        print(md)
    return 0
