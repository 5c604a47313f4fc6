"""Image attributions: the baselines of the trained-explainer paper (Stalder et al., NeurIPS 2022) on the same API
as the point methods.

``scores = create_attribution(name, model, modality="image", **options).attribute(images, target=None)`` maps
``(B, 3, H, W)`` images to ``(B, H, W)`` scores (higher = more important for ``target``). Names: ``gradcam``,
``rise``, ``gradient``, ``ig``, ``extremal``, ``igos++``. See docs/attribution.md, "Image methods".
"""

from __future__ import annotations

from pointlens.attribution.image.base import (
    OUTPUTS,
    ImageAttribution,
    gaussian_blur,
    gaussian_kernel,
    image_seeds,
    model_output,
    upsample,
)
from pointlens.attribution.image.extremal import BlurPyramid, ExtremalPerturbation, SmoothMaskGenerator
from pointlens.attribution.image.gradient import (
    ImageGradCAM,
    ImageGradient,
    ImageIntegratedGradients,
    default_gradcam_layer,
)
from pointlens.attribution.image.igos import IGOSPlusPlus
from pointlens.attribution.image.rise import ImageRISE

IMAGE_METHODS = (ImageGradCAM, ImageRISE, ImageGradient, ImageIntegratedGradients, ExtremalPerturbation,
                 IGOSPlusPlus)
"""The registered image methods, in the order :func:`~pointlens.attribution.list_attributions` lists them."""

__all__ = [
    "ImageAttribution", "ImageGradCAM", "ImageRISE", "ImageGradient", "ImageIntegratedGradients",
    "ExtremalPerturbation", "IGOSPlusPlus", "IMAGE_METHODS", "SmoothMaskGenerator", "BlurPyramid",
    "default_gradcam_layer", "gaussian_blur", "gaussian_kernel", "image_seeds", "model_output", "upsample",
    "OUTPUTS",
]
