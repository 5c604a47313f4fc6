"""The attribution registry: the ONE place that turns a method name and its options into a method.

Every entry point (the library's :func:`create_attribution`, ``pointlens explain`` / ``drop`` / ``benchmark``
and the coming packages) resolves names here, so a name or option is validated once, with one message.
"""

from __future__ import annotations

import difflib
import inspect

from torch import nn

from pointlens.attribution.base import Attribution
from pointlens.attribution.critical import CriticalPoints
from pointlens.attribution.gradcam import PointGradCAM
from pointlens.attribution.gradient import Gradient, GradientXInput, IntegratedGradients, PointShift, SmoothGrad
from pointlens.attribution.image import IMAGE_METHODS
from pointlens.attribution.lime import LIME
from pointlens.attribution.occlusion import KNNOcclusion, Occlusion
from pointlens.attribution.random import RandomAttribution
from pointlens.attribution.rise import RISE
from pointlens.errors import bad_argument
from pointlens.utils.validate import check_choice

_REGISTRY: dict[str, type[Attribution]] = {
    cls.name: cls
    for cls in (PointShift, Gradient, GradientXInput, IntegratedGradients, SmoothGrad, Occlusion,
                KNNOcclusion, CriticalPoints, RISE, LIME, PointGradCAM, RandomAttribution)
}

_IMAGE_REGISTRY: dict[str, type[Attribution]] = {cls.name: cls for cls in IMAGE_METHODS}

MODALITIES = ("points", "image")
"""Input kinds: ``"points"`` (``(B, N, 3)`` clouds, the default) and ``"image"`` (``(B, 3, H, W)`` images); the
same values as a dataset's ``.modality``."""

_REGISTRIES = {"points": _REGISTRY, "image": _IMAGE_REGISTRY}


def _registry(modality) -> dict[str, type[Attribution]]:
    return _REGISTRIES[check_choice("modality", "points" if modality is None else modality, MODALITIES)]


def list_attributions(modality: str = "points") -> list[str]:
    """Names accepted by :func:`create_attribution` for ``modality``, in a fixed order.

    Args:
        modality: ``"points"`` (default) or ``"image"``.

    Returns:
        points: ``["pointshift", "gradient", "gradxinput", "ig", "smoothgrad", "occlusion", "occlusion-knn",
        "critical", "rise", "lime", "gradcam", "random"]``; image: ``["gradcam", "rise", "gradient", "ig",
        "extremal", "igos++"]``.
    """
    return list(_registry(modality))


def attribution_class(name: str, *, arg: str = "method", modality: str = "points") -> type[Attribution]:
    """The class registered under ``name`` for ``modality``.

    Args:
        name: a method name.
        arg: how the caller calls the argument in error messages (e.g. ``"--method"`` in the CLI).
        modality: ``"points"`` (default) or ``"image"``.

    Raises:
        InvalidArgumentError: unknown name (the message lists the registered names, the closest ones, and says
            when the name belongs to the other modality).
    """
    registry = _registry(modality)
    if not isinstance(name, str) or name not in registry:
        hint = ""
        if isinstance(name, str):
            other = next((m for m, r in _REGISTRIES.items() if m != (modality or "points") and name in r), None)
            close = difflib.get_close_matches(name, list(registry), n=3, cutoff=0.5)
            if other is not None:
                hint = f" ({name!r} is a{'n' if other == 'image' else ''} {other} method: pass modality={other!r})"
            elif close:
                hint = f" (did you mean {', '.join(close)}?)"
        raise bad_argument(arg, name, "one of " + ", ".join(registry) + hint)
    return registry[name]


def method_options(name: str, modality: str = "points") -> set[str]:
    """The keyword options method ``name`` accepts (its class and every base class).

    Returns:
        set of option names, e.g. ``{"alpha", "centre", "loss", "batch_size", ...}`` for ``pointshift``.
    """
    params = {}
    for klass in attribution_class(name, modality=modality).__mro__:
        if klass is object or "__init__" not in vars(klass):
            continue
        params.update(inspect.signature(klass.__init__).parameters)
    return {k for k, p in params.items() if p.kind == p.KEYWORD_ONLY}


def is_stochastic(name: str, modality: str = "points") -> bool:
    """True when method ``name`` takes a ``seed`` (its scores depend on random draws)."""
    return "seed" in method_options(name, modality)


def check_method(name: str, options: dict | None = None, *, arg: str = "method", modality: str = "points") -> str:
    """Validate a method name and the names of its options without building it.

    Args:
        name: a method name.
        options: ``{option: value}`` to check against the method's keyword options (values are checked when
            the method is built). ``smoothgrad`` forwards options to its wrapped method and is not checked here.
        arg: how the caller calls the name argument in error messages.
        modality: ``"points"`` (default) or ``"image"``.

    Returns:
        ``name``.

    Raises:
        InvalidArgumentError: unknown name, or an option the method does not take (the message lists them).
    """
    cls = attribution_class(name, arg=arg, modality=modality)
    if options is not None and not isinstance(options, dict):
        raise bad_argument("options", type(options).__name__, "a dict {option: value}")
    if options and cls is not SmoothGrad:
        known = method_options(name, modality)
        unknown = sorted(set(options) - known)
        if unknown:
            close = difflib.get_close_matches(unknown[0], sorted(known), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise bad_argument("options", ", ".join(unknown),
                               f"options of {name!r}: " + ", ".join(sorted(known)) + hint)
    return name


def create_attribution(name: str, model: nn.Module, *, arg: str = "method", modality: str = "points",
                       **options) -> Attribution:
    """Build the attribution method ``name`` for ``model``.

    Args:
        name: one of :func:`list_attributions` (of ``modality``).
        model: any ``nn.Module`` mapping ``(B, N, 3)`` to logits ``(B, C)`` (``modality="image"``: ``(B, 3, H, W)``
            images to logits).
        arg: how the caller calls the name argument in error messages (``"--method"`` in the CLI).
        modality: ``"points"`` (default: the point methods) or ``"image"`` (:mod:`pointlens.attribution.image`;
            ``.attribute(images (B, 3, H, W), target) -> (B, H, W)``).
        **options: the method's options (see its class); ``smoothgrad`` takes ``method=`` (a name) plus the
            wrapped method's options.

    Returns:
        An :class:`Attribution`; call ``.attribute(points, target=None) -> (B, N)``.

    Raises:
        InvalidArgumentError: unknown name or option, or a bad option value.

    Example:
        >>> scores = create_attribution("pointshift", model, alpha=1).attribute(points, target=labels)
        >>> maps = create_attribution("gradcam", cnn, modality="image").attribute(images)   # (B, H, W)
    """
    check_method(name, options, arg=arg, modality=modality)
    return attribution_class(name, modality=modality)(model, **options)
