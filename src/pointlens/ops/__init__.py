"""Batched geometry ops in plain torch with bounded memory: kNN, farthest point sampling, ball query, gather.

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
