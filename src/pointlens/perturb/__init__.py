"""pointlens.perturb

Removing points (:mod:`pointlens.ops.removal`: delete them, or shift them to the cloud's centre) and the
salient-point dropping experiment built on it (:mod:`pointlens.perturb.dropping`).
"""

from pointlens.ops.removal import cloud_centre, delete_points, keep_points, kept_indices, shift_to_centre
from pointlens.perturb.dropping import (
    DEFAULT_BUDGETS,
    MODES,
    DropResult,
    ScoreOnce,
    check_budgets,
    drop_curve,
    drop_schedule,
    run_drop_experiment,
)

__all__ = [
    "DEFAULT_BUDGETS",
    "MODES",
    "DropResult",
    "ScoreOnce",
    "check_budgets",
    "cloud_centre",
    "delete_points",
    "drop_curve",
    "drop_schedule",
    "keep_points",
    "kept_indices",
    "run_drop_experiment",
    "shift_to_centre",
]
