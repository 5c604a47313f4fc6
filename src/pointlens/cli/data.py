"""``pointlens data``: inspect a data spec (``info``) or cache it as a generic ``.npz`` (``cache``)."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from pointlens.cli import common

SPEC_HELP = ("data spec: shapeparts[:key=value,...], modelnet40-h5:PATH, modelnet40-txt:PATH, meshes:PATH, "
             "npz:PATH, digitscenes[:key=value,...] or voc:PATH (images)")


def _add_loading_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    p.add_argument("--split", default="all", choices=["train", "test", "all"],
                   help="split to load (default all)")
    p.add_argument("--points", type=int, default=1024, help="points per cloud (default 1024)")
    p.add_argument("--sampling", default="first", choices=["first", "random", "fps"],
                   help="how to pick --points points per cloud (default first)")
    p.add_argument("--limit", type=int, default=None, help="only the first LIMIT clouds of the split")
    p.add_argument("--seed", type=int, default=0, help="seed of random/mesh sampling (default 0)")
    p.add_argument("--no-normalize", action="store_true",
                   help="keep the original coordinates (default: centre and scale to the unit sphere)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def register(sub) -> None:
    """Add ``pointlens data {info,cache}``."""
    p = common.add_parser(sub, "data", help="inspect or cache a dataset given by a data spec",
                          example="pointlens data info "
                                  "npz:../shared/data/modelnet40_normal_resampled_subset_2048.npz")
    actions = p.add_subparsers(dest="data_command", metavar="<action>", required=True)
    info = common.add_parser(actions, "info", help="print the number of clouds per class and split",
                             example="pointlens data info shapeparts:n=200 --json")
    _add_loading_options(info)
    info.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    cache = common.add_parser(actions, "cache",
                              help="load a spec and write it to a generic .npz (spec npz:FILE)",
                              example="pointlens data cache modelnet40-h5:modelnet40_ply_hdf5_2048 "
                                      "--out modelnet_1024.npz")
    _add_loading_options(cache)
    cache.add_argument("--out", required=True, metavar="FILE.npz", help="the .npz file to write")
    cache.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=run)


def summarize(ds) -> dict:
    """Counts per class and split of a :class:`PointCloudDataset` or ``ImageDataset`` (multi-hot labels count
    every class).

    Returns:
        dict with ``clouds`` (the number of clouds or images), ``points_per_cloud`` (clouds) or ``image_size``
        ``[H, W]`` (images), ``modality``, ``num_classes``, ``splits`` ``{split: count}`` and ``per_class``
        ``{class: {split: count, ..., 'total': count}}``.
    """
    image = getattr(ds, "modality", "points") == "image"
    splits = np.asarray(ds.split).astype(str) if ds.split is not None else np.full(len(ds), "all")
    split_names = sorted(set(splits.tolist()), key=lambda s: (s not in ("train", "test"), s != "train", s))
    onehot = ds.labels.astype(bool) if ds.multilabel else np.eye(ds.num_classes, dtype=bool)[ds.labels]
    per_class = {}
    for c, name in enumerate(ds.class_names):
        row = {s: int(onehot[splits == s, c].sum()) for s in split_names}
        row["total"] = int(onehot[:, c].sum())
        per_class[name] = row
    size = {"image_size": list(ds.image_size)} if image else {"points_per_cloud": ds.num_points}
    return {
        "clouds": len(ds),
        **size,
        "modality": ds.modality,
        "num_classes": ds.num_classes,
        "multilabel": ds.multilabel,
        "splits": {s: int((splits == s).sum()) for s in split_names},
        "per_class": per_class,
        "has": [k for k in (("masks", "groups", "names") if image else
                            ("normals", "parts", "gt_mask", "instance", "names"))
                if getattr(ds, k) is not None],
    }


def _table(summary: dict) -> str:
    cols = list(next(iter(summary["per_class"].values())).keys()) if summary["per_class"] else ["total"]
    width = max([5] + [len(n) for n in summary["per_class"]])
    lines = [f"{'class':<{width}}  " + "  ".join(f"{c:>7}" for c in cols)]
    for name, row in summary["per_class"].items():
        lines.append(f"{name:<{width}}  " + "  ".join(f"{row[c]:>7}" for c in cols))
    return "\n".join(lines)


def run(args) -> int:
    """Run ``pointlens data info`` or ``pointlens data cache``; returns the exit status."""
    from pointlens.data import load_dataset, save_dataset

    ds = load_dataset(args.spec, split=args.split, num_points=args.points, sampling=args.sampling,
                      normalize=not args.no_normalize, seed=args.seed, limit=args.limit)
    summary = {"spec": args.spec, **summarize(ds)}
    if args.data_command == "cache":
        if summary["modality"] == "image":
            from pointlens.errors import bad_argument

            raise bad_argument("SPEC", args.spec, "a point-cloud spec: image datasets are generated (digitscenes) "
                               "or read (voc) directly by every command, there is no .npz cache for them")
        summary["out"] = str(save_dataset(ds, args.out))
    if args.json:
        common.print_json(summary)
        return 0
    out = sys.stdout
    if "image_size" in summary:
        h, w = summary["image_size"]
        what = f"{summary['clouds']} images of {h}x{w} pixels"
    else:
        what = f"{summary['clouds']} clouds x {summary['points_per_cloud']} points"
    out.write(f"{args.spec}: {what}, "
              f"{summary['num_classes']} classes; splits " +
              ", ".join(f"{k} {v}" for k, v in summary["splits"].items()) + "\n")
    if summary["has"]:
        what = "per-image arrays" if "image_size" in summary else "per-point/extra arrays"
        out.write(f"{what}: " + ", ".join(summary["has"]) + "\n")
    out.write(_table(summary) + "\n")
    if "out" in summary:
        out.write(f"wrote {summary['out']} (load it with the spec npz:{summary['out']})\n")
    return 0
