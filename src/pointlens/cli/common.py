"""Options shared by subcommands, so every command spells them the same way."""

from __future__ import annotations

import argparse
import sys

import torch

from pointlens.errors import CheckpointError, InvalidArgumentError, bad_argument
from pointlens.utils.io import to_json

USER_INPUT_LAYOUTS = ("bnc", "bcn")
USER_OUTPUT_KINDS = ("logits", "log_softmax", "probs")


def add_parser(sub, name: str, help: str, example: str, description: str | None = None) -> argparse.ArgumentParser:
    """Add a subcommand parser whose ``--help`` ends with a runnable example."""
    return sub.add_parser(name, help=help, description=description or help,
                          epilog=f"example:\n  {example}",
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def add_output_options(p: argparse.ArgumentParser, out_required: bool = True) -> None:
    """``--out DIR``, ``--json``, ``--quiet``, ``--no-report``."""
    p.add_argument("--out", required=out_required, metavar="DIR", help="run folder to write (created if needed)")
    p.add_argument("--json", action="store_true", help="print the metrics object as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_report_option(p)


def add_report_option(p: argparse.ArgumentParser) -> None:
    """``--no-report``: skip ``report.html`` (``cli/main.py`` writes it into ``--out`` after a command succeeds)."""
    p.add_argument("--no-report", action="store_true",
                   help="do not write report.html into the run folder (build it later with pointlens report DIR)")


def add_seed_device(p: argparse.ArgumentParser) -> None:
    """``--seed S`` and ``--device cpu|cuda``."""
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same numbers (default 0)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")


def add_data_options(p: argparse.ArgumentParser, split_default: str | None = "test") -> None:
    """``--data SPEC``, ``--split``, ``--points``, ``--sampling``, ``--limit``."""
    p.add_argument("--data", default="shapeparts", metavar="SPEC",
                   help="data spec: shapeparts[:key=value,...], modelnet40-h5:PATH, modelnet40-txt:PATH, "
                        "meshes:PATH, npz:PATH, digitscenes[:key=value,...] or voc:PATH (images) "
                        "(default shapeparts)")
    p.add_argument("--split", default=split_default, choices=["train", "test", "all"],
                   help=f"which split to use (default {split_default})")
    p.add_argument("--points", type=int, default=1024, help="points per cloud (default 1024; not for images)")
    p.add_argument("--sampling", default="first", choices=["first", "random", "fps"],
                   help="how to pick --points points from each cloud (default first; not for images)")
    p.add_argument("--limit", type=int, default=None, help="use only the first LIMIT clouds of the split")


def print_json(obj) -> None:
    """Print ``obj`` as JSON on stdout (one object)."""
    sys.stdout.write(to_json(obj) + "\n")
    sys.stdout.flush()


def add_checkpoint_options(p: argparse.ArgumentParser) -> None:
    """``--checkpoint CKPT``, ``--checkpoint-format pointlens|learning3d`` and your own model: ``--model REF``,
    ``--model-kwargs JSON``, ``--input-layout``, ``--output-index``, ``--output`` (see docs/models.md)."""
    p.add_argument("--checkpoint", default=None, metavar="CKPT",
                   help="classifier checkpoint (required, except with --model, where it is the model's state "
                        "dict and may be left out to keep the factory's own weights)")
    p.add_argument("--checkpoint-format", default="pointlens", choices=["pointlens", "learning3d"],
                   help="checkpoint format (default pointlens; learning3d = its PointNet state_dict); "
                        "ignored with --model")
    g = p.add_argument_group("your own model (docs/models.md, 'Your own model')")
    g.add_argument("--model", default=None, metavar="PATH.py:FACTORY|package.module:FACTORY",
                   help="build the classifier with your own factory (function or class returning an nn.Module) "
                        "and load --checkpoint into it as a state dict (under model_state_dict, state_dict, "
                        "model or bare; 'module.' prefixes stripped; weights_only: no pickled code runs)")
    g.add_argument("--model-kwargs", default=None, metavar="JSON",
                   help="keyword arguments of the factory as a JSON object, e.g. '{\"k\": 40}'")
    g.add_argument("--input-layout", default="bnc", choices=list(USER_INPUT_LAYOUTS),
                   help="what the model takes: bnc = (B, N, 3) (default), bcn = (B, 3, N)")
    g.add_argument("--output-index", type=int, default=None, metavar="K",
                   help="the model returns a tuple: element K is the class output (e.g. 0 for (log_probs, aux))")
    g.add_argument("--output", default="logits", choices=list(USER_OUTPUT_KINDS),
                   help="what that output is (default logits); log_softmax/probs are turned into log-probabilities "
                        "so metrics that need probabilities get the model's own")


def resolve_device(name: str) -> torch.device:
    """``--device`` as a torch device, with a clear error when it is unknown or unavailable."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise bad_argument("--device", name, "a torch device such as cpu, cuda or cuda:0") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise bad_argument("--device", name, "cpu (no CUDA device is available on this machine)")
    return device


def load_checkpoint_for(args):
    """Load ``args.checkpoint`` in its format on ``args.device`` (or ``--model``'s own model, see
    :func:`load_user_model_for`); returns a ``LoadedCheckpoint``."""
    from pointlens.models import load_checkpoint

    if getattr(args, "model", None):
        return load_user_model_for(args)
    user_options = [name for name, value, default in (
        ("--model-kwargs", getattr(args, "model_kwargs", None), None),
        ("--input-layout", getattr(args, "input_layout", "bnc"), "bnc"),
        ("--output-index", getattr(args, "output_index", None), None),
        ("--output", getattr(args, "output", "logits"), "logits")) if value != default]
    if user_options:
        raise bad_argument(user_options[0], "without --model", "--model PATH.py:FACTORY (the option adapts your "
                           "own model)")
    if not args.checkpoint:
        raise bad_argument("--checkpoint", None, "a checkpoint file (or --model PATH.py:FACTORY for your own model)")
    return load_checkpoint(args.checkpoint, format=args.checkpoint_format, device=args.device)


def _cli_names(e: InvalidArgumentError) -> InvalidArgumentError:
    """The library's argument names in a user-model error -> the command line's."""
    text = str(e)
    for lib, cli in (("model reference ", "--model "), ("model reference:", "--model:"),
                     ("model kwargs:", "--model-kwargs:"),
                     ("output_index", "--output-index"), ("input_layout", "--input-layout"),
                     ("output=", "--output "), ("output:", "--output:")):
        text = text.replace(lib, cli)
    return InvalidArgumentError(text)


def load_user_model_for(args):
    """``--model REF`` with ``--checkpoint`` as its state dict and the adapter options -> ``LoadedCheckpoint``.

    The model is :func:`pointlens.models.load_user_model`'s adapter (the user's layer names). Its record
    (reference, kwargs, adapter options, checkpoint and source SHA-256, where the state dict was found, the
    critical/Grad-CAM layer) is put in ``args.model_record`` so the run folder's config.json holds it; the
    detected layer is stated on stderr unless ``--quiet``.
    """
    from pointlens.models import LoadedCheckpoint, load_user_model
    from pointlens.models.hooks import find_pool_layer

    try:
        model = load_user_model(args.model, args.checkpoint, kwargs=args.model_kwargs,
                                input_layout=args.input_layout, output_index=args.output_index,
                                output=args.output, device=args.device)
    except InvalidArgumentError as e:
        raise _cli_names(e) from None
    record = model.spec.to_dict()
    if isinstance(getattr(model, "pool_layer", None), str):
        record["pool_layer"] = f"{model.pool_layer} (its input, BCN; declared by the model)"
    else:
        try:
            record["pool_layer"] = find_pool_layer(model).describe()
        except InvalidArgumentError:
            record["pool_layer"] = None  # critical/gradcam then ask for a layer name
        if record["pool_layer"] and not getattr(args, "quiet", False):
            sys.stderr.write(f"pointlens: --model {args.model}: critical and gradcam read layer "
                             f"{record['pool_layer']}\n")
    args.model_record = record
    meta = {"format": "user", "version": None, "path": args.checkpoint, "normalization": "unit_sphere",
            "extra": {}, "spec": record}
    config = {"name": "user", "reference": args.model, "kwargs": record["kwargs"]}
    return LoadedCheckpoint(model, [], config, meta)


POINTS_ONLY = ("points",)
"""``modalities`` of the commands that work on point clouds only (explain, drop, benchmark, maximize, autoencoder)."""


def load_data_for(args, modalities=("points", "image")):
    """Load ``args.data`` with the split / points / sampling / limit options; returns a PointCloudDataset (an
    ImageDataset for image specs, where points / sampling do not apply).

    Raises:
        InvalidArgumentError: the data's modality is not one of ``modalities`` (one line naming ``--data`` and
            the commands that take such data).
    """
    from pointlens.data import load_dataset
    from pointlens.utils.validate import check_int

    refuse_other_modality(args, modalities)

    check_int("--points", args.points, minimum=1)  # the CLI's names in the errors, for every command
    if args.limit is not None:
        check_int("--limit", args.limit, minimum=1)
    split = None if args.split in (None, "all") else args.split
    return load_dataset(args.data, split=split, num_points=args.points, sampling=args.sampling,
                        seed=getattr(args, "seed", 0), limit=args.limit)


def refuse_other_modality(args, modalities) -> None:
    """Refuse, from the spec alone, ``args.data`` whose modality is not in ``modalities`` (one line naming
    ``--data``); point-only commands pass :data:`POINTS_ONLY`."""
    from pointlens.data import parse_spec
    from pointlens.data.spec import IMAGE_KINDS

    try:
        image = parse_spec(args.data)[0] in IMAGE_KINDS
    except InvalidArgumentError:
        return  # not a spec this check can read: the data loader reports it (or a test's stand-in loads it)
    if image and "image" not in modalities:
        cmd = getattr(args, "command", None) or "this command"
        raise bad_argument("--data", args.data, f"point-cloud data: `pointlens {cmd}` works on point clouds; "
                           "explain images with `pointlens explainer train|apply|evaluate` or, in Python, "
                           "create_attribution(name, model, modality='image')")
    if not image and "points" not in modalities:
        raise bad_argument("--data", args.data, "image data (digitscenes[:...] or voc:PATH)")


def num_model_classes(model, points: torch.Tensor) -> int:
    """Number of logits ``model`` produces, from one forward pass on the first cloud (or image)."""
    from pointlens.models.hooks import preserve_model_state

    with preserve_model_state(model), torch.no_grad():
        model.eval()
        out = model(points[:1])
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise CheckpointError(f"--checkpoint: the model returned {shape} for one cloud; "
                              "expected logits (1, C)")
    return int(out.shape[1])


def check_classes(args, loaded, dataset, device) -> int:
    """Raise :class:`CheckpointError` when the checkpoint's class count differs from the data's; return it."""
    if len(dataset) == 0:
        raise bad_argument("--data", f"{args.data} (split {args.split})", "at least one cloud")
    c = num_model_classes(loaded.model, torch.from_numpy(dataset.inputs[:1]).to(device))
    names = list(getattr(loaded, "class_names", None) or [])
    source = f"--model {args.model}" if getattr(args, "model", None) else f"--checkpoint {args.checkpoint}"
    if c != dataset.num_classes:
        raise CheckpointError(
            f"{source}: the model predicts {c} classes but the data {args.data} has "
            f"{dataset.num_classes} classes; expected a checkpoint trained on the data's classes")
    if names and len(names) != c:  # one count per message: the checkpoint's names disagree with its own logits
        raise CheckpointError(f"{source}: it stores {len(names)} class names for "
                              f"a model with {c} logits; expected one name per logit")
    return c


def load_model_and_data(args, modalities=("points", "image")):
    """Checkpoint, dataset and device for a command, checked to agree on the number of classes (``modalities``:
    the data the command takes, see :func:`load_data_for`)."""
    device = resolve_device(args.device)
    refuse_other_modality(args, modalities)
    loaded = load_checkpoint_for(args)
    dataset = load_data_for(args, modalities)
    check_classes(args, loaded, dataset, device)
    if not loaded.class_names and getattr(loaded, "meta", {}).get("format") == "user":
        loaded.class_names = list(dataset.class_names)  # a user's model has no names of its own
    return loaded, dataset, device


def parse_option(text: str, name: str = "--option") -> tuple[str, object]:
    """``KEY=VALUE`` -> ``(key, value)`` with VALUE read as int, float, true/false/none or text."""
    if "=" not in text or not text.split("=", 1)[0].strip():
        raise bad_argument(name, text, "KEY=VALUE, e.g. --option steps=32")
    key, raw = (s.strip() for s in text.split("=", 1))
    low = raw.lower()
    if low in ("true", "false"):
        return key, low == "true"
    if low == "none":
        return key, None
    for cast in (int, float):
        try:
            return key, cast(raw)
        except ValueError:
            pass
    return key, raw


def vars_for_config(args) -> dict:
    """The parsed arguments as a JSON-safe dict (without the handler function)."""
    return {k: v for k, v in vars(args).items() if k != "func"}


def make_attribution(name: str, model, *, alpha: float = 1.0, options: dict | None = None, seed: int | None = None,
                     arg: str = "--method"):
    """Build attribution method ``name`` through the registry (:func:`pointlens.attribution.create_attribution`,
    the one place names and options are validated).

    ``alpha`` goes to ``pointshift`` only and ``seed`` to the stochastic methods (unless ``options`` set them).

    Raises:
        InvalidArgumentError: unknown name (named after ``arg``) or an option the method does not take.
    """
    from pointlens.attribution import check_method, create_attribution, is_stochastic

    opts = dict(options or {})
    check_method(name, opts, arg=arg)
    if name == "pointshift":
        opts.setdefault("alpha", alpha)
    if seed is not None and is_stochastic(name):
        opts.setdefault("seed", seed)
    return create_attribution(name, model, arg=arg, **opts)
