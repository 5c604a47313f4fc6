"""Local explanations for point clouds: one API, Captum-shaped.

``scores = Method(model, **options).attribute(points, target=None)`` maps ``(B, N, 3)`` points to ``(B, N)``
scores (higher = more important for ``target``; ``None`` = the predicted class). Build a method by name with
:func:`create_attribution`; :func:`list_attributions` lists the names. Image methods (``(B, 3, H, W)`` ->
``(B, H, W)``) live in :mod:`pointlens.attribution.image` and are built with ``modality="image"``. See
docs/attribution.md.
"""

from __future__ import annotations

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
from pointlens.attribution.image import (
    ExtremalPerturbation,
    IGOSPlusPlus,
    ImageAttribution,
    ImageGradCAM,
    ImageGradient,
    ImageIntegratedGradients,
    ImageRISE,
)
from pointlens.attribution.lime import LIME, kmeans_segments, weighted_ridge
from pointlens.attribution.occlusion import KNNOcclusion, Occlusion
from pointlens.attribution.random import RandomAttribution
from pointlens.attribution.registry import (
    MODALITIES,
    attribution_class,
    check_method,
    create_attribution,
    is_stochastic,
    list_attributions,
    method_options,
)
from pointlens.attribution.rise import RISE

__all__ = [
    "Attribution", "PointShift", "Gradient", "GradientXInput", "IntegratedGradients", "SmoothGrad",
    "Occlusion", "KNNOcclusion", "CriticalPoints", "RISE", "LIME", "PointGradCAM", "RandomAttribution",
    "create_attribution",
    "list_attributions", "attribution_class", "method_options", "is_stochastic", "check_method", "integration_rule",
    "kmeans_segments", "weighted_ridge",
    "canonical_order", "per_point_draws",
    "MODALITIES", "ImageAttribution", "ImageGradCAM", "ImageRISE", "ImageGradient", "ImageIntegratedGradients",
    "ExtremalPerturbation", "IGOSPlusPlus",
]
