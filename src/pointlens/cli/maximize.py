"""``pointlens maximize``: global explanations by activation maximisation (naive AM, generative AM, FlowAM),
their metrics, and (``--sanity``) the cascading-randomisation check."""

from __future__ import annotations

import difflib
import time

from pointlens.cli.common import (
    POINTS_ONLY,
    add_checkpoint_options,
    add_data_options,
    add_output_options,
    add_parser,
    add_seed_device,
    load_model_and_data,
    parse_option,
    print_json,
    vars_for_config,
)

EXAMPLE = ("pointlens maximize --checkpoint runs/pointnet/checkpoint.pt --data shapeparts --method naive,flow "
           "--classes chair,airplane --samples 4 --reference runs/dgcnn/checkpoint.pt --out runs/am")


def register(sub) -> None:
    p = add_parser(sub, "maximize", "global explanations: synthesise clouds that maximise a class (naive AM, "
                   "generative AM, FlowAM), score them, or run the randomisation sanity check", EXAMPLE)
    add_checkpoint_options(p)
    add_data_options(p, split_default="train")
    p.add_argument("--method", default="flow", help="naive, generative, flow or a comma list (default flow)")
    p.add_argument("--classes", default=None, help="comma-separated class names (default every class)")
    p.add_argument("--samples", type=int, default=4, help="samples per class, optimised as one batch (default 4)")
    p.add_argument("--steps", type=int, default=None, help="optimisation steps (default the method's, 200)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default the method's)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a method option, e.g. continuity=10, init=mean, contrast=0 (naive AM with the logit alone) or "
                        "keep=last (the final iterate instead of the best) (repeatable; see docs/maximize.md)")
    p.add_argument("--autoencoder", default=None, metavar="AE",
                   help="autoencoder checkpoint or run folder for generative AM (pointlens autoencoder train)")
    p.add_argument("--flow-layers", default=None, help="comma-separated layers FlowAM aligns (default: see docs)")
    p.add_argument("--flow-reduce", default="both", choices=["both", "max", "mean"],
                   help="per-point layer descriptor: max and mean over points, max or mean (default both)")
    p.add_argument("--flow-instances", type=int, default=64,
                   help="real instances per class for the activation flows (default 64)")
    p.add_argument("--reference", default=None, metavar="CKPT",
                   help="a DIFFERENT classifier for FID and m-IS (without it they are null)")
    p.add_argument("--reference-format", default="pointlens", choices=["pointlens", "learning3d"],
                   help="format of --reference (default pointlens)")
    p.add_argument("--k", type=int, default=5, help="nearest real instances for the Chamfer metric (default 5)")
    p.add_argument("--sanity", action="store_true",
                   help="run the cascading randomisation check instead: sanity.json curves and sanity.png")
    p.add_argument("--sanity-steps", type=int, default=None,
                   help="regenerate at this many evenly spaced cascading steps (default every step; the last, "
                        "full randomisation, always)")
    add_seed_device(p)
    add_output_options(p)
    p.set_defaults(func=run)


