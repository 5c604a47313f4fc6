"""Shape metrics done right: nearest-neighbour distances, F-score@d, Chamfer, Hausdorff and voxel IoU.

The metrics of 3D OUTPUTS (reconstructions, generated clouds), apart from the metrics that judge explanations
(the other modules of :mod:`pointlens.metrics`). Modules: :mod:`~pointlens.metrics.shape.distances`
(nearest neighbours), :mod:`~pointlens.metrics.shape.scores` (F-score, Chamfer, Hausdorff, normalisation),
:mod:`~pointlens.metrics.shape.voxels` (voxel grids and IoU); every public name is re-exported here.

Every function takes either batched tensors ``(B, N, 3)`` / ``(B, M, 3)`` (``N`` and ``M`` may differ) or
two lists of ``B`` ragged clouds ``[(N_i, 3), ...]`` / ``[(M_i, 3), ...]``; a single ``(N, 3)`` cloud is
treated as a batch of one. Results live on the input's device.

Conventions (see docs/metrics_shape.md):

* Distances are plain Euclidean unless ``squared=True`` (Chamfer only).
* F-score follows Tatarchenko et al. (CVPR 2019) and what3d: precision = share of PREDICTED points whose
  nearest ground-truth point is strictly closer than ``d``; recall = share of GROUND-TRUTH points whose
  nearest predicted point is strictly closer than ``d``; ``F = 2PR / (P + R)``, and ``F = 0`` when
  ``P + R = 0``.
* The default threshold ``d = 0.01`` is 1% of the side of a unit cube: it assumes both shapes were
  normalised with :func:`normalize_unit_cube` (the ground truth's bounding box mapped into
  ``[-0.5, 0.5]^3``, longest side 1).
* Chamfer: explicit options, and presets reproducing PyTorch3D, kaolin and a plain (non-squared) convention.
* Nearest neighbours: a chunked brute-force torch path (bounded memory, any device) and a KD-tree path
  (``scipy.spatial.cKDTree``, CPU, all cores). ``backend="auto"`` uses the KD-tree on CPU when
  ``N * M >= KDTREE_MIN_PAIRS`` (measured crossover, see benchmarks/bench_shape_metrics.py) and torch
  otherwise. Both paths choose the neighbour index, then recompute the distance exactly as
  ``||a_i - b_j||`` in torch, so the two paths agree bit for bit when they choose the same neighbour, and
  gradients flow to both clouds through the distances (not through the choice), as in PyTorch3D.
"""

from pointlens.metrics.shape.distances import DEFAULT_MEMORY_BUDGET, KDTREE_MIN_PAIRS, NNResult, nn_distances
from pointlens.metrics.shape.scores import (
    CHAMFER_PRESETS,
    DEFAULT_THRESHOLD,
    WHAT3D_THRESHOLDS,
    FScore,
    chamfer_distance,
    compare_shapes,
    fscore,
    hausdorff_distance,
    normalize_unit_cube,
    unit_cube_transform,
)
from pointlens.metrics.shape.voxels import iou_points, voxel_iou, voxelize_mesh, voxelize_points

__all__ = [
    "CHAMFER_PRESETS",
    "DEFAULT_MEMORY_BUDGET",
    "DEFAULT_THRESHOLD",
    "KDTREE_MIN_PAIRS",
    "WHAT3D_THRESHOLDS",
    "FScore",
    "NNResult",
    "chamfer_distance",
    "compare_shapes",
    "fscore",
    "hausdorff_distance",
    "iou_points",
    "nn_distances",
    "normalize_unit_cube",
    "unit_cube_transform",
    "voxel_iou",
    "voxelize_mesh",
    "voxelize_points",
]
