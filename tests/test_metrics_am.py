"""AM metrics against direct references: FID vs scipy's sqrtm (incl. singular covariances), Chamfer-to-real,
m-IS and diversity vs brute force."""

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from pointlens.errors import DataError
from pointlens.metrics import am


def _fid_scipy(a, b):
    """The usual pytorch-fid computation, directly with scipy."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_fid_matches_scipy_full_rank():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 6))
    b = rng.normal(size=(150, 6)) @ rng.normal(size=(6, 6)) + 0.7
    assert am.frechet_distance(a, b) == pytest.approx(_fid_scipy(a, b), rel=1e-8, abs=1e-9)


def test_fid_matches_scipy_singular_covariances():
    # 4 and 5 samples in 10 dimensions: both covariances have rank <= 4
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 10))
    b = rng.normal(size=(5, 10)) * 2 + 1
    assert np.linalg.matrix_rank(np.cov(a, rowvar=False)) < 10
    ours = am.frechet_distance(a, b)
    ref = _fid_scipy(a, b)
    assert ours == pytest.approx(ref, rel=1e-5, abs=1e-6)
    # rank-1 covariances in 3-D, with a closed form: the features lie on lines through the mean
    t = np.array([[-1.0], [0.0], [1.0]])
    u = np.array([[1.0, 0, 0]])
    fa = t @ u                      # variance 1 along x
    fb = 3 * t @ u + 2              # variance 9 along x, mean shifted by (2, 2, 2)
    # (sigma_a - sigma_b)^2 along x + ||mu||^2 = (1 - 3)^2 + 12
    assert am.frechet_distance(fa, fb) == pytest.approx(4 + 12, abs=1e-9)


def test_fid_closed_forms():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(50, 5))
    assert am.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    # 1-D: (mu_a - mu_b)^2 + (sd_a - sd_b)^2
    x, y = rng.normal(size=(80, 1)), rng.normal(size=(60, 1)) * 3 + 2
    want = (x.mean() - y.mean()) ** 2 + (x.std(ddof=1) - y.std(ddof=1)) ** 2
    assert am.frechet_distance(x, y) == pytest.approx(want, rel=1e-10)


def _chamfer_bf(a, b):
    d = np.linalg.norm(a[:, None] - b[None], axis=-1)
    return 0.5 * (d.min(1).mean() + d.min(0).mean())


def test_chamfer_to_real_and_diversity_brute_force():
    g = torch.Generator().manual_seed(0)
    clouds = torch.rand(3, 20, 3, generator=g)
    real = torch.rand(9, 25, 3, generator=g)
    got = am.chamfer_to_real(clouds, real, k=5)
    for i in range(3):
        ds = sorted(_chamfer_bf(clouds[i].numpy(), r.numpy()) for r in real)
        assert float(got[i]) == pytest.approx(np.mean(ds[:5]), rel=1e-5)
    pairs = [_chamfer_bf(clouds[i].numpy(), clouds[j].numpy()) for i in range(3) for j in range(i + 1, 3)]
    assert am.diversity(clouds) == pytest.approx(np.mean(pairs), rel=1e-5)
    with pytest.raises(DataError, match="k=5"):
        am.chamfer_to_real(clouds, real[:4], k=5)


def test_m_is_brute_force_and_pcams():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(4), size=5)
    kl = [(p[i] * np.log(p[i] / p[j])).sum() for i in range(5) for j in range(5)]
    assert am.m_is(p) == pytest.approx(np.exp(np.mean(kl)), rel=1e-10)
    assert am.m_is(np.tile(p[:1], (3, 1))) == pytest.approx(1.0)
    assert am.pcams(2.0, np.e, np.e ** 2) == pytest.approx(2.0 - 1.5)


def test_am_class_metrics_uses_reference_features():
    torch.manual_seed(0)

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 8)
            self.pool = nn.Identity()
            self.out = nn.Linear(8, 2)

        def forward(self, x):
            return self.out(self.pool(self.lin(x).amax(1)))

    m = Tiny()
    clouds, real = torch.rand(4, 16, 3), torch.rand(6, 16, 3)
    out = am.am_class_metrics(m, clouds, 0, real, reference=m, k=5)
    f_a = am.global_features(m, clouds).numpy()
    f_b = am.global_features(m, real).numpy()
    assert f_a.shape == (4, 8)
    assert out["fid"] == pytest.approx(_fid_scipy(f_a, f_b), rel=1e-4, abs=1e-6)
    assert 0.0 <= out["success"] <= 1.0
    assert out["pcams"] == pytest.approx(am.pcams(out["m_is"], out["fid"], out["chamfer"]))
