"""Shared test fixtures: deterministic seeds, the real data in ../shared/data (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from pointlens.utils.perf import tune_allocator

tune_allocator()  # the same allocator settings as the CLI: much less time in page faults

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("POINTLENS_SHARED_DATA", REPO.parent / "shared" / "data"))
MODELNET_NPZ = SHARED_DATA / "modelnet40_normal_resampled_subset_2048.npz"
LEARNING3D_CKPT = SHARED_DATA / "learning3d_pointnet_cls_modelnet40_best_model.t7"


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    np.random.seed(0)
    yield


@pytest.fixture
def modelnet_npz() -> Path:
    """Path of the real ModelNet40 subset; skips the test on machines without ../shared/data."""
    if not MODELNET_NPZ.is_file():
        pytest.skip("../shared/data is absent (real ModelNet40 subset)")
    return MODELNET_NPZ


@pytest.fixture
def learning3d_checkpoint() -> Path:
    """Path of learning3d's PointNet checkpoint; skips the test on machines without ../shared/data."""
    if not LEARNING3D_CKPT.is_file():
        pytest.skip("../shared/data is absent (learning3d PointNet checkpoint)")
    return LEARNING3D_CKPT
