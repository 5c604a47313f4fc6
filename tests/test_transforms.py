"""Transforms: normalisation closed forms, sampling against the geometry ops, augmentation invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pointlens.data import transforms as T
from pointlens.errors import InvalidArgumentError
from pointlens.ops import farthest_point_sampling, farthest_point_sampling_naive


def _cloud(b=3, n=50, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, n, d, generator=g) * torch.tensor([1.0, 2.0, 0.5] + [1.0] * (d - 3)) + 3.0


# --------------------------------------------------------------------------------------------- normalisation


def test_normalize_closed_form_and_inverse():
    pts = torch.tensor([[[1.0, 0, 0], [3.0, 0, 0]], [[0, 0, 0], [0, 0, 4.0]]])
    out, centre, scale = T.normalize_unit_sphere(pts, return_transform=True)
    assert torch.allclose(out, torch.tensor([[[-1.0, 0, 0], [1.0, 0, 0]], [[0, 0, -1.0], [0, 0, 1.0]]]))
    assert torch.allclose(centre, torch.tensor([[[2.0, 0, 0]], [[0, 0, 2.0]]]))
    assert torch.allclose(scale, torch.tensor([1.0, 2.0]))
    x = _cloud()
    y, c, s = T.normalize_unit_sphere(x, return_transform=True)
    assert torch.allclose(y.mean(1), torch.zeros(3, 3), atol=1e-6)
    assert torch.allclose(y.norm(dim=-1).amax(1), torch.ones(3), atol=1e-6)
    assert torch.allclose(y * s[:, None, None] + c, x, atol=1e-5)


def test_normalize_keeps_kind_normals_and_degenerate_cloud():
    x = _cloud(d=6).numpy()
    y = T.normalize_unit_sphere(x)
    assert isinstance(y, np.ndarray) and y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_array_equal(y[..., 3:], x[..., 3:])
    single = T.normalize_unit_sphere(x[0])
    np.testing.assert_allclose(single, y[0], atol=1e-6)
    same = T.normalize_unit_sphere(np.full((4, 3), 7.0))
    np.testing.assert_array_equal(same, np.zeros((4, 3)))


def test_normalize_rejects_bad_shape_and_nan():
    with pytest.raises(InvalidArgumentError, match="points"):
        T.normalize_unit_sphere(np.zeros((5, 2)))
    bad = np.zeros((2, 5, 3))
    bad[1, 2, 0] = np.nan
    with pytest.raises(InvalidArgumentError, match="NaN"):
        T.normalize_unit_sphere(bad)


# --------------------------------------------------------------------------------------------- sampling


def test_sample_first_and_extra_channels():
    x = _cloud(d=6)
    idx = T.sample_indices(x, 7, "first")
    assert torch.equal(idx, torch.arange(7).expand(3, 7))
    assert torch.equal(T.sample_points(x, 7, "first"), x[:, :7])


def test_sample_random_is_seeded_subset_and_uniform():
    x = _cloud(b=4, n=40)
    a = T.sample_indices(x, 15, "random", seed=3)
    assert torch.equal(a, T.sample_indices(x, 15, "random", seed=3))
    assert not torch.equal(a, T.sample_indices(x, 15, "random", seed=4))
    for row in a:
        assert len(set(row.tolist())) == 15 and bool((row[1:] > row[:-1]).all())
        assert 0 <= int(row.min()) and int(row.max()) < 40
    got = T.sample_points(x, 15, "random", seed=3)
    assert torch.equal(got, torch.gather(x, 1, a[..., None].expand(-1, -1, 3)))
    # every index is kept with probability n / N = 0.3 (2000 clouds: std 0.01)
    freq = torch.zeros(10)
    big = T.sample_indices(torch.zeros(2000, 10, 3), 3, "random", seed=0)
    freq.index_add_(0, big.reshape(-1), torch.ones(big.numel()))
    assert torch.allclose(freq / 2000, torch.full((10,), 0.3), atol=0.04)


def test_sample_fps_equals_geometry_ops(monkeypatch):
    x = _cloud(b=5, n=64)
    want = farthest_point_sampling(x, 16)
    assert torch.equal(T.sample_indices(x, 16, "fps"), want)
    assert torch.equal(want, farthest_point_sampling_naive(x, 16))
    monkeypatch.setattr(T, "_FPS_BUDGET", 64 * 4 * 3 * 2)  # two clouds per chunk: same answer
    assert torch.equal(T.sample_indices(x, 16, "fps"), want)
    assert torch.equal(T.sample_indices(x[0].numpy(), 16, "fps"), want[0])


def test_sample_errors():
    x = _cloud(n=10)
    with pytest.raises(InvalidArgumentError, match="n: got 11; expected at most 10"):
        T.sample_indices(x, 11)
    with pytest.raises(InvalidArgumentError, match="method"):
        T.sample_points(x, 5, "poisson")


# --------------------------------------------------------------------------------------------- augmentations


def test_rotation_matrices_closed_form():
    r = T.rotation_matrices(torch.tensor([math.pi / 2]), "y")[0]
    assert torch.allclose(r @ torch.tensor([1.0, 0, 0]), torch.tensor([0, 0, -1.0]), atol=1e-6)
    assert torch.allclose(r @ torch.tensor([0, 0, 1.0]), torch.tensor([1.0, 0, 0]), atol=1e-6)
    rz = T.rotation_matrices(torch.tensor([math.pi / 2]), "z")[0]
    assert torch.allclose(rz @ torch.tensor([1.0, 0, 0]), torch.tensor([0, 1.0, 0]), atol=1e-6)
    rx = T.rotation_matrices(torch.tensor([math.pi / 2]), "x")[0]
    assert torch.allclose(rx @ torch.tensor([0, 1.0, 0]), torch.tensor([0, 0, 1.0]), atol=1e-6)
    many = T.rotation_matrices(torch.rand(8) * 6, "x")
    assert torch.allclose(many @ many.transpose(1, 2), torch.eye(3).expand(8, 3, 3), atol=1e-6)
    assert torch.allclose(torch.linalg.det(many), torch.ones(8), atol=1e-6)


@pytest.mark.parametrize("axis", ["x", "y", "z"])
def test_rotate_up_preserves_up_coordinate_and_norms(axis):
    a = T.AXES[axis]
    x = _cloud(d=6)
    y, angles = T.rotate_up(x, axis, generator=5, return_angles=True)
    assert torch.allclose(y[..., a], x[..., a])
    assert torch.allclose(y[..., :3].norm(dim=-1), x[..., :3].norm(dim=-1), atol=1e-5)
    others = [k for k in range(3) if k != a]
    assert torch.allclose(y[..., others].norm(dim=-1), x[..., others].norm(dim=-1), atol=1e-5)
    r = T.rotation_matrices(angles, axis)
    assert torch.allclose(y[..., :3], x[..., :3] @ r.transpose(1, 2), atol=1e-5)
    # normals rotate with the points: point/normal dot products are unchanged
    assert torch.allclose((y[..., :3] * y[..., 3:]).sum(-1), (x[..., :3] * x[..., 3:]).sum(-1), atol=1e-4)
    assert bool(((angles >= 0) & (angles < 2 * math.pi)).all())
    assert torch.equal(T.rotate_up(x, axis, generator=5), y)
    assert not torch.equal(T.rotate_up(x, axis, generator=6), y)


def test_jitter_bounds_and_statistics():
    x = torch.zeros(4, 2000, 3)
    y = T.jitter(x, sigma=0.01, clip=0.02, generator=0)
    assert float(y.abs().max()) <= 0.02 + 1e-7
    wide = T.jitter(x, sigma=0.01, clip=1.0, generator=0)
    assert abs(float(wide.std()) - 0.01) < 5e-4 and abs(float(wide.mean())) < 5e-4
    assert torch.equal(T.jitter(x, sigma=0.0, generator=0), x)
    xn = _cloud(d=6)
    assert torch.equal(T.jitter(xn, generator=1)[..., 3:], xn[..., 3:])
    with pytest.raises(InvalidArgumentError, match="clip"):
        T.jitter(x, clip=0)


def test_random_scale_and_shift_are_per_cloud():
    x = _cloud(d=6)
    y = T.random_scale(x, 0.5, 2.0, generator=2)
    ratio = y[..., :3] / x[..., :3]
    f = ratio[:, :1, :1]
    assert torch.allclose(ratio, f.expand_as(ratio), atol=1e-5)
    assert bool(((f >= 0.5) & (f < 2.0)).all())
    assert torch.equal(y[..., 3:], x[..., 3:])
    z = T.random_shift(x, max=0.3, generator=2)
    d = z[..., :3] - x[..., :3]
    assert torch.allclose(d, d[:, :1].expand_as(d), atol=1e-5)
    assert float(d.abs().max()) <= 0.3 + 1e-6
    with pytest.raises(InvalidArgumentError, match="high"):
        T.random_scale(x, 2.0, 1.0)


def test_augment_order_and_reproducibility():
    x = _cloud()
    g = torch.Generator().manual_seed(9)
    manual = T.rotate_up(x, "y", g)
    manual = T.random_scale(manual, generator=g)
    manual = T.random_shift(manual, generator=g)
    manual = T.jitter(manual, generator=g)
    got = T.augment(x, torch.Generator().manual_seed(9), rotate=True)
    assert torch.equal(got, manual)
    assert torch.equal(T.augment(x, 9), T.augment(x, 9))
    assert torch.equal(T.augment(x, 1, rotate=False, jitter=False, scale=False, shift=False), x)
    as_np = T.augment(x.numpy(), 9)
    assert isinstance(as_np, np.ndarray)
    np.testing.assert_array_equal(as_np, T.augment(x, 9).numpy())
