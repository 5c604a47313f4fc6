"""pointlens.metrics: metrics for 3D outputs and for explanations.

* shape (``pointlens.metrics.shape``): F-score, Chamfer presets, Hausdorff, voxel IoU;
* explanations: ``faithfulness`` (deletion/insertion, faithfulness correlation), ``localisation`` (against
  ground-truth masks), ``sanity`` (parameter randomisation, random logit), ``complexity``, ``robustness``.

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
