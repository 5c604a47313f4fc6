"""Geometry ops against brute-force references: kNN, farthest point sampling, ball query, gather."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pointlens.errors import InvalidArgumentError
from pointlens.ops import (
    ball_query,
    farthest_point_sampling,
    farthest_point_sampling_naive,
    gather_points,
    knn,
    knn_indices,
    knn_naive,
)

# (B, M, N, D, k)
KNN_SIZES = [(1, 1, 1, 3, 1), (2, 7, 5, 3, 5), (3, 40, 64, 3, 8), (2, 100, 33, 16, 20), (1, 257, 300, 3, 1)]
BUDGETS = [1, 2000, 50_000, None]  # 1 byte -> one query row per chunk


def _brute_sqdist(q: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    return ((q[:, :, None, :] - r[:, None, :, :]) ** 2).sum(-1)


@pytest.mark.parametrize("size", KNN_SIZES)
@pytest.mark.parametrize("budget", BUDGETS)
def test_knn_matches_naive_float64(size, budget):
    b, m, n, d, k = size
    q = torch.rand(b, m, d, dtype=torch.float64)
    r = torch.rand(b, n, d, dtype=torch.float64)
    kw = {} if budget is None else {"memory_budget": budget}
    got = knn(q, r, k, **kw)
    ref = knn_naive(q, r, k)
    assert got.idx.shape == (b, m, k) and got.sqdist.shape == (b, m, k)
    assert torch.equal(got.idx, ref.idx)
    torch.testing.assert_close(got.sqdist, ref.sqdist, rtol=0, atol=1e-12)
    # distances are the exact squared distances to the returned indices, ascending
    exact = torch.gather(_brute_sqdist(q, r), 2, got.idx)
    torch.testing.assert_close(got.sqdist, exact, rtol=0, atol=1e-12)
    assert bool((got.sqdist[..., 1:] >= got.sqdist[..., :-1]).all())


@pytest.mark.parametrize("budget", [1, 10_000, None])
def test_knn_float32_distances_match_naive(budget):
    q = torch.randn(2, 128, 3)
    r = torch.randn(2, 200, 3)
    kw = {} if budget is None else {"memory_budget": budget}
    got, ref = knn(q, r, 16, **kw), knn_naive(q, r, 16)
    torch.testing.assert_close(got.sqdist, ref.sqdist, rtol=1e-5, atol=1e-6)
    # indices agree except where two candidate distances are numerically tied
    agree = (got.idx == ref.idx).float().mean()
    assert agree > 0.99


@pytest.mark.parametrize("budget", [1, 3000, None])
def test_knn_exclude_self(budget):
    x = torch.rand(2, 60, 3, dtype=torch.float64)
    kw = {} if budget is None else {"memory_budget": budget}
    got = knn(x, x, 5, exclude_self=True, **kw)
    d = _brute_sqdist(x, x)
    d.diagonal(dim1=1, dim2=2).fill_(float("inf"))
    sq, idx = d.topk(5, dim=-1, largest=False, sorted=True)
    assert torch.equal(got.idx, idx)
    torch.testing.assert_close(got.sqdist, sq, rtol=0, atol=1e-12)
    assert not bool((got.idx == torch.arange(60)[None, :, None]).any())
    # with self included, the first neighbour of every point is itself at distance 0
    inc = knn(x, x, 1, **kw)
    assert torch.equal(inc.idx[..., 0], torch.arange(60).expand(2, -1))
    assert float(inc.sqdist.abs().max()) == 0.0


@pytest.mark.parametrize("size", KNN_SIZES)
@pytest.mark.parametrize("budget", [1, 2000, None])
@pytest.mark.parametrize("exclude_self", [False, True])
def test_knn_indices_are_the_brute_force_neighbour_sets(size, budget, exclude_self):
    b, m, n, d, k = size
    if exclude_self and (m != n or k >= n):
        m = n = max(n, k + 1)
    q = torch.rand(b, m, d, dtype=torch.float64)
    r = q if exclude_self else torch.rand(b, n, d, dtype=torch.float64)
    kw = {} if budget is None else {"memory_budget": budget}
    got = knn_indices(q, r, k, exclude_self=exclude_self, **kw)
    dist = _brute_sqdist(q, r)
    if exclude_self:
        dist.diagonal(dim1=1, dim2=2).fill_(float("inf"))
    want = dist.topk(k, dim=-1, largest=False).indices
    assert got.shape == (b, m, k) and got.dtype == torch.long
    assert torch.equal(got.sort(-1).values, want.sort(-1).values)
    assert torch.equal(got.sort(-1).values, knn(q, r, k, exclude_self=exclude_self, **kw).idx.sort(-1).values)


def test_knn_equal_distances_come_in_index_order():
    # a query at the origin and reference points on the unit circle: every distance ties
    ang = torch.linspace(0, 2 * torch.pi, 13, dtype=torch.float64)[:12]
    r = torch.stack([ang.cos(), ang.sin(), torch.zeros(12, dtype=torch.float64)], -1)
    r = r.round(decimals=6)[None]
    r = r / r.norm(dim=-1, keepdim=True)
    q = torch.zeros(1, 1, 3, dtype=torch.float64)
    got = knn(q, r, 12)
    sq = got.sqdist[0, 0]
    for j in range(11):  # within a run of exactly equal distances, lower index first
        if sq[j] == sq[j + 1]:
            assert got.idx[0, 0, j] < got.idx[0, 0, j + 1]
    x = torch.zeros(1, 5, 3)  # five identical points: all distances 0
    assert torch.equal(knn(x, x, 5).idx, torch.arange(5).expand(1, 5, 5))


def test_knn_bad_arguments():
    x = torch.rand(2, 6, 3)
    for k in (0, 7, 2.5):
        with pytest.raises(InvalidArgumentError, match="k"):
            knn(x, x, k)
    with pytest.raises(InvalidArgumentError, match="k"):
        knn(x, x, 6, exclude_self=True)
    with pytest.raises(InvalidArgumentError, match="same batch"):
        knn(x, torch.rand(3, 6, 3), 2)
    with pytest.raises(InvalidArgumentError, match=r"\(B, M, D\)"):
        knn(x[0], x[0], 2)
    empty = knn(x[:, :0], x, 2)
    assert empty.idx.shape == (2, 0, 2)
    assert knn_indices(x[:, :0], x, 2).shape == (2, 0, 2)
    with pytest.raises(InvalidArgumentError, match="k"):
        knn_indices(x, x, 7)


@pytest.mark.parametrize("b,n,m", [(1, 1, 1), (3, 50, 17), (2, 300, 300), (4, 1024, 64)])
def test_fps_matches_naive(b, n, m):
    x = torch.rand(b, n, 3, dtype=torch.float64)
    got = farthest_point_sampling(x, m)
    assert torch.equal(got, farthest_point_sampling_naive(x, m))
    assert got.shape == (b, m)
    assert torch.equal(got[:, 0], torch.zeros(b, dtype=torch.long))
    # float32 too (random data: no ties)
    x32 = x.float()
    assert torch.equal(farthest_point_sampling(x32, m), farthest_point_sampling_naive(x32, m))


def test_fps_definition_and_start():
    x = torch.rand(2, 80, 3, dtype=torch.float64)
    start = torch.tensor([5, 42])
    idx = farthest_point_sampling(x, 20, start=start)
    assert torch.equal(idx[:, 0], start)
    for bi in range(2):
        assert torch.equal(
            idx[bi], farthest_point_sampling_naive(x[bi : bi + 1], 20, start=int(start[bi]))[0]
        )
        picks = idx[bi].tolist()
        assert len(set(picks)) == 20
        d = torch.cdist(x[bi], x[bi])
        for j in range(1, 20):
            # pick j maximises the distance to the nearest earlier pick
            mind = d[:, picks[:j]].min(dim=1).values
            assert float(mind[picks[j]]) == pytest.approx(float(mind.max()), abs=1e-12)
    # sampling every point gives a permutation
    full = farthest_point_sampling(x, 80)
    assert torch.equal(full.sort(dim=1).values, torch.arange(80).expand(2, -1))


def test_fps_bad_arguments():
    x = torch.rand(1, 5, 3)
    for n in (0, 6, 2.0):
        with pytest.raises(InvalidArgumentError, match="n"):
            farthest_point_sampling(x, n)
    with pytest.raises(InvalidArgumentError, match="points"):
        farthest_point_sampling(x[0], 2)


def _ball_query_reference(centres: np.ndarray, points: np.ndarray, radius: float, k: int) -> np.ndarray:
    out = np.zeros(centres.shape[:2] + (k,), dtype=np.int64)
    for b in range(centres.shape[0]):
        for i, c in enumerate(centres[b]):
            d = np.sqrt(((points[b] - c) ** 2).sum(-1))
            inside = [j for j in range(len(points[b])) if d[j] < radius][:k]
            if not inside:
                out[b, i] = int(np.argmin(d))
            else:
                out[b, i] = inside + [inside[0]] * (k - len(inside))
    return out


@pytest.mark.parametrize("size", [(1, 1, 1, 1), (2, 10, 50, 4), (2, 33, 200, 16), (1, 5, 3, 8)])
@pytest.mark.parametrize("radius", [0.05, 0.3, 5.0])
@pytest.mark.parametrize("budget", [1, None])
def test_ball_query_matches_reference(size, radius, budget):
    b, m, n, k = size
    pts = torch.rand(b, n, 3, dtype=torch.float64)
    centres = torch.rand(b, m, 3, dtype=torch.float64)
    kw = {} if budget is None else {"memory_budget": budget}
    got = ball_query(centres, pts, radius, k, **kw)
    assert got.shape == (b, m, k) and got.dtype == torch.long
    ref = _ball_query_reference(centres.numpy(), pts.numpy(), radius, k)
    np.testing.assert_array_equal(got.numpy(), ref)


def test_ball_query_centres_are_points_and_padding():
    pts = torch.rand(2, 100, 3, dtype=torch.float64)
    centres = pts[:, :10]
    got = ball_query(centres, pts, 0.2, 32)
    # each centre is its own cloud point, so the ball is never empty and contains the centre
    assert bool((got == torch.arange(10)[None, :, None]).any(-1).all())
    d = (gather_points(pts, got) - centres[:, :, None]).norm(dim=-1)
    assert bool((d < 0.2).all())


def test_ball_query_bad_arguments():
    x = torch.rand(1, 5, 3)
    for r in (0.0, -1.0, float("nan")):
        with pytest.raises(InvalidArgumentError, match="radius"):
            ball_query(x, x, r, 2)
    with pytest.raises(InvalidArgumentError, match="k"):
        ball_query(x, x, 0.1, 0)
    assert ball_query(x[:, :0], x, 0.1, 3).shape == (1, 0, 3)


def test_gather_points_matches_indexing():
    pts = torch.randn(3, 20, 5)
    idx2 = torch.randint(0, 20, (3, 7))
    idx3 = torch.randint(0, 20, (3, 4, 6))
    g2, g3 = gather_points(pts, idx2), gather_points(pts, idx3)
    assert g2.shape == (3, 7, 5) and g3.shape == (3, 4, 6, 5)
    for b in range(3):
        assert torch.equal(g2[b], pts[b][idx2[b]])
        assert torch.equal(g3[b], pts[b][idx3[b]])
    # differentiable w.r.t. the points: the gradient counts how often each point is gathered
    p = pts.clone().requires_grad_(True)
    gather_points(p, idx3).sum().backward()
    counts = torch.stack([torch.bincount(idx3[b].reshape(-1), minlength=20) for b in range(3)]).float()
    torch.testing.assert_close(p.grad, counts[..., None].expand(-1, -1, 5))


def test_gather_points_rejects_out_of_range_indices():
    pts = torch.randn(2, 5, 3)
    for bad in (5, -1):
        idx = torch.zeros(2, 3, dtype=torch.long)
        idx[1, 2] = bad
        with pytest.raises(InvalidArgumentError, match=r"idx.*\[0, 4\]"):
            gather_points(pts, idx)
    assert gather_points(pts, torch.zeros(2, 0, dtype=torch.long)).shape == (2, 0, 3)
