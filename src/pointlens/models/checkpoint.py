"""Checkpoints: pointlens's own plain format and import of learning3d's PointNet classifier.

A pointlens checkpoint is a ``torch.save``-d dict of plain types and tensors only, so it loads with
``torch.load(..., weights_only=True)`` (no code runs while loading)::

    {"format": "pointlens-checkpoint", "version": 1,
     "model": {"name": ..., "num_classes": ..., "kwargs": {...}},   # model.config
     "state_dict": {name: tensor},
     "weights_sha256": "...",                                        # digest of state_dict (see weights_digest)
     "class_names": [...], "normalization": "unit_sphere", "extra": {...}}

Loading refuses, with one line naming the file, anything that is not exactly that: pickled objects (never
executed), a digest that does not match the weights (a flipped bit), NaN/infinite weights, a config outside its
range (checked, and the model first built on the ``meta`` device so a hostile config allocates nothing), class
names that are not one string per logit. Files written before the digest existed load without that check.
"""

from __future__ import annotations

import hashlib
import pickle
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pointlens.errors import CheckpointError, PointlensError, bad_argument
from pointlens.models.registry import MODELNET40_CLASSES, create_model
from pointlens.utils.io import save_torch
from pointlens.utils.validate import check_choice

MAX_CLASSES = 100_000
"""Most logits a checkpoint's config may ask for (the data readers accept as many classes)."""
FORMAT_NAME = "pointlens-checkpoint"
FORMAT_VERSION = 1
FORMATS = ("pointlens", "learning3d")
NORMALIZATIONS = ("unit_sphere", "unit_cube", "none")


@dataclass
class LoadedCheckpoint:
    """A model restored from a checkpoint.

    Attributes:
        model: the model, in eval mode, on the requested device.
        class_names: one name per logit.
        config: ``model.config`` (``name``, ``num_classes``, ``kwargs``).
        meta: everything else: ``format``, ``version``, ``path``, ``normalization``, ``extra`` (and for
            learning3d files the wrapper's other entries, e.g. ``epoch``).
    """

    model: nn.Module
    class_names: list[str]
    config: dict
    meta: dict = field(default_factory=dict)


