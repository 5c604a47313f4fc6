"""Model registry (timm-style): ``@register_model(name)`` on a builder, ``create_model(name, C, ...)``.

One model family per file (``pointnet.py``, ``pointnet2.py``, ``dgcnn.py``; the image classifier ``cnn.py``);
each registers its builder when imported. ``create_model`` imports the built-in families on first use.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable

from torch import nn

# ModelNet40 class names in the official order; learning3d checkpoints use it (one list, in data.classes).
from pointlens.data.classes import MODELNET40_CLASSES  # noqa: F401  (re-exported)
from pointlens.errors import bad_argument
from pointlens.utils.validate import check_int

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_BUILTIN = ("pointlens.models.pointnet", "pointlens.models.pointnet2", "pointlens.models.dgcnn",
            "pointlens.models.cnn")
_loaded = False

def _load_builtin() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for mod in _BUILTIN:
            importlib.import_module(mod)


def register_model(name: str):
    """Decorator registering a model builder (class or function ``(num_classes, **kwargs) -> nn.Module``).

    Args:
        name: the registry name (lower case, e.g. ``"pointnet"``); re-registering a name replaces it.

    Returns:
        the decorator, which returns the builder unchanged.

    Example:
        >>> @register_model("tiny")
        ... class Tiny(nn.Module): ...
    """
    if not isinstance(name, str) or not name:
        raise bad_argument("name", name, "a non-empty string")

    def deco(builder):
        _REGISTRY[name] = builder
        return builder

    return deco


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`, sorted."""
    _load_builtin()
    return sorted(_REGISTRY)


def create_model(name: str, num_classes: int, **kwargs) -> nn.Module:
    """Build a registered model.

    Args:
        name: one of :func:`list_models` (``pointnet``, ``pointnet2``, ``dgcnn``; ``cnn`` for images).
        num_classes: number of output logits ``C`` (>= 1).
        **kwargs: the family's options (see its class docstring and docs/models.md).

    Returns:
        the model (in training mode, as ``nn.Module`` constructors leave it), mapping ``(B, N, 3)`` to
        ``(B, C)`` (``cnn``: images ``(B, 3, H, W)`` to ``(B, C)``).

    Raises:
        InvalidArgumentError: unknown name (the message lists the names), bad ``num_classes`` or unknown
            option.
    """
    _load_builtin()
    if name not in _REGISTRY:
        raise bad_argument("model", name, "one of " + ", ".join(sorted(_REGISTRY)))
    num_classes = check_int("num_classes", num_classes, minimum=1)
    builder = _REGISTRY[name]
    try:
        sig = inspect.signature(builder)
    except (TypeError, ValueError):
        sig = None
    if sig is not None and not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        accepted = [p for p in sig.parameters if p not in ("self", "num_classes")]
        unknown = [k for k in kwargs if k not in accepted]
        if unknown:
            raise bad_argument(f"{name} option", ", ".join(unknown), "one of " + ", ".join(accepted))
    return builder(num_classes, **kwargs)
