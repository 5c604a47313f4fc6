"""``pointlens explain``: score every point of some clouds with an attribution method and render them."""

from __future__ import annotations

import time

import numpy as np
import torch

from pointlens.cli import common
from pointlens.errors import bad_argument

EXAMPLE = ("pointlens explain --method pointshift --checkpoint runs/pointnet/checkpoint.pt --data shapeparts "
           "--split test --limit 16 --out runs/explain")


def parse_target(text: str, labels: np.ndarray, num_classes: int):
    """``--target``: ``pred`` -> None, ``true`` -> the labels, an integer -> that class for every cloud."""
    if text == "pred":
        return None, "pred"
    if text == "true":
        if labels.ndim != 1:
            raise bad_argument("--target", text, "pred or a class index (the data is multi-label)")
        return torch.from_numpy(labels.astype(np.int64)), "true"
    try:
        c = int(text)
    except ValueError:
        raise bad_argument("--target", text, f"pred, true or a class index in [0, {num_classes - 1}]") \
            from None
    if not 0 <= c < num_classes:
        raise bad_argument("--target", text, f"pred, true or a class index in [0, {num_classes - 1}]")
    return c, str(c)


# ------------------------------------------------------------------------------------------- the command
def register(sub) -> None:
    p = common.add_parser(sub, "explain", help="score every point of some clouds with an attribution method",
                          example=EXAMPLE,
                          description="Score every point of every cloud with one attribution method (higher "
                                      "= more important for the target class). Writes scores.npz (points, "
                                      "scores, labels, predictions, target), scores.png (the first clouds "
                                      "coloured by score), config.json and metrics.json.")
    p.add_argument("--method", required=True,
                   help="attribution method, e.g. pointshift, gradient, ig, critical")
    common.add_checkpoint_options(p)
    common.add_data_options(p)
    p.add_argument("--target", default="pred",
                   help="class to explain: pred (predicted, default), true (label) or a class index")
    p.add_argument("--alpha", type=float, default=1.0, help="pointshift's power alpha (default 1)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="extra option for the method (repeatable), e.g. --option steps=32")
    p.add_argument("--batch-size", type=int, default=32, help="clouds per attribution call (default 32)")
    p.add_argument("--renders", type=int, default=8, help="how many clouds to draw in scores.png (default 8)")
    p.add_argument("--render-scale", default="signed",
                   choices=["signed", "robust", "minmax", "rank", "shared"],
                   help="colour scaling of scores.png: signed (0 = white, coolwarm; default), robust "
                        "(1st-99th percentile), minmax, rank or shared (viridis)")
    common.add_output_options(p)
    common.add_seed_device(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from pointlens.report.figures import render_clouds
    from pointlens.utils.io import RunFolder, save_npz
    from pointlens.utils.progress import progress
    from pointlens.utils.seed import seed_everything
    from pointlens.utils.validate import check_float, check_int

    check_int("--batch-size", args.batch_size, minimum=1)
    check_int("--renders", args.renders, minimum=0)
    check_float("--alpha", args.alpha)
    from pointlens.attribution import check_method

    options = dict(common.parse_option(o) for o in args.option)
    check_method(args.method, options, arg="--method")   # before the model and data are loaded
    seed_everything(args.seed)
    loaded, dataset, device = common.load_model_and_data(args, common.POINTS_ONLY)
    model = loaded.model
    target, target_kind = parse_target(args.target, dataset.labels, dataset.num_classes)
    method = common.make_attribution(args.method, model, alpha=args.alpha, options=options, seed=args.seed)

    points = torch.from_numpy(dataset.points)
    from pointlens.training.evaluate import predict

    predictions = predict(model, points, batch_size=args.batch_size, device=device).argmax(1).numpy()
    t0 = time.perf_counter()
    chunks = []
    for s in progress(range(0, len(points), args.batch_size), desc=f"explain {args.method}"):
        e = s + args.batch_size
        t = target[s:e].to(device) if isinstance(target, torch.Tensor) else target
        chunks.append(torch.as_tensor(method.attribute(points[s:e].to(device), target=t)).detach().cpu())
    elapsed = time.perf_counter() - t0
    scores = torch.cat(chunks).float().numpy()
    if target is None:
        target_arr = predictions
    elif isinstance(target, torch.Tensor):
        target_arr = target.numpy()
    else:
        target_arr = np.full(len(points), target, dtype=np.int64)

    folder = RunFolder(args.out, "explain", config=common.vars_for_config(args), seed=args.seed)
    folder.write_config()
    extra = {} if dataset.gt_mask is None else {"gt_mask": dataset.gt_mask}  # ShapeParts: the report's toggle
    save_npz(folder.file("scores.npz"), points=dataset.points, scores=scores, labels=dataset.labels,
             predictions=predictions, target=target_arr.astype(np.int64),
             class_names=np.asarray([str(c) for c in dataset.class_names]), **extra)
    k = min(args.renders, len(points))
    if k:
        cls = list(dataset.class_names)

        def name(i):
            return cls[i] if 0 <= i < len(cls) else str(i)

        titles = []
        for i in range(k):
            true = name(int(dataset.labels[i])) if dataset.labels.ndim == 1 else "multi"
            titles.append(f"{i}: true {true} / pred {name(int(predictions[i]))}")
        cmap = "coolwarm" if args.render_scale == "signed" else "viridis"
        render_clouds(dataset.points[:k], scores[:k], folder.file("scores.png"), titles=titles,
                      scale=args.render_scale, cmap=cmap)
    metrics = {
        "method": args.method,
        "n": int(len(points)),
        "num_points": int(points.shape[1]),
        "target": target_kind,
        "time_s": round(elapsed, 4),
        "time_per_cloud_s": round(elapsed / max(1, len(points)), 6),
        "clean_accuracy": (float((predictions == dataset.labels).mean())
                           if dataset.labels.ndim == 1 else None),
    }
    folder.write_metrics(metrics)
    if args.json:
        common.print_json(metrics)
    return 0
