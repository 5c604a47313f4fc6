"""pointlens.metrics: shape metrics (``pointlens.metrics.shape``) and explanation metrics (other modules).

Only the shape metrics are re-exported here; import the explanation metrics from their modules.
"""

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
