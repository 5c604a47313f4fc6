"""Local explanations for point clouds: one API, Captum-shaped.

``scores = Method(model, **options).attribute(points, target=None)`` maps ``(B, N, 3)`` points to ``(B, N)``
scores (higher = more important for ``target``; ``None`` = the predicted class). Build a method by name with
:func:`create_attribution`; :func:`list_attributions` lists the names. See docs/attribution.md.
"""

from __future__ import annotations

import inspect

from torch import nn

from pointlens.attribution.base import Attribution, canonical_order, per_point_draws
from pointlens.attribution.critical import CriticalPoints
from pointlens.attribution.gradcam import PointGradCAM
from pointlens.attribution.gradient import (
    Gradient,
    GradientXInput,
    IntegratedGradients,
    PointShift,
    SmoothGrad,
    integration_rule,
)
from pointlens.attribution.lime import LIME, kmeans_segments, weighted_ridge
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


def attribution_class(name: str) -> type[Attribution]:
    """The class registered under ``name`` (raises InvalidArgumentError listing the names otherwise)."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise bad_argument("method", name, "one of " + ", ".join(_REGISTRY))
    return _REGISTRY[name]


def create_attribution(name: str, model: nn.Module, **options) -> Attribution:
    """Build the attribution method ``name`` for ``model``.

    Args:
        name: one of :func:`list_attributions`.
        model: any ``nn.Module`` mapping ``(B, N, 3)`` to logits ``(B, C)``.
        **options: the method's options (see its class); ``smoothgrad`` takes ``method=`` (a name) plus the
            wrapped method's options.

    Returns:
        An :class:`Attribution`; call ``.attribute(points, target=None) -> (B, N)``.

    Raises:
        InvalidArgumentError: unknown name or option, or a bad option value.

    Example:
        >>> scores = create_attribution("pointshift", model, alpha=1).attribute(points, target=labels)
    """
    cls = attribution_class(name)
    if cls is not SmoothGrad:
        params = {}
        for klass in cls.__mro__:
            if klass is object or "__init__" not in vars(klass):
                continue
            params.update(inspect.signature(klass.__init__).parameters)
        known = {k for k, p in params.items() if p.kind == p.KEYWORD_ONLY}
        unknown = sorted(set(options) - known)
        if unknown:
            accepted = f"options of {name!r}: " + ", ".join(sorted(known))
            raise bad_argument("options", ", ".join(unknown), accepted)
    return cls(model, **options)


__all__ = [
    "Attribution", "PointShift", "Gradient", "GradientXInput", "IntegratedGradients", "SmoothGrad",
    "Occlusion", "KNNOcclusion", "CriticalPoints", "RISE", "LIME", "PointGradCAM", "RandomAttribution",
    "create_attribution",
    "list_attributions", "attribution_class", "integration_rule", "kmeans_segments", "weighted_ridge",
    "canonical_order", "per_point_draws",
]
