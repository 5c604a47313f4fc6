"""Trained explainers (Stalder et al., NeurIPS 2022): one objective for every modality; point clouds and images.

* :mod:`~pointlens.explainer.objective` — the objective written once (target / non-target masks,
  classification on the masked input, negative entropy of the complement, area bounds, smoothness, mask
  areas) and the RTIS baseline objective;
* :mod:`~pointlens.explainer.modality` — the :class:`Modality` protocol: what a modality supplies (mask
  application, smoothness);
* :mod:`~pointlens.explainer.points` — the point-cloud modality (shift to the centre, k-NN total variation);
* :mod:`~pointlens.explainer.images` — the image modality (``m ⊙ x``, anisotropic total variation on the grid);
* :mod:`~pointlens.explainer.network` — segmentation backbones giving ``(B, C, N)`` (point networks) or
  ``(B, C, H, W)`` (``unet``) mask logits;
* :mod:`~pointlens.explainer.train` — training (validation split, early stopping, exact resume), saving,
  loading and applying explainers;
* :mod:`~pointlens.explainer.baselines` — attribution methods turned into per-class masks.

See docs/explainer.md.
"""

from pointlens.explainer.baselines import attribution_masks, class_truth, minmax_normalise
from pointlens.explainer.evaluate import evaluate_methods, table_csv, table_markdown
from pointlens.explainer.images import ImageModality, ImageState, grid_total_variation
from pointlens.explainer.modality import Modality
from pointlens.explainer.network import DEFAULT_NETWORK, DGCNNSeg, PointNetSeg, UNet, create_explainer_network
from pointlens.explainer.objective import (
    OBJECTIVES,
    PRESETS,
    ObjectiveTerms,
    ObjectiveWeights,
    RTISWeights,
    area_bounds,
    class_masks,
    classification_loss,
    negative_entropy,
    rtis_objective,
    stalder_objective,
)
from pointlens.explainer.points import PointModality, PointState, apply_point_mask, knn_total_variation
from pointlens.explainer.train import (
    ExplainerConfig,
    ExplainerResult,
    LoadedExplainer,
    explain_masks,
    load_explainer,
    present_classes,
    save_explainer,
    train_explainer,
)

__all__ = [
    "Modality", "OBJECTIVES", "PRESETS", "ObjectiveTerms", "ObjectiveWeights", "RTISWeights", "area_bounds",
    "class_masks", "classification_loss", "negative_entropy", "rtis_objective", "stalder_objective",
    "PointModality", "PointState", "apply_point_mask", "knn_total_variation", "DGCNNSeg", "PointNetSeg",
    "create_explainer_network", "ImageModality", "ImageState", "grid_total_variation", "UNet", "DEFAULT_NETWORK",
    "ExplainerConfig", "ExplainerResult", "LoadedExplainer", "explain_masks",
    "load_explainer", "present_classes", "save_explainer", "train_explainer", "attribution_masks", "class_truth",
    "minmax_normalise", "evaluate_methods", "table_csv", "table_markdown",
]
