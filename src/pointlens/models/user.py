"""Your own classifier: build it from an importable factory, load its state dict safely, adapt its conventions.

A model reference is ``PATH.py:FACTORY`` (a Python file) or ``package.module:FACTORY`` (an importable module);
``FACTORY`` is a function or class returning an ``nn.Module`` (called with ``**kwargs``). The checkpoint is a
state dict, bare or under ``model_state_dict``, ``state_dict`` or ``model``; ``module.`` prefixes (DataParallel /
DistributedDataParallel) and ``model.`` prefixes (a training wrapper's ``self.model``) are stripped. It is read
with ``torch.load(..., weights_only=True)``: tensors and plain containers only, never pickled code. The factory's
module is the only code that runs.

Example:
    >>> from pointlens.models import load_user_model
    >>> model = load_user_model("pointnet_cls.py:get_model", "best_model.pth", kwargs={"k": 40},
    ...                         input_layout="bcn", output_index=0, output="log_softmax")
    >>> model(points).shape        # (B, 40): points (B, N, 3)
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from pointlens.errors import CheckpointError, InvalidArgumentError, PointlensError, bad_argument
from pointlens.models.adapters import INPUT_LAYOUTS, OUTPUT_KINDS, ModelAdapter, describe_output
from pointlens.models.checkpoint import _check_state, _device, _torch_load

STATE_KEYS = ("model_state_dict", "state_dict", "model")
WRAPPER_PREFIXES = ("module.", "model.")


@dataclass
class UserModelSpec:
    """Everything needed to rebuild a user model; what a run folder records (``to_dict``).

    Attributes:
        reference: ``PATH.py:FACTORY`` or ``package.module:FACTORY``.
        checkpoint: the state-dict file (None: the factory's own weights).
        kwargs: keyword arguments of the factory.
        input_layout, output_index, output: see :class:`pointlens.models.adapters.ModelAdapter`.
        checkpoint_sha256: digest of the checkpoint file (filled when loaded).
        source_path: absolute path of the factory's source file (filled when loaded; None if it has none).
        source_sha256: its digest.
        state_key: where the state dict was found (``"model_state_dict"``, ..., ``""`` = the file itself).
        stripped_prefix: the wrapper prefix removed from the keys (``"module."``) or ``""``.
    """

    reference: str
    checkpoint: str | None = None
    kwargs: dict = field(default_factory=dict)
    input_layout: str = "bnc"
    output_index: int | None = None
    output: str = "logits"
    checkpoint_sha256: str | None = None
    source_path: str | None = None
    source_sha256: str | None = None
    state_key: str | None = None
    stripped_prefix: str = ""

    def to_dict(self) -> dict:
        """Plain JSON-safe dict (``load_user_model(**{k: d[k] for k in REBUILD_KEYS})`` rebuilds the model)."""
        return asdict(self)


REBUILD_KEYS = ("reference", "checkpoint", "kwargs", "input_layout", "output_index", "output")


def rebuild_user_model(record: dict, device="cpu", verify: bool = True) -> ModelAdapter:
    """The model a run used, from its record (``UserModelSpec.to_dict()``, e.g. a run folder's
    ``config.json["arguments"]["model_record"]``).

    Args:
        record: the recorded dict.
        device: where to put the model.
        verify: refuse a checkpoint whose SHA-256 differs from the recorded one (:class:`CheckpointError`).

    Returns:
        the same model as :func:`load_user_model` gave the run.
    """
    if not isinstance(record, dict) or "reference" not in record:
        raise bad_argument("record", type(record).__name__, "a user-model record with a 'reference' entry")
    args = {k: record[k] for k in REBUILD_KEYS if k in record}
    expect = record.get("checkpoint_sha256") if verify else None
    return load_user_model(args.pop("reference"), args.pop("checkpoint", None), device=device,
                           expect_sha256=expect, **args)


def file_sha256(path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def parse_reference(ref: str) -> tuple[str, str, bool]:
    """``"a/b.py:make"`` -> ``("a/b.py", "make", True)``; ``"pkg.mod:Net"`` -> ``("pkg.mod", "Net", False)``."""
    expected = "PATH.py:FACTORY or package.module:FACTORY (e.g. models/pointnet.py:get_model)"
    if not isinstance(ref, str) or ":" not in ref:
        raise bad_argument("model reference", ref, expected)
    where, _, factory = ref.rpartition(":")
    where, factory = where.strip(), factory.strip()
    if not where or not factory.isidentifier():
        raise bad_argument("model reference", ref, expected)
    is_file = where.endswith(".py") or "/" in where or "\\" in where
    if not is_file and not all(part.isidentifier() for part in where.split(".")):
        raise bad_argument("model reference", ref, expected)
    return where, factory, is_file


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:200]}" if text else type(e).__name__


def _import_file(path: Path, ref: str):
    if not path.is_file():
        raise InvalidArgumentError(f"model reference {ref!r}: file {path} not found")
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    name = f"pointlens_user_model_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InvalidArgumentError(f"model reference {ref!r}: {path} cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    sys.path.insert(0, folder)  # sibling imports (from pointnet_utils import ...), as `python file.py` allows
    try:
        spec.loader.exec_module(module)
    except BaseException as e:
        sys.modules.pop(name, None)
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        raise InvalidArgumentError(f"model reference {ref!r}: importing {path} failed ({_first_line(e)})") from None
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    return module


def import_factory(ref: str):
    """The callable named by ``ref`` and the path of its source file (or None)."""
    where, factory, is_file = parse_reference(ref)
    if is_file:
        module = _import_file(Path(where), ref)
    else:
        try:
            module = importlib.import_module(where)
        except BaseException as e:
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            raise InvalidArgumentError(f"model reference {ref!r}: cannot import module {where} "
                                       f"({_first_line(e)})") from None
    fn = getattr(module, factory, None)
    if fn is None or not callable(fn):
        names = sorted(k for k, v in vars(module).items()
                       if callable(v) and not k.startswith("_") and getattr(v, "__module__", None) == module.__name__)
        shown = ", ".join(names[:20]) or "no public functions or classes"
        what = "no" if fn is None else "a non-callable"
        raise InvalidArgumentError(f"model reference {ref!r}: {what} {factory!r} in {where} (it defines: {shown})")
    source = getattr(module, "__file__", None)
    return fn, source


def find_state_dict(obj, path) -> tuple[dict, str]:
    """The state dict inside a loaded checkpoint object and the key it was under (``""`` = the object)."""
    if isinstance(obj, dict):
        for key in STATE_KEYS:
            value = obj.get(key)
            if isinstance(value, dict) and value and all(isinstance(v, torch.Tensor) for v in value.values()):
                return value, key
        if obj and all(isinstance(k, str) for k in obj) and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj, ""
        keys = ", ".join(map(str, list(obj)[:10]))
        raise CheckpointError(f"{path}: no state dict found (looked under {', '.join(STATE_KEYS)} and the file "
                              f"itself; its keys: {keys or 'none'})")
    raise CheckpointError(f"{path}: no state dict found (the file holds a {type(obj).__name__}, expected a dict "
                          "of tensors)")


def strip_prefixes(state: dict, expected) -> tuple[dict, str]:
    """Remove wrapper prefixes carried by EVERY key when the model's own keys lack them.

    ``module.`` (DataParallel / DDP) and ``model.`` (a training wrapper holding the network as ``self.model``),
    repeatedly (``module.model.conv1.weight`` -> ``conv1.weight``). Returns the new dict and what was removed.
    """
    expected = set(expected)
    removed = ""
    changed = True
    while changed and state:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in expected):
                state = {k[len(prefix):]: v for k, v in state.items()}
                removed += prefix
                changed = True
    return state, removed


def _parse_kwargs(kwargs) -> dict:
    if kwargs is None:
        return {}
    if isinstance(kwargs, str):
        try:
            kwargs = json.loads(kwargs)
        except json.JSONDecodeError as e:
            raise bad_argument("model kwargs", kwargs, f"a JSON object, e.g. '{{\"k\": 40}}' ({e.msg})") from None
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise bad_argument("model kwargs", kwargs, "a JSON object of keyword arguments, e.g. {\"k\": 40}")
    return dict(kwargs)


def check_output(model: ModelAdapter, ref: str, num_points: int = 64, dims: int = 3) -> int:
    """Run ``model`` once on a probe batch; return ``C``; clear errors when the output is not usable.

    Checks that the selected output is ``(B, C)`` and agrees with the declared ``output`` kind (log-softmax rows
    exponentiate to sum 1, probability rows are non-negative and sum to 1; logits that look like
    probabilities are refused, since softmax would be taken of them).
    """
    from pointlens.models.hooks import min_points, model_device, preserve_model_state

    n = max(num_points, min_points(model))
    dev = model_device(model)
    dtype = next((t.dtype for t in model.parameters() if t.is_floating_point()), torch.float32)
    probe = (torch.rand(2, n, dims, generator=torch.Generator().manual_seed(1)) * 2 - 1).to(dev, dtype)
    devices = [dev.index or 0] if dev.type == "cuda" else []
    try:
        with preserve_model_state(model), torch.random.fork_rng(devices=devices), torch.no_grad():
            model.eval()
            raw = model.raw(probe)
    except PointlensError:
        raise
    except Exception as e:
        raise InvalidArgumentError(f"model reference {ref!r}: the model failed on a probe batch (2, {n}, {dims}) "
                                   f"with input_layout={model.input_layout!r} ({_first_line(e)})") from None
    try:
        out = model.select(raw)
    except InvalidArgumentError as e:
        raise InvalidArgumentError(f"model reference {ref!r}: the model returned {describe_output(raw)} for 2 "
                                   f"clouds; {e}") from None
    if out.shape[0] != 2:
        raise InvalidArgumentError(f"model reference {ref!r}: the model returned {tuple(out.shape)} for 2 clouds; "
                                   "expected class scores (2, C)")
    selected = raw[model.output_index] if model.output_index is not None else raw
    sums = selected.double().exp().sum(1) if model.output == "log_softmax" else selected.double().sum(1)
    looks_like_probs = bool((selected >= 0).all() and torch.allclose(sums, torch.ones_like(sums), atol=1e-3))
    if model.output == "log_softmax" and not torch.allclose(sums, torch.ones_like(sums), atol=1e-3):
        raise InvalidArgumentError(f"model reference {ref!r}: output='log_softmax' but exp(output) sums to "
                                   f"{float(sums[0]):.4g} per cloud, not 1; use output='logits'")
    if model.output == "probs" and not looks_like_probs:
        raise InvalidArgumentError(f"model reference {ref!r}: output='probs' but the rows are not probabilities "
                                   f"(sum {float(sums[0]):.4g}); use output='logits' or 'log_softmax'")
    if model.output == "logits" and looks_like_probs and out.shape[1] > 1:
        raise InvalidArgumentError(f"model reference {ref!r}: the outputs are probabilities (non-negative, rows sum "
                                   "to 1); say output='probs' so metrics do not softmax them again")
    return int(out.shape[1])


def load_user_model(reference: str, checkpoint=None, *, kwargs=None, input_layout: str = "bnc",
                    output_index: int | None = None, output: str = "logits", device="cpu",
                    expect_sha256: str | None = None) -> ModelAdapter:
    """Build a user's classifier from a reference, load its weights safely, give it pointlens' conventions.

    Args:
        reference: ``PATH.py:FACTORY`` or ``package.module:FACTORY``; ``FACTORY(**kwargs)`` must return an
            ``nn.Module``. A file is imported as its own module (its folder first on ``sys.path`` while it is
            imported, so ``from sibling import x`` works); this is the only code that runs.
        checkpoint: state-dict file: bare, or under ``model_state_dict`` / ``state_dict`` / ``model``; a
            ``module.`` or ``model.`` prefix on every key is removed (repeatedly). Read with
            ``weights_only=True`` (a file holding pickled objects is refused, nothing in it runs). ``None``:
            keep the factory's weights.
        kwargs: keyword arguments of the factory (a dict or a JSON object string).
        input_layout: ``"bnc"`` (model takes ``(B, N, 3)``) or ``"bcn"`` (takes ``(B, 3, N)``).
        output_index: which element of a tuple output is the class output (e.g. 0 for ``(log_probs, aux)``).
        output: ``"logits"``, ``"log_softmax"`` or ``"probs"`` (see :class:`ModelAdapter`).
        device: where to put the model.
        expect_sha256: if given, the checkpoint's SHA-256 must equal it (a rerun from a recorded run).

    Returns:
        :class:`pointlens.models.adapters.ModelAdapter` in eval mode mapping ``(B, N, 3) -> (B, C)``; its layer
        names are the model's own; ``model.spec`` is the :class:`UserModelSpec` (with digests) to record.

    Raises:
        InvalidArgumentError: bad reference (missing file, module or factory; the import or the factory
            raising; a factory not returning a module), bad kwargs/adapter options, an output that is not
            ``(B, C)`` or does not match ``output``.
        CheckpointError: missing/unreadable checkpoint, pickled objects in it, no state dict, weights that do
            not fit (a few missing/unexpected keys and shape mismatches listed), digest mismatch.
    """
    if input_layout not in INPUT_LAYOUTS:
        raise bad_argument("input_layout", input_layout, "one of " + ", ".join(INPUT_LAYOUTS))
    if output not in OUTPUT_KINDS:
        raise bad_argument("output", output, "one of " + ", ".join(OUTPUT_KINDS))
    dev = _device(device)
    kw = _parse_kwargs(kwargs)
    spec = UserModelSpec(reference=reference, checkpoint=None if checkpoint is None else str(checkpoint),
                         kwargs=kw, input_layout=input_layout, output_index=output_index, output=output)
    state = None
    if checkpoint is not None:
        path = Path(checkpoint)
        if not path.is_file():
            raise CheckpointError(f"{path}: checkpoint file not found")
        spec.checkpoint_sha256 = file_sha256(path)
        if expect_sha256 is not None and expect_sha256 != spec.checkpoint_sha256:
            raise CheckpointError(f"{path}: the file changed since it was recorded (SHA-256 "
                                  f"{spec.checkpoint_sha256[:12]}..., recorded {str(expect_sha256)[:12]}...)")
        # Read (safely) before any user code runs: a bad file is reported without importing anything.
        state, spec.state_key = find_state_dict(_torch_load(path, "cpu"), path)
    factory, source = import_factory(reference)
    if source and Path(source).is_file():
        spec.source_path = str(Path(source).resolve())
        spec.source_sha256 = file_sha256(source)
    try:
        net = factory(**kw)
    except BaseException as e:
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        raise InvalidArgumentError(f"model reference {reference!r}: the factory raised {_first_line(e)}"
                                   + (f" (kwargs {kw})" if kw else "")) from None
    if not isinstance(net, nn.Module):
        raise InvalidArgumentError(f"model reference {reference!r}: the factory returned a {type(net).__name__}, "
                                   "expected a torch.nn.Module")
    if state is not None:
        state, spec.stripped_prefix = strip_prefixes(state, net.state_dict())
        _check_state(net, state, Path(checkpoint))
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as e:  # pragma: no cover - _check_state catches the usual causes
            raise CheckpointError(f"{checkpoint}: the weights do not fit the model ({str(e)[:300]})") from None
    model = ModelAdapter(net, input_layout=input_layout, output_index=output_index, output=output)
    model.to(dev).eval()
    check_output(model, reference)
    model.spec = spec
    return model
