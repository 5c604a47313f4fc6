"""Batched geometry ops in plain torch with bounded memory: kNN, farthest point sampling, ball query, gather,
and removing points (:mod:`pointlens.ops.removal`: delete them, keep a subset, or shift them to the cloud's
centre — the one way every package removes a point).

Each op works on ``(B, N, D)`` tensors on any device and processes queries in chunks so the largest temporary
is at most ``memory_budget`` bytes (default 256 MiB).
"""

from pointlens.ops.geometry import (  # noqa: F401
    KNN,
    ball_query,
    farthest_point_sampling,
    farthest_point_sampling_naive,
    gather_points,
    knn,
    knn_indices,
    knn_naive,
)
from pointlens.ops.removal import (  # noqa: F401
    CENTRES,
    apply_point_mask,
    cloud_centre,
    delete_points,
    keep_points,
    kept_indices,
    shift_to_centre,
)
