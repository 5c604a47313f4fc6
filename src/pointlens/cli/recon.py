"""``pointlens recon run``: the recognition-vs-reconstruction study (Tatarchenko et al., CVPR 2019)."""

from __future__ import annotations

import time

from pointlens.cli.common import add_output_options, add_parser, add_seed_device, print_json

DEFAULT_DATA = "shapeparts:n=2000"
QUICK_DATA = "shapeparts:n=60"
QUICK_POINTS = 512

# CLI option -> StudyConfig field (None = take the preset's value)
_OPTIONS = {
    "image_size": "rendered image side in pixels",
    "projection": "orthographic or perspective",
    "epochs": "training epochs of each CNN",
    "batch_size": "mini-batch size",
    "lr": "Adam learning rate",
    "clusters": "K of K-means (clustering baseline)",
    "embedding_dim": "MDS embedding dimension (retrieval baseline)",
    "output_points": "points every method outputs (encoder-decoder set size; subset of retrieved shapes)",
    "voxel_resolution": "voxels per side of the IoU metric, retrieval similarity and oracle",
    "imbalance": "largest / smallest kept share of a class's training shapes (1 = keep all)",
    "width": "channels of the first CNN block",
    "up_axis": "the data's up axis; the camera's azimuth turns about it (ShapeParts: z)",
}
_CHOICES = {"projection": ["orthographic", "perspective"], "up_axis": ["x", "y", "z"]}


def register(sub) -> None:
    p = add_parser(
        sub,
        "recon",
        "single-view reconstruction study: do reconstruction networks only recognise?",
        "pointlens recon run --data shapeparts:n=2000 --frame both --out runs/recon",
    )
    rsub = p.add_subparsers(dest="recon_command", metavar="<action>")
    r = add_parser(
        rsub,
        "run",
        "run the study (encoder-decoder, clustering, retrieval, oracle NN) and write the table",
        "pointlens recon run --data shapeparts:n=2000 --frame object --out runs/recon-object",
    )
    r.add_argument(
        "--data",
        default=None,
        metavar="SPEC",
        help=f"data spec with train and test splits (default {DEFAULT_DATA}; {QUICK_DATA} with --quick)",
    )
    r.add_argument(
        "--points",
        type=int,
        default=None,
        help=f"points per shape (default 4096: the ground truth; {QUICK_POINTS} with --quick)",
    )
    r.add_argument("--limit", type=int, default=None, help="use only the first LIMIT shapes of each split")
    r.add_argument(
        "--frame",
        default="both",
        choices=["object", "viewer", "both"],
        help="target frame: object-centred, viewer-centred, or both in that order (default both)",
    )
    r.add_argument("--quick", action="store_true", help="tiny run (seconds) for smoke tests")
    r.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    types = {"projection": str, "up_axis": str, "lr": float, "imbalance": float}
    for name, text in _OPTIONS.items():
        kw = {"choices": _CHOICES[name]} if name in _CHOICES else {}
        r.add_argument(
            "--" + name.replace("_", "-"), type=types.get(name, int), default=None, help=text, **kw
        )
    add_seed_device(r)
    add_output_options(r)
    r.set_defaults(func=run)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run(args) -> int:
    from pointlens.recon.report import write_study
    from pointlens.recon.study import FRAMES, StudyConfig, load_study_data, run_study
    from pointlens.utils.io import RunFolder

    overrides = {name: getattr(args, name) for name in _OPTIONS if getattr(args, name) is not None}
    overrides.update(seed=args.seed, device=args.device)
    config = (StudyConfig.quick(**overrides) if args.quick else StudyConfig(**overrides)).validate()
    data = args.data or (QUICK_DATA if args.quick else DEFAULT_DATA)
    points = args.points or (QUICK_POINTS if args.quick else 4096)
    frames = list(FRAMES) if args.frame == "both" else [args.frame]
    folder = RunFolder(
        args.out,
        "recon run",
        {
            "data": data,
            "points": points,
            "limit": args.limit,
            "frames": frames,
            "quick": args.quick,
            **config.to_dict(),
        },
        seed=args.seed,
    )
    folder.write_config()
    start = time.perf_counter()
    train, test = load_study_data(data, num_points=points, seed=args.seed, limit=args.limit)
    results = run_study(train, test, frames, config)
    metrics = write_study(results, folder, plots=not args.no_plots)
    metrics["seconds"] = round(time.perf_counter() - start, 2)
    folder.write_metrics(metrics)
    if args.json:
        print_json(metrics)
    return 0
