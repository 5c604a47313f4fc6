"""Tests of pointlens.ops.removal against numpy references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pointlens.errors import InvalidArgumentError
from pointlens.ops.removal import cloud_centre, delete_points, keep_points, kept_indices, shift_to_centre


def _pts(b=3, n=11, seed=0, dtype=torch.float64):
    return torch.randn(b, n, 3, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("n", [1, 2, 7, 10])
def test_cloud_centre_matches_numpy(n):
    x = _pts(4, n)
    np.testing.assert_allclose(cloud_centre(x, "median")[:, 0].numpy(), np.median(x.numpy(), axis=1),
                               atol=1e-15)
    np.testing.assert_allclose(cloud_centre(x, "mean")[:, 0].numpy(), x.numpy().mean(axis=1), atol=1e-15)
    assert cloud_centre(x).shape == (4, 1, 3)


def test_median_centre_resists_an_outlier_unlike_the_mean():
    x = _pts(1, 9)
    y = x.clone()
    y[0, 0] = 1e6
    s = x.sort(dim=1).values  # one replaced point moves the median by at most one order statistic
    med = cloud_centre(y, "median")[:, 0]
    assert bool(((med >= s[:, 3]) & (med <= s[:, 5])).all())
    assert (cloud_centre(y, "mean") - cloud_centre(x, "mean")).abs().max() > 1e4


def test_delete_points_matches_numpy_delete_and_keeps_order():
    x = _pts(3, 12)
    idx = torch.tensor([[0, 5, 11], [3, 2, 1], [7, 10, 4]])
    out, kept = delete_points(x, idx, return_kept=True)
    assert out.shape == (3, 9, 3) and kept.shape == (3, 9)
    for b in range(3):
        ref = np.delete(x[b].numpy(), idx[b].numpy(), axis=0)
        np.testing.assert_array_equal(out[b].numpy(), ref)
        np.testing.assert_array_equal(kept[b].numpy(), np.setdiff1d(np.arange(12), idx[b].numpy()))
    np.testing.assert_array_equal(kept_indices(12, idx).numpy(), kept.numpy())


def test_delete_points_is_differentiable_and_passes_gradient_to_kept_points_only():
    x = _pts(1, 6).requires_grad_(True)
    delete_points(x, torch.tensor([[1, 4]])).sum().backward()
    np.testing.assert_array_equal(x.grad[0, :, 0].numpy(), [1, 0, 1, 1, 0, 1])


def test_keep_points_matches_fancy_indexing():
    x = _pts(2, 8)
    idx = torch.tensor([[7, 0, 3], [1, 2, 6]])
    out = keep_points(x, idx)
    for b in range(2):
        np.testing.assert_array_equal(out[b].numpy(), x[b].numpy()[idx[b].numpy()])


@pytest.mark.parametrize("centre", ["median", "mean"])
def test_shift_to_centre_moves_masked_points_onto_the_whole_cloud_centre(centre):
    x = _pts(2, 10)
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[0, [1, 2, 9]] = True
    mask[1, 0] = True
    out = shift_to_centre(x, mask, centre)
    ref = np.median(x.numpy(), axis=1) if centre == "median" else x.numpy().mean(axis=1)
    for b in range(2):
        for i in range(10):
            want = ref[b] if mask[b, i] else x[b, i].numpy()
            np.testing.assert_allclose(out[b, i].numpy(), want, atol=1e-15)
    # a precomputed centre (B, 3) and a 0/1 float mask give the same result
    out2 = shift_to_centre(x, mask.double(), torch.as_tensor(ref))
    torch.testing.assert_close(out2, out, rtol=0, atol=1e-15)


@pytest.mark.parametrize("call", [
    lambda x: delete_points(x, torch.tensor([[0, 0], [1, 2]])),            # repeated index
    lambda x: delete_points(x, torch.tensor([[0, 5], [1, 2]])),            # out of range
    lambda x: delete_points(x, torch.tensor([[0, 1]])),                    # wrong batch
    lambda x: delete_points(x, torch.tensor([[0.0], [1.0]])),              # float indices
    lambda x: delete_points(x, torch.arange(5).expand(2, 5)),              # deletes everything
    lambda x: delete_points(x[0], torch.tensor([[0]])),                    # not batched
    lambda x: keep_points(x, torch.zeros(2, 0, dtype=torch.long)),         # keeps nothing
    lambda x: shift_to_centre(x, torch.zeros(2, 4, dtype=torch.bool)),     # mask shape
    lambda x: shift_to_centre(x, torch.full((2, 5), 0.5)),                 # non-binary mask
    lambda x: shift_to_centre(x, torch.zeros(2, 5, dtype=torch.bool), "mode"),
    lambda x: cloud_centre(x, "mode"),
])
def test_bad_arguments_raise_invalid_argument(call):
    with pytest.raises(InvalidArgumentError):
        call(_pts(2, 5))
