"""Large clouds in bounded memory (issue 15): PointNet's no-grad forward and the gradient attributions chunk over
points with the same numbers; the torch backend's grid search finds the same neighbours as brute force."""

from __future__ import annotations

import pytest
import torch

from pointlens.attribution import create_attribution
from pointlens.attribution.gradient import GradientAttribution
from pointlens.metrics.shape.distances import _grid_nn, _nn_index_kdtree, _nn_index_torch
from pointlens.models import create_model
from pointlens.models.hooks import capture


@pytest.fixture
def net():
    torch.manual_seed(0)
    return create_model("pointnet", 5, channels=(16, 32, 64), head=(16,)).eval()


def test_chunked_forward_equals_the_whole_cloud(net, monkeypatch):
    x = torch.randn(2, 3000, 3)
    with torch.no_grad():
        whole = net(x)
        monkeypatch.setattr(net, "point_chunk", 700)
        torch.testing.assert_close(net(x), whole, rtol=0, atol=0)
        with capture(net, "pool") as acts:  # a hook must see the whole cloud: no chunking then
            torch.testing.assert_close(net(x), whole, rtol=0, atol=0)
        assert acts["pool"].input.shape == (2, 64, 3000)


@pytest.mark.parametrize("method", ["pointshift", "gradient", "gradxinput", "ig"])
def test_point_chunked_gradients_equal_the_whole_cloud(net, method, monkeypatch):
    x = torch.randn(2, 3000, 3)
    monkeypatch.setattr(GradientAttribution, "point_chunk", 10**9)
    whole = create_attribution(method, net).attribute(x)
    monkeypatch.setattr(GradientAttribution, "point_chunk", 700)
    chunked = create_attribution(method, net).attribute(x)
    torch.testing.assert_close(chunked, whole, rtol=1e-6, atol=1e-9)
    assert whole.abs().max() > 0


def test_grid_nearest_neighbours_match_brute_force():
    g = torch.Generator().manual_seed(0)
    sphere = torch.nn.functional.normalize(torch.randn(4000, 3, generator=g), dim=1)
    cases = [(torch.rand(3000, 3, generator=g), torch.rand(4000, 3, generator=g)),
             (sphere[:2000] * 1.02, sphere),
             (torch.rand(500, 3, generator=g) * 4 - 2,
              torch.cat([torch.zeros(300, 3), torch.rand(900, 3, generator=g)]))]  # far queries, duplicated points
    for q, p in cases:
        got = _grid_nn(q, p, 2**27)
        ref = _nn_index_kdtree(q[None], p[None], 1)[0]
        dg, dr = ((q - p[got]) ** 2).sum(-1), ((q - p[ref]) ** 2).sum(-1)
        torch.testing.assert_close(dg, dr, rtol=0, atol=1e-7)
        assert (got == _nn_index_torch(q[None], p[None], 2**27)[0]).float().mean() > 0.999
