"""Options shared by subcommands, so every command spells them the same way."""

from __future__ import annotations

import argparse
import sys

import torch

from pointlens.errors import CheckpointError, bad_argument
from pointlens.utils.io import to_json


def add_parser(sub, name: str, help: str, example: str, description: str | None = None) -> argparse.ArgumentParser:
    """Add a subcommand parser whose ``--help`` ends with a runnable example."""
    return sub.add_parser(name, help=help, description=description or help,
                          epilog=f"example:\n  {example}",
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def add_output_options(p: argparse.ArgumentParser, out_required: bool = True) -> None:
    """``--out DIR``, ``--json``, ``--quiet``."""
    p.add_argument("--out", required=out_required, metavar="DIR", help="run folder to write (created if needed)")
    p.add_argument("--json", action="store_true", help="print the metrics object as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_seed_device(p: argparse.ArgumentParser) -> None:
    """``--seed S`` and ``--device cpu|cuda``."""
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same numbers (default 0)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")


def add_data_options(p: argparse.ArgumentParser, split_default: str | None = "test") -> None:
    """``--data SPEC``, ``--split``, ``--points``, ``--sampling``, ``--limit``."""
    p.add_argument("--data", default="shapeparts", metavar="SPEC",
                   help="data spec: shapeparts[:key=value,...], modelnet40-h5:PATH, modelnet40-txt:PATH, "
                        "meshes:PATH or npz:PATH (default shapeparts)")
    p.add_argument("--split", default=split_default, choices=["train", "test", "all"],
                   help=f"which split to use (default {split_default})")
    p.add_argument("--points", type=int, default=1024, help="points per cloud (default 1024)")
    p.add_argument("--sampling", default="first", choices=["first", "random", "fps"],
                   help="how to pick --points points from each cloud (default first)")
    p.add_argument("--limit", type=int, default=None, help="use only the first LIMIT clouds of the split")


def print_json(obj) -> None:
    """Print ``obj`` as JSON on stdout (one object)."""
    sys.stdout.write(to_json(obj) + "\n")
    sys.stdout.flush()


def add_checkpoint_options(p: argparse.ArgumentParser) -> None:
    """``--checkpoint CKPT`` and ``--checkpoint-format pointlens|learning3d``."""
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="classifier checkpoint to explain")
    p.add_argument("--checkpoint-format", default="pointlens", choices=["pointlens", "learning3d"],
                   help="checkpoint format (default pointlens; learning3d = its PointNet state_dict)")


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
    """Load ``args.checkpoint`` in its format on ``args.device``; returns the ``LoadedCheckpoint``."""
    from pointlens.models import load_checkpoint

    return load_checkpoint(args.checkpoint, format=args.checkpoint_format, device=args.device)


def load_data_for(args):
    """Load ``args.data`` with the split / points / sampling / limit options; returns a PointCloudDataset."""
    from pointlens.data import load_dataset
    from pointlens.utils.validate import check_int

    check_int("--points", args.points, minimum=1)  # the CLI's names in the errors, for every command
    if args.limit is not None:
        check_int("--limit", args.limit, minimum=1)
    split = None if args.split in (None, "all") else args.split
    return load_dataset(args.data, split=split, num_points=args.points, sampling=args.sampling,
                        seed=getattr(args, "seed", 0), limit=args.limit)


def num_model_classes(model, points: torch.Tensor) -> int:
    """Number of logits ``model`` produces, from one forward pass on the first cloud."""
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
    c = num_model_classes(loaded.model, torch.from_numpy(dataset.points[:1]).to(device))
    names = list(getattr(loaded, "class_names", None) or [])
    if c != dataset.num_classes:
        raise CheckpointError(
            f"--checkpoint {args.checkpoint}: the model predicts {c} classes but the data {args.data} has "
            f"{dataset.num_classes} classes; expected a checkpoint trained on the data's classes")
    if names and len(names) != c:  # one count per message: the checkpoint's names disagree with its own logits
        raise CheckpointError(f"--checkpoint {args.checkpoint}: it stores {len(names)} class names for "
                              f"a model with {c} logits; expected one name per logit")
    return c


def load_model_and_data(args):
    """Checkpoint, dataset and device for a command, checked to agree on the number of classes."""
    device = resolve_device(args.device)
    loaded = load_checkpoint_for(args)
    dataset = load_data_for(args)
    check_classes(args, loaded, dataset, device)
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
