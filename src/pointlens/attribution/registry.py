"""The attribution registry: the ONE place that turns a method name and its options into a method.

Every entry point (the library's :func:`create_attribution`, ``pointlens explain`` / ``drop`` / ``benchmark``
and the coming packages) resolves names here, so a name or option is validated once, with one message.
"""

from __future__ import annotations

import inspect

from torch import nn

from pointlens.attribution.base import Attribution
from pointlens.attribution.critical import CriticalPoints
from pointlens.attribution.gradcam import PointGradCAM
from pointlens.attribution.gradient import Gradient, GradientXInput, IntegratedGradients, PointShift, SmoothGrad
from pointlens.attribution.lime import LIME
from pointlens.attribution.occlusion import KNNOcclusion, Occlusion
from pointlens.attribution.random import RandomAttribution
from pointlens.attribution.rise import RISE
from pointlens.errors import bad_argument

_REGISTRY: dict[str, type[Attribution]] = {
    cls.name: cls
    for cls in (PointShift, Gradient, GradientXInput, IntegratedGradients, SmoothGrad, Occlusion,
                KNNOcclusion, CriticalPoints, RISE, LIME, PointGradCAM, RandomAttribution)
}


def list_attributions() -> list[str]:
    """Names accepted by :func:`create_attribution`, in a fixed order.

    Returns:
        ``["pointshift", "gradient", "gradxinput", "ig", "smoothgrad", "occlusion", "occlusion-knn",
        "critical",
        "rise", "lime", "gradcam", "random"]``.
    """
    return list(_REGISTRY)


def attribution_class(name: str, *, arg: str = "method") -> type[Attribution]:
    """The class registered under ``name``.

    Args:
        name: a method name.
        arg: how the caller calls the argument in error messages (e.g. ``"--method"`` in the CLI).

    Raises:
        InvalidArgumentError: unknown name (the message lists the registered names).
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        raise bad_argument(arg, name, "one of " + ", ".join(_REGISTRY))
    return _REGISTRY[name]


def method_options(name: str) -> set[str]:
    """The keyword options method ``name`` accepts (its class and every base class).

    Returns:
        set of option names, e.g. ``{"alpha", "centre", "loss", "batch_size", ...}`` for ``pointshift``.
    """
    params = {}
    for klass in attribution_class(name).__mro__:
        if klass is object or "__init__" not in vars(klass):
            continue
        params.update(inspect.signature(klass.__init__).parameters)
    return {k for k, p in params.items() if p.kind == p.KEYWORD_ONLY}


def is_stochastic(name: str) -> bool:
    """True when method ``name`` takes a ``seed`` (its scores depend on random draws)."""
    return "seed" in method_options(name)


def check_method(name: str, options: dict | None = None, *, arg: str = "method") -> str:
    """Validate a method name and the names of its options without building it.

    Args:
        name: a method name.
        options: ``{option: value}`` to check against the method's keyword options (values are checked when
            the method is built). ``smoothgrad`` forwards options to its wrapped method and is not checked here.
        arg: how the caller calls the name argument in error messages.

    Returns:
        ``name``.

    Raises:
        InvalidArgumentError: unknown name, or an option the method does not take (the message lists them).
    """
    cls = attribution_class(name, arg=arg)
    if options is not None and not isinstance(options, dict):
        raise bad_argument("options", type(options).__name__, "a dict {option: value}")
    if options and cls is not SmoothGrad:
        known = method_options(name)
        unknown = sorted(set(options) - known)
        if unknown:
            raise bad_argument("options", ", ".join(unknown), f"options of {name!r}: " + ", ".join(sorted(known)))
    return name


def create_attribution(name: str, model: nn.Module, *, arg: str = "method", **options) -> Attribution:
    """Build the attribution method ``name`` for ``model``.

    Args:
        name: one of :func:`list_attributions`.
        model: any ``nn.Module`` mapping ``(B, N, 3)`` to logits ``(B, C)``.
        arg: how the caller calls the name argument in error messages (``"--method"`` in the CLI).
        **options: the method's options (see its class); ``smoothgrad`` takes ``method=`` (a name) plus the
            wrapped method's options.

    Returns:
        An :class:`Attribution`; call ``.attribute(points, target=None) -> (B, N)``.

    Raises:
        InvalidArgumentError: unknown name or option, or a bad option value.

    Example:
        >>> scores = create_attribution("pointshift", model, alpha=1).attribute(points, target=labels)
    """
    check_method(name, options, arg=arg)
    return attribution_class(name)(model, **options)