# --------------------------------------------------------------------------------------------- argument checks
def _choose(name: str, value: str, choices) -> None:
    from pointlens.errors import bad_argument

    if value not in choices:
        close = difflib.get_close_matches(value, list(choices), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"one of {', '.join(list(choices)[:20])}"
        raise bad_argument(name, value, hint)


def _methods(text: str) -> list[str]:
    from pointlens.maximize import METHODS

    out = [m.strip() for m in str(text).split(",") if m.strip()]
    if not out:
        from pointlens.errors import bad_argument

        raise bad_argument("--method", text, "naive, generative, flow or a comma list")
    for m in out:
        _choose("--method", m, METHODS)
    return list(dict.fromkeys(out))


def _classes(text, names: list[str]) -> list[int]:
    if text is None:
        return list(range(len(names)))
    out = []
    for c in (s.strip() for s in str(text).split(",")):
        if c:
            _choose("--classes", c, names)
            out.append(names.index(c))
    if not out:
        from pointlens.errors import bad_argument

        raise bad_argument("--classes", text, "comma-separated class names")
    return list(dict.fromkeys(out))


def _method_options(items, methods) -> dict:
    from pointlens.errors import bad_argument
    from pointlens.maximize.core import _ALLOWED

    per = {m: {} for m in methods}
    for item in items:
        key, value = parse_option(item, "--option")
        hit = [m for m in methods if key in _ALLOWED[m] and key not in ("data", "data_labels")]
        if not hit:
            allowed = sorted(set().union(*(_ALLOWED[m] for m in methods)) - {"data", "data_labels", "flow_stats",
                                                                             "autoencoder", "bounds_box"})
            close = difflib.get_close_matches(key, allowed, n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}?" if close else f"one of {', '.join(allowed)}"
            raise bad_argument("--option", item, f"an option of {'/'.join(methods)} AM; {hint}")
        for m in hit:
            per[m][key] = value
    return per


# --------------------------------------------------------------------------------------------- run
def run(args) -> int:
    import numpy as np
    import torch

    from pointlens.errors import DataError
    from pointlens.maximize import collect_flow, load_autoencoder
    from pointlens.maximize.flow import FlowStats, check_layers, default_flow_layers, flow_key
    from pointlens.utils.io import RunFolder
    from pointlens.utils.validate import check_int

    check_int("--samples", args.samples, minimum=1)
    check_int("--k", args.k, minimum=1)
    check_int("--flow-instances", args.flow_instances, minimum=1)
    if args.steps is not None:
        check_int("--steps", args.steps, minimum=0)
    methods = _methods(args.method)
    loaded, dataset, device = load_model_and_data(args, POINTS_ONLY)
    model = loaded.model.eval()
    names = list(dataset.class_names)
    classes = _classes(args.classes, names)
    opts = _method_options(args.option, methods)
    pts_all = torch.from_numpy(dataset.points)
    lab_all = torch.from_numpy(np.asarray(dataset.labels, dtype=np.int64))
    for c in classes:
        have = int((lab_all == c).sum())
        if have < args.k:
            raise DataError(f"--classes {names[c]}: the class has {have} real instance(s) in {args.data} "
                            f"(split {args.split}) but --k {args.k} nearest are needed; use --k {max(1, have)} "
                            "or data with more instances" if have else
                            f"--classes {names[c]}: no real instance of the class in {args.data} (split {args.split})")
    if args.flow_layers is not None:
        layers = check_layers(model, [s.strip() for s in args.flow_layers.split(",") if s.strip()], "--flow-layers")
    else:
        layers = default_flow_layers(model)
    ae = None
    if "generative" in methods:
        if args.autoencoder is None:
            from pointlens.errors import bad_argument

            raise bad_argument("--autoencoder", None, "an autoencoder checkpoint for --method generative "
                                                      "(train one with `pointlens autoencoder train`)")
        ae = load_autoencoder(args.autoencoder, num_points=args.points, device=device)
    reference = None
    if args.reference is not None and not args.sanity:
        from pointlens.models import load_checkpoint

        reference = load_checkpoint(args.reference, format=args.reference_format, device=device).model.eval()

    folder = RunFolder(args.out, "maximize", vars_for_config(args), seed=args.seed)
    folder.write_config()
    # flow statistics: the first --flow-instances real instances of every class, cached by model + data
    keep = torch.zeros(len(lab_all), dtype=torch.bool)
    for c in range(len(names)):
        idx = torch.nonzero(lab_all == c).reshape(-1)[:args.flow_instances]
        keep[idx] = True
    flow_pts, flow_lab = pts_all[keep], lab_all[keep]
    data_id = f"{args.data}|{args.split}|{args.points}|{args.sampling}|{args.limit}|{args.flow_instances}"

    def flow_for(m):
        key = flow_key(m, data_id, layers, args.flow_reduce)
        path = folder.file(f"flow_cache/flow_{key}.pt")
        if path.is_file():
            return FlowStats.load(path)
        fs = collect_flow(m, flow_pts.to(device), flow_lab, num_classes=len(names), layers=layers,
                          reduce=args.flow_reduce, key=key)
        fs.save(path)
        return fs

    common = dict(data=pts_all.to(device), data_labels=lab_all)

    def generate(m, method, c, flow_stats=None):
        from pointlens.maximize import maximize

        extra = dict(opts[method])
        if args.lr is not None:
            extra["lr"] = args.lr
        if method == "flow":
            extra["flow_stats"] = flow_stats if flow_stats is not None else flow_for(m)
        if method == "generative":
            extra["autoencoder"] = ae
        return maximize(m, c, method, samples=args.samples, steps=args.steps, seed=args.seed, points=args.points,
                        progress_desc=f"{method} AM: {names[c]}", **common, **extra)

    if args.sanity:
        return _run_sanity(args, model, methods, classes, names, generate, flow_for, folder)
    return _run_maximize(args, model, reference, methods, classes, names, generate, folder, pts_all, lab_all)


def _run_maximize(args, model, reference, methods, classes, names, generate, folder, pts_all, lab_all) -> int:
    import torch

    from pointlens.maximize.gallery import am_gallery
    from pointlens.metrics.am import am_class_metrics, nearest_real
    from pointlens.utils.io import save_npz, save_text

    table: dict = {}
    arrays: dict = {}
    timing: dict = {}
    for method in methods:
        table[method] = {}
        clouds, targets, near, titles = [], [], [], []
        t0 = time.perf_counter()
        for c in classes:
            res = generate(model, method, c)
            real = pts_all[lab_all == c]
            met = am_class_metrics(model, res.clouds, c, real, reference=reference, k=args.k)
            _, idx = nearest_real(res.clouds, real, k=1)
            table[method][names[c]] = met
            clouds.append(res.clouds)
            targets.append(res.target)
            near.append(real[idx[:, 0]])
            probs = res.trace["prob"][res.step, torch.arange(len(res.step))]  # of the returned iterate (keep)
            titles += [f"{names[c]} #{i} ({method}, p={float(probs[i]):.2f})" for i in range(len(res.clouds))]
            arrays[f"{method}_{names[c]}_logit_trace"] = res.trace["logit"]
            arrays[f"{method}_{names[c]}_step"] = res.step
        timing[method] = time.perf_counter() - t0
        arrays[f"{method}_clouds"] = torch.cat(clouds)
        arrays[f"{method}_target"] = torch.cat(targets)
        arrays[f"{method}_nearest_real"] = torch.cat(near)
        am_gallery(torch.cat(clouds), torch.cat(near), folder.file(f"gallery_{method}.png"), titles=titles)
    save_npz(folder.file("clouds.npz"), **arrays)
    keys = ("success", "chamfer", "fid", "m_is", "pcams", "diversity")
    summary = {m: {cls: {k: v[k] for k in keys} for cls, v in per.items()} for m, per in table.items()}
    folder.write_metrics({"metrics": table, "classes": [names[c] for c in classes], "methods": methods,
                          "samples": args.samples, "k": args.k, "reference": args.reference,
                          "seconds": timing})
    save_text(folder.file("report.md"), _report(summary, args))
    if args.json:
        print_json(summary)
    elif not args.quiet:
        print(_report(summary, args))
        print(f"run folder {folder.path}")
    return 0


def _fmt(v) -> str:
    return "n/a" if v is None or v != v else f"{v:.4g}"


def _report(summary: dict, args) -> str:
    lines = ["## Activation maximisation", "",
             f"Classifier `{args.checkpoint}`, data `{args.data}` (split {args.split}, {args.points} points), "
             f"{args.samples} samples per class, seed {args.seed}; FID/m-IS reference "
             f"`{args.reference or 'none'}`; Chamfer to the {args.k} nearest real instances.", "",
             "| method | class | success | Chamfer | FID | m-IS | PCAMS | diversity |",
             "|---|---|---|---|---|---|---|---|"]
    for m, per in summary.items():
        for cls, v in per.items():
            lines.append(f"| {m} | {cls} | " + " | ".join(_fmt(v[k]) for k in
                                                          ("success", "chamfer", "fid", "m_is", "pcams",
                                                           "diversity")) + " |")
    return "\n".join(lines) + "\n"


def _run_sanity(args, model, methods, classes, names, generate, flow_for, folder) -> int:
    import numpy as np
    import torch

    from pointlens.maximize import AMResult, am_randomisation
    from pointlens.maximize.sanity import paired_ratio
    from pointlens.metrics.sanity import randomisation_layers
    from pointlens.report.figures import plot_curves
    from pointlens.utils.io import save_json, save_npz

    groups = randomisation_layers(model)
    at = None
    if args.sanity_steps is not None:
        from pointlens.utils.validate import check_int

        n = check_int("--sanity-steps", args.sanity_steps, minimum=1)
        at = sorted({int(round(x)) for x in np.linspace(1, len(groups), min(n, len(groups)))})
    curves, tables, moved_full = {}, {}, {}
    arrays = {}
    for method in methods:
        def gen_all(m, method=method):
            fs = flow_for(m) if method == "flow" else None
            parts = [generate(m, method, c, fs) for c in classes]
            return AMResult(torch.cat([r.clouds for r in parts]), torch.cat([r.target for r in parts]), method,
                            {}, parts[0].options)

        res = am_randomisation(model, gen_all, seed=args.seed, at=at)
        curves[method] = res.curve()
        tables[method] = {"trained_success": float(res.success.float().mean()), "steps": res.table()}
        moved_full[method] = res.steps[-1].moved.numpy()
        arrays[f"{method}_original"] = res.original.clouds
        arrays[f"{method}_full_random"] = res.steps[-1].clouds
    ratios = {}
    if "generative" in methods:
        for other in (m for m in methods if m != "generative"):
            ratios[f"generative/{other}"] = paired_ratio(moved_full["generative"], moved_full[other], seed=args.seed)
    save_json(folder.file("sanity.json"), curves)
    save_json(folder.file("sanity_details.json"), {"curves": curves, "tables": tables, "full_randomisation_ratio":
                                                   ratios, "classes": [names[c] for c in classes],
                                                   "layer_order": [g.name for g in groups]})
    save_npz(folder.file("sanity_clouds.npz"), **arrays)
    order = [g.name for g in groups]
    plot_curves({m: {order.index(k) + 1: v for k, v in c.items()} for m, c in curves.items()},
                folder.file("sanity.png"), title="AM sanity: how far the samples move under randomisation",
                xlabel="layer groups randomised, from the logits down", ylabel="Chamfer to the trained model's samples")
    if args.json:
        print_json(curves)
    elif not args.quiet:
        for m, c in curves.items():
            last = list(c)[-1]
            print(f"{m}: moved {c[last]:.4f} (Chamfer) after randomising every layer down to {last}")
        for k, r in ratios.items():
            print(f"{k} moved ratio at full randomisation: {r['ratio']:.3f} [{r['low']:.3f}, {r['high']:.3f}]")
        print(f"run folder {folder.path}")
    return 0
