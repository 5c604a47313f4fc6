"""``pointlens metrics``: compute metrics from files.

Kinds: ``shape`` (F-score@d, Chamfer, Hausdorff and optionally voxel IoU of a predicted and a ground-truth
cloud).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from pointlens.cli import common
from pointlens.errors import DataError, PointlensError, bad_argument

SHAPE_EXAMPLE = ("pointlens metrics shape --pred pred.ply --gt gt.npy --threshold 0.01,0.02 "
                 "--normalize unit-cube")


def register(sub) -> None:
    """Add ``pointlens metrics`` and its kinds (``shape``)."""
    p = common.add_parser(sub, "metrics", example=SHAPE_EXAMPLE,
                          help="compute metrics from files (shape: F-score, Chamfer, Hausdorff)")
    kinds = p.add_subparsers(dest="metrics_kind", metavar="<kind>")
    p.set_defaults(func=lambda args: _no_kind(p))

    s = common.add_parser(
        kinds, "shape", example=SHAPE_EXAMPLE,
        help="compare a predicted cloud with a ground-truth cloud: F-score@d, Chamfer, Hausdorff",
        description="Compare two point clouds (files .npy/.npz/.txt/.xyz/.ply/.off/.obj; meshes are "
                    "sampled). F-score@d: precision = share of predicted points within d (strict <) of the "
                    "ground truth, recall = share of ground-truth points within d of the prediction, plain "
                    "Euclidean. d = 0.01 is 1% of the side of the unit cube: use --normalize unit-cube "
                    "unless the files are already normalised.")
    s.add_argument("--pred", required=True, metavar="FILE", help="predicted cloud file")
    s.add_argument("--gt", required=True, metavar="FILE", help="ground-truth cloud file")
    s.add_argument("--threshold", default="0.01", metavar="D[,D...]",
                   help="F-score distance threshold(s), comma separated (default 0.01)")
    s.add_argument("--chamfer-preset", default="plain", choices=["plain", "pytorch3d", "kaolin"],
                   help="Chamfer convention: plain = Euclidean, mean each way, average of the two "
                        "directions; pytorch3d/kaolin = squared, mean each way, sum of the two "
                        "(default plain)")
    s.add_argument("--normalize", default="none", choices=["none", "unit-cube"],
                   help="unit-cube: map the GROUND TRUTH's bounding box into [-0.5, 0.5]^3 (longest side "
                        "1) and apply the same transform to the prediction (default none: use the "
                        "files' units)")
    s.add_argument("--points", type=int, default=None, metavar="N",
                   help="mesh files: surface samples to draw; cloud files: keep the first N points "
                        "(default: the reader's default, all points of a cloud)")
    s.add_argument("--backend", default="auto", choices=["auto", "torch", "kdtree"],
                   help="nearest-neighbour backend (default auto: KD-tree for large clouds on CPU)")
    s.add_argument("--iou-resolution", type=int, default=None, metavar="R",
                   help="also report the voxel IoU of the two clouds on an R^3 grid over [-0.5, 0.5]^3")
    common.add_output_options(s, out_required=False)
    s.set_defaults(func=run)


def _no_kind(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _parse_thresholds(text: str) -> list[float]:
    try:
        vals = [float(t) for t in str(text).split(",") if t.strip()]
    except ValueError:
        raise bad_argument("--threshold", text, "comma-separated positive numbers, e.g. 0.01,0.02") from None
    if not vals or any(not np.isfinite(v) or v <= 0 for v in vals):
        raise bad_argument("--threshold", text, "comma-separated positive numbers, e.g. 0.01,0.02")
    return vals


def read_cloud(path: str, name: str, num_points: int | None = None) -> np.ndarray:
    """Read one cloud file into an ``(N, 3)`` float32 array, with errors that name the option and the file."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{name}: file not found: {path}")
    from pointlens.data import read_cloud_file

    try:
        arr = np.asarray(read_cloud_file(p, num_points))
    except PointlensError as e:
        raise type(e)(f"{name}: {e}") from None
    if arr.ndim == 2 and arr.shape[0] == 3 and arr.shape[1] > 3:
        raise DataError(f"{name}: {path} holds an array of shape {arr.shape} (channels first?); "
                        "expected one cloud (N, 3): transpose it")
    if arr.ndim == 2 and 3 < arr.shape[1] <= 9:
        arr = arr[:, :3]  # xyz first; extra channels (normals, colours) dropped
    if arr.ndim != 2 or arr.shape[-1] != 3:
        raise DataError(f"{name}: {path} holds an array of shape {arr.shape}; expected one cloud (N, 3)")
    if arr.shape[0] == 0:
        raise DataError(f"{name}: {path} holds an empty cloud (0 points); expected at least one point")
    if not np.issubdtype(arr.dtype, np.number) or not np.isfinite(arr).all():
        raise DataError(f"{name}: {path} holds non-numeric or non-finite coordinates; expected finite xyz")
    return arr.astype(np.float32)