def _plain(value, name: str):
    """Recursively convert ``value`` to types ``torch.load(weights_only=True)`` reads back unchanged.

    Kept: ``None``, ``str``, ``bool``, ``int``, ``float``, tensors (moved to the CPU), lists, tuples and dicts
    (primitive keys such as an optimizer state's integer keys are kept; other keys become strings).
    Converted: numpy scalars to Python numbers, numeric numpy arrays to tensors (others to lists), paths to
    strings. Anything else raises :class:`InvalidArgumentError` naming ``name``.
    """
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biuf":
            return torch.from_numpy(np.ascontiguousarray(value))
        return _plain(value.tolist(), name)
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return [_plain(v, f"{name}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return tuple(_plain(v, f"{name}[{i}]") for i, v in enumerate(value))
    if isinstance(value, dict):
        primitive = (str, int, float, bool, type(None))
        keys = [k if isinstance(k, primitive) else str(k) for k in value]
        return {key: _plain(v, f"{name}[{k!r}]") for key, (k, v) in zip(keys, value.items())}
    raise bad_argument(
        name,
        f"a {type(value).__name__}",
        "plain values only (dict, list, tuple, str, int, float, bool, None, arrays or tensors)",
    )


def weights_digest(state: dict) -> str:
    """SHA-256 (hex) of a ``state_dict``: every entry's name, dtype, shape and raw bytes, in sorted name order.

    Written by :func:`save_checkpoint` as ``weights_sha256`` and verified by :func:`load_checkpoint`, so one
    flipped bit in any weight is detected.
    """
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key]
        if not isinstance(t, torch.Tensor):
            raise bad_argument(f"state_dict[{key!r}]", type(t).__name__, "a tensor")
        t = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{key}|{t.dtype}|{tuple(state[key].shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(
    path, model: nn.Module, *, class_names, normalization: str = "unit_sphere", extra: dict | None = None
) -> Path:
    """Write a pointlens checkpoint atomically.

    Args:
        path: file to write (parent folders are created).
        model: a pointlens model (it needs ``model.config``, as every :func:`create_model` model has).
        class_names: one name per logit.
        normalization: how inputs must be normalised: ``unit_sphere`` (centre + scale into the unit sphere),
            ``unit_cube`` or ``none``.
        extra: optional dict of plain values (metrics, training arguments, ...).

    Returns:
        the path written.

    Raises:
        InvalidArgumentError: model without ``config``, wrong number of class names, non-plain ``extra``.
    """
    config = getattr(model, "config", None)
    if not isinstance(config, dict) or not {"name", "num_classes", "kwargs"} <= set(config):
        raise bad_argument(
            "model",
            type(model).__name__,
            "a pointlens model with a .config dict (built by pointlens.models.create_model)",
        )
    if isinstance(class_names, str) or not hasattr(class_names, "__len__"):
        raise bad_argument("class_names", class_names, f"a list of {config['num_classes']} names")
    names = [str(c) for c in class_names]
    if len(names) != config["num_classes"]:
        raise bad_argument("class_names", f"{len(names)} names", f"{config['num_classes']} (one per logit)")
    check_choice("normalization", normalization, NORMALIZATIONS)
    if extra is not None and not isinstance(extra, dict):
        raise bad_argument("extra", type(extra).__name__, "a dict of plain values or None")
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    obj = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "model": _plain(config, "model.config"),
        "state_dict": state,
        "weights_sha256": weights_digest(state),
        "class_names": names,
        "normalization": normalization,
        "extra": _plain(extra or {}, "extra"),
    }
    return save_torch(path, obj)


def _torch_load(path: Path, device):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # e.g. "Detected pickle protocol 4" on odd files
            return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        found = (re.search(r"([\w.]+) was not an allowed global", text)
                 or re.search(r"[Uu]nsupported (?:global|GLOBAL)[: ]+(?:GLOBAL )?([\w.]+)", text)
                 or re.search(r"GLOBAL ([\w.]+)", text))
        if found or "allowed global" in text:
            # torch <= 2.5: "... was not an allowed global"; 2.6+: "Unsupported global: GLOBAL x.y";
            # 2.13: "Trying to load unsupported GLOBAL posix.system whose module posix is blocked."
            what = found.group(1) if found else _first_reason(text)
            raise CheckpointError(
                f"{path}: not a plain checkpoint: it holds pickled objects ({what}), which are "
                "refused for safety; save tensors and plain values only (see "
                "pointlens.models.save_checkpoint)"
            ) from None
        raise CheckpointError(
            f"{path}: not a readable torch checkpoint (corrupt, truncated or another file type)"
        ) from None
    except Exception as e:  # whatever a corrupt file makes torch raise: one CheckpointError
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path}: not a readable torch checkpoint (corrupt, truncated or another file type: {msg[:160]})"
        ) from None


def _first_reason(text: str) -> str:
    """The line of torch's weights-only refusal that says why (not its advice about ``weights_only``)."""
    lines = [s.strip() for s in text.splitlines() if s.strip()]
    for line in lines[1:]:
        if not line.startswith(("Check the documentation", "In PyTorch", "Re-running", "WeightsUnpickler")):
            return line[:120]
    return "an object torch's safe loader refuses"


def _check_weights(state: dict, path: Path, digest) -> None:
    """Refuse non-tensor entries, a digest that does not match, and NaN/infinite floating-point weights."""
    if not all(isinstance(k, str) for k in state):
        raise CheckpointError(f"{path}: the state_dict has non-string keys; expected parameter names")
    not_tensor = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensor:
        raise CheckpointError(f"{path}: the state_dict entry {not_tensor[0]!r} is not a tensor")
    if digest is not None:
        if not isinstance(digest, str) or weights_digest(state) != digest:
            raise CheckpointError(f"{path}: the weights do not match the digest written with them (the file was "
                                  "altered or corrupted after it was saved); retrain or restore the file")
    for key, t in state.items():
        if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise CheckpointError(f"{path}: the weight {key!r} has {bad} NaN or infinite value(s) of {t.numel()}; "
                                  "a diverged or corrupted model is refused")


