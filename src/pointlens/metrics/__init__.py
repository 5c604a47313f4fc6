"""pointlens.metrics: two separate areas.

* Metrics of 3D OUTPUTS — the sub-package ``pointlens.metrics.shape`` (nearest-neighbour distances,
  F-score@d, Chamfer presets, Hausdorff, voxel IoU), used by the reconstruction study (``pointlens.recon``)
  and by anything that generates clouds.
* Metrics that JUDGE EXPLANATIONS — the modules ``faithfulness`` (deletion/insertion, faithfulness
  correlation), ``localisation`` (against ground-truth masks), ``sanity`` (parameter randomisation, random
  logit), ``complexity`` and ``robustness``.

Statistics they share (correlations, bootstrap intervals) are in :mod:`pointlens.stats`.

Every metric is a plain function over tensors; the most used ones are re-exported here.
"""

from pointlens.metrics.complexity import entropy_complexity, sparseness  # noqa: F401
from pointlens.metrics.faithfulness import deletion_curve, faithfulness_correlation, insertion_curve  # noqa: F401
from pointlens.metrics.localisation import (  # noqa: F401
    auroc,
    localisation_metrics,
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    topk_intersection,
)
from pointlens.metrics.robustness import max_sensitivity, resampling_consistency  # noqa: F401
from pointlens.metrics.sanity import model_randomisation, random_logit_test  # noqa: F401
from pointlens.metrics.shape import (  # noqa: F401
    CHAMFER_PRESETS,
    DEFAULT_THRESHOLD,
    FScore,
    NNResult,
    chamfer_distance,
    compare_shapes,
    fscore,
    hausdorff_distance,
    iou_points,
    nn_distances,
    normalize_unit_cube,
    unit_cube_transform,
    voxel_iou,
    voxelize_mesh,
    voxelize_points,
)