def run(args) -> int:
    """Compute shape metrics of ``--pred`` against ``--gt``; print a table or ``--json``."""
    import torch

    from pointlens.metrics import shape
    from pointlens.utils.io import RunFolder

    thresholds = _parse_thresholds(args.threshold)
    if args.points is not None and args.points < 1:
        raise bad_argument("--points", args.points, "a positive integer")
    if args.iou_resolution is not None and not 1 <= args.iou_resolution <= 1024:
        raise bad_argument("--iou-resolution", args.iou_resolution, "an integer in [1, 1024]")
    pred = torch.from_numpy(read_cloud(args.pred, "--pred", args.points))
    gt = torch.from_numpy(read_cloud(args.gt, "--gt", args.points))
    if args.normalize == "unit-cube":
        pred = shape.normalize_unit_cube(pred.unsqueeze(0), reference=gt.unsqueeze(0))[0]
        gt = shape.normalize_unit_cube(gt.unsqueeze(0))[0]
    res = shape.compare_shapes([pred], [gt], thresholds, chamfer_preset=args.chamfer_preset,
                               backend=args.backend)
    metrics: dict = {}
    for j, d in enumerate(thresholds):
        metrics[f"fscore@{d:g}"] = float(res["fscore"][0, j])
    for j, d in enumerate(thresholds):
        metrics[f"precision@{d:g}"] = float(res["precision"][0, j])
    for j, d in enumerate(thresholds):
        metrics[f"recall@{d:g}"] = float(res["recall"][0, j])
    metrics["chamfer"] = float(res["chamfer"][0])
    metrics["hausdorff"] = float(res["hausdorff"][0])
    if args.iou_resolution is not None:
        metrics[f"iou@{args.iou_resolution}"] = float(shape.iou_points([pred], [gt], args.iou_resolution)[0])
    metrics["n_pred"] = int(pred.shape[0])
    metrics["n_gt"] = int(gt.shape[0])
    metrics["chamfer_preset"] = args.chamfer_preset
    metrics["normalize"] = args.normalize

    if args.out:
        config = {k: v for k, v in vars(args).items() if k != "func"}
        folder = RunFolder(args.out, "metrics shape", config=config)
        folder.write_config()
        folder.write_metrics(metrics)
    if args.json:
        common.print_json(metrics)
        return 0
    lines = [f"pred {args.pred} ({metrics['n_pred']} points) vs gt {args.gt} ({metrics['n_gt']} points), "
             f"normalize {args.normalize}",
             f"{'threshold':>10}  {'fscore':>8}  {'precision':>9}  {'recall':>8}"]
    for d in thresholds:
        lines.append(f"{d:>10g}  {metrics[f'fscore@{d:g}']:>8.4f}  {metrics[f'precision@{d:g}']:>9.4f}  "
                     f"{metrics[f'recall@{d:g}']:>8.4f}")
    lines.append(f"chamfer ({args.chamfer_preset}): {metrics['chamfer']:.6g}")
    lines.append(f"hausdorff: {metrics['hausdorff']:.6g}")
    if args.iou_resolution is not None:
        lines.append(f"voxel IoU at {args.iou_resolution}^3: {metrics[f'iou@{args.iou_resolution}']:.4f}")
    if args.out:
        lines.append(f"wrote {Path(args.out) / 'metrics.json'}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