def _check_config(config, path: Path) -> tuple[str, int, dict]:
    """``(name, num_classes, kwargs)`` of a stored config, type- and range-checked before anything is built."""
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: 'model' is a {type(config).__name__}; expected a dict with name, "
                              "num_classes and kwargs")
    name, n, kwargs = config.get("name"), config.get("num_classes"), config.get("kwargs")
    if not isinstance(name, str) or not name:
        raise CheckpointError(f"{path}: the model name is {name!r}; expected a registered model name")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CLASSES:
        raise CheckpointError(f"{path}: the config asks for num_classes={str(n)[:40]}; expected an integer in "
                              f"[1, {MAX_CLASSES}]")
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise CheckpointError(f"{path}: the model kwargs are a {type(kwargs).__name__}; expected a dict of "
                              "options by name")
    return name, n, dict(kwargs)


def _check_state(model: nn.Module, state: dict, path: Path) -> None:
    """Raise CheckpointError listing a few missing/unexpected keys and shape mismatches."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and isinstance(state[k], torch.Tensor) and state[k].shape != v.shape
    ]
    not_tensor = [k for k in state if k in expected and not isinstance(state[k], torch.Tensor)]
    if missing or unexpected or wrong or not_tensor:
        parts = []
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches (file vs model)", wrong),
            ("non-tensor entries", not_tensor),
        ):
            if keys:
                shown = ", ".join(keys[:5]) + (f" ... ({len(keys)} in all)" if len(keys) > 5 else "")
                parts.append(f"{label}: {shown}")
        raise CheckpointError(f"{path}: the weights do not fit the model ({'; '.join(parts)})")


def _stored_class_names(stored, n: int, path: Path) -> list[str]:
    if stored is None:
        return [f"class_{i}" for i in range(n)]
    if not isinstance(stored, (list, tuple)) or not all(isinstance(c, str) for c in stored) or len(stored) != n:
        what = f"{len(stored)} entries" if isinstance(stored, (list, tuple)) else f"a {type(stored).__name__}"
        raise CheckpointError(f"{path}: the stored class_names are {what}; expected a list of {n} strings (one "
                              "per logit)")
    return list(stored)


def _class_names(given, default: list[str], num_classes: int) -> list[str]:
    if given is None:
        return list(default)
    if isinstance(given, str) or not hasattr(given, "__len__"):
        raise bad_argument("class_names", given, f"a list of {num_classes} names")
    names = [str(c) for c in given]
    if len(names) != num_classes:
        raise bad_argument(
            "class_names", f"{len(names)} names", f"{num_classes} (one per logit of the checkpoint)"
        )
    return names


def _device(device) -> torch.device:
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise bad_argument("device", device, "a torch device such as 'cpu' or 'cuda'") from None


def _finish(model: nn.Module, state: dict, path: Path, device: torch.device) -> nn.Module:
    _check_state(model, state, path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:  # pragma: no cover - _check_state catches the usual causes
        raise CheckpointError(f"{path}: the weights do not fit the model ({str(e)[:300]})") from None
    model = model.to(device).eval()
    _probe(model, path, device)
    return model


def _probe(model: nn.Module, path: Path, device) -> None:
    """Refuse a model whose logits on a fixed test cloud (a random image for ``modality == "image"`` models) are
    NaN/infinite (finite but corrupted weights: an exponent bit flipped to 1e38, a negative BatchNorm variance)."""
    g = torch.Generator().manual_seed(0)
    if getattr(model, "modality", "points") == "image":  # an image classifier: a random 32x32 (or larger) image
        side = max(32, int(getattr(model, "min_size", 1)))
        x = torch.rand(1, 3, side, side, generator=g)
    else:
        n = max(64, int(getattr(model, "min_points", 1)))
        x = torch.nn.functional.normalize(torch.randn(1, n, 3, generator=g), dim=-1) * torch.rand(1, n, 1, generator=g)
    try:
        with torch.no_grad():
            out = model(x.to(device))
    except PointlensError:
        return  # a model that cannot run on this probe (an unusual input contract) is left to its caller
    if isinstance(out, torch.Tensor) and out.is_floating_point() and not bool(torch.isfinite(out).all()):
        raise CheckpointError(f"{path}: the model gives NaN or infinite logits on a test input (a cloud inside "
                              "the unit sphere or a random image): corrupted weights, e.g. a negative BatchNorm "
                              "variance or a weight near 1e38; refused")


def _load_pointlens(obj, path: Path, device, num_classes, class_names) -> LoadedCheckpoint:
    if not isinstance(obj, dict) or obj.get("format") != FORMAT_NAME:
        hint = ""
        if isinstance(obj, dict) and any(str(k).endswith("feature_model.conv1.weight") for k in obj):
            hint = "; it looks like a learning3d state_dict: use format='learning3d'"
        raise CheckpointError(
            f"{path}: not a pointlens checkpoint (no 'format': '{FORMAT_NAME}' entry){hint}"
        )
    version = obj.get("version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {version!r:.40} is not supported (this pointlens reads "
            f"version {FORMAT_VERSION})"
        )
    config, state = obj.get("model"), obj.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(
            f"{path}: malformed pointlens checkpoint (needs 'model' with name/num_classes/kwargs "
            "and a 'state_dict' dict)"
        )
    name, n, kwargs = _check_config(config, path)
    _check_weights(state, path, obj.get("weights_sha256"))
    if num_classes is not None and num_classes != n:
        raise CheckpointError(
            f"{path}: the checkpoint has {n} classes; num_classes={num_classes} was requested"
        )
    stored = _stored_class_names(obj.get("class_names"), n, path)
    normalization = obj.get("normalization", "unit_sphere")
    if normalization not in NORMALIZATIONS:
        raise CheckpointError(f"{path}: normalization {str(normalization)[:40]!r} is not one of "
                              f"{', '.join(NORMALIZATIONS)}")
    extra = obj.get("extra") or {}
    if not isinstance(extra, dict):
        raise CheckpointError(f"{path}: 'extra' is a {type(extra).__name__}; expected a dict")
    model = _build(name, n, kwargs, state, path)
    model = _finish(model, state, path, device)
    names = _class_names(class_names, stored, n)
    meta = {
        "format": "pointlens",
        "version": version,
        "path": str(path),
        "normalization": normalization,
        "extra": extra,
    }
    return LoadedCheckpoint(model, names, model.config, meta)


def _build(name: str, n: int, kwargs: dict, state: dict, path: Path) -> nn.Module:
    """Build the model on the ``meta`` device first (no memory), check the weights fit, then build it for real:
    a config asking for 10^12 classes or giant layers is refused without allocating anything."""
    try:
        with torch.device("meta"):
            probe = create_model(name, n, **kwargs)
    except PointlensError as e:
        raise CheckpointError(f"{path}: cannot rebuild the model from its config ({e})") from None
    except Exception as e:
        raise CheckpointError(f"{path}: cannot rebuild the model from its config ({type(e).__name__}: "
                              f"{' '.join(str(e).split())[:160]})") from None
    _check_state(probe, state, path)
    del probe
    try:
        return create_model(name, n, **kwargs)
    except PointlensError as e:
        raise CheckpointError(f"{path}: cannot rebuild the model from its config ({e})") from None


def _find_learning3d_state(obj) -> tuple[dict, str, dict]:
    """Return (state_dict, key prefix, other wrapper entries) for a learning3d file, or raise KeyError."""
    candidates = [(obj, {})] if isinstance(obj, dict) else []
    if isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(value, dict):
                others = {k: v for k, v in obj.items() if k != key and isinstance(v, (int, float, str, bool))}
                candidates.append((value, others))
    for sd, others in candidates:
        for key in sd:
            if isinstance(key, str) and key.endswith("feature_model.conv1.weight"):
                return sd, key[: -len("feature_model.conv1.weight")], others
    raise KeyError("feature_model.conv1.weight")


def _load_learning3d(obj, path: Path, device, num_classes, class_names) -> LoadedCheckpoint:
    try:
        sd, prefix, others = _find_learning3d_state(obj)
    except KeyError:
        raise CheckpointError(
            f"{path}: not a learning3d PointNet classifier state_dict (no "
            "'feature_model.conv1.weight' key, also not under 'model'/'state_dict')"
        ) from None
    sd = {k[len(prefix) :]: v for k, v in sd.items() if isinstance(k, str) and k.startswith(prefix)}
    _check_weights(sd, path, None)
    state = {}
    convs = 0
    while f"feature_model.conv{convs + 1}.weight" in sd:
        convs += 1
    heads = 0
    while f"linear{heads + 1}.weight" in sd:
        heads += 1
    if heads < 1:
        raise CheckpointError(f"{path}: learning3d state_dict without a 'linear1' head layer")
    for key, value in sd.items():
        inner = key.startswith("feature_model.")
        layer, _, param = (key[len("feature_model.") :] if inner else key).partition(".")
        kind = layer.rstrip("0123456789")
        digits = layer[len(kind) :]
        new_key = key  # keys left unmapped are reported as unexpected by _check_state
        if digits:
            i = int(digits) - 1
            if inner and kind in ("conv", "bn"):
                new_key = f"features.{i}.{kind}.{param}"
            elif not inner and kind == "linear":
                new_key = f"head.{i}.linear.{param}" if i < heads - 1 else f"head.{i}.{param}"
            elif not inner and kind == "bn":
                new_key = f"head.{i}.bn.{param}"
        state[new_key] = value
    try:
        channels = [int(sd[f"feature_model.conv{i}.weight"].shape[0]) for i in range(1, convs + 1)]
        hidden = [int(sd[f"linear{i}.weight"].shape[0]) for i in range(1, heads)]
        n = int(sd[f"linear{heads}.weight"].shape[0])
    except (AttributeError, IndexError, TypeError):
        raise CheckpointError(f"{path}: learning3d state_dict with non-tensor weights") from None
    if num_classes is not None and num_classes != n:
        raise CheckpointError(
            f"{path}: the checkpoint has {n} classes; num_classes={num_classes} was requested"
        )
    model = create_model(
        "pointnet",
        n,
        channels=channels,
        head=hidden,
        dropout=0.7,
        input_transform=False,
        feature_transform=False,
        conv_bias="feature_model.conv1.bias" in sd,
    )
    model = _finish(model, state, path, device)
    default = MODELNET40_CLASSES if n == len(MODELNET40_CLASSES) else [f"class_{i}" for i in range(n)]
    names = _class_names(class_names, default, n)
    meta = {
        "format": "learning3d",
        "version": None,
        "path": str(path),
        "normalization": "unit_sphere",
        "extra": {},
        **{k: v for k, v in others.items() if k not in ("format", "path")},
    }
    return LoadedCheckpoint(model, names, model.config, meta)


def load_checkpoint(
    path, format: str = "pointlens", device="cpu", num_classes: int | None = None, class_names=None
) -> LoadedCheckpoint:
    """Load a checkpoint safely (``torch.load(..., weights_only=True)``) and rebuild its model.

    Args:
        path: the checkpoint file.
        format: ``"pointlens"`` (written by :func:`save_checkpoint`) or ``"learning3d"`` (learning3d's
            PointNet classifier ``state_dict``, bare or wrapped in a dict such as
            ``{"model": sd, "epoch": ..}``;
            mapped onto a pointlens PointNet without T-Nets, dropout 0.7).
        device: where to put the model (``"cpu"``, ``"cuda"``, ...); tensors saved on a GPU load anywhere.
        num_classes: if given, the checkpoint must have this many classes.
        class_names: override the stored names (learning3d default: the 40 ModelNet40 names).

    Returns:
        :class:`LoadedCheckpoint` with the model in eval mode.

    Raises:
        CheckpointError: missing file, not a plain checkpoint (pickled objects, random bytes, truncated),
            wrong format, or weights that do not fit (lists a few missing/unexpected keys).
        InvalidArgumentError: bad ``format``, ``device`` or ``class_names``.
    """
    check_choice("format", format, FORMATS)
    dev = _device(device)
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    obj = _torch_load(path, "cpu")
    if format == "pointlens":
        return _load_pointlens(obj, path, dev, num_classes, class_names)
    return _load_learning3d(obj, path, dev, num_classes, class_names)
