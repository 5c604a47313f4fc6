"""Tiny test networks shared by the attribution tests (imported by the other test_attribution_* files).

* :class:`TinyPointNet`: shared per-point MLP (conv1d k=1) + global max pool + MLP head; permutation
  invariant,
  points meet only at the pool (``pointwise_until_pool=True``).
* :class:`TinyDGCNN`: one EdgeConv over a kNN graph, then a max pool and a linear head (points interact before
  the pool).
"""

from __future__ import annotations

import torch
from torch import nn

from pointlens.models.adapters import ChannelsFirst
from pointlens.ops.geometry import gather_points, knn


class MaxPool(nn.Module):
    """Global max over points: ``(B, C, N) -> (B, C)``."""

    def forward(self, x):
        return x.max(dim=2).values


class MeanPool(nn.Module):
    """Global mean over points: ``(B, C, N) -> (B, C)`` (not a max-pool: the fast path must refuse it)."""

    def forward(self, x):
        return x.mean(dim=2)


class TinyPointNet(nn.Module):
    """PointNet-like net ``(B, N, 3) -> (B, classes)`` (``(B, 3, N)`` when ``channels_first``)."""

    def __init__(self, num_classes: int = 5, hidden: int = 16, feat: int = 32, *, dtype=torch.float64,
                 seed: int = 0, channels_first: bool = False, pool: str = "max"):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.channels_first = channels_first
        self.features = nn.Sequential(nn.Conv1d(3, hidden, 1), nn.BatchNorm1d(hidden), nn.Tanh(),
                                      nn.Conv1d(hidden, feat, 1), nn.Tanh())
        self.pool = MaxPool() if pool == "max" else MeanPool()
        self.head = nn.Sequential(nn.Linear(feat, 16), nn.Tanh(), nn.Dropout(0.3), nn.Linear(16, num_classes))
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * (1.5 / max(1, p.shape[-1]) ** 0.5))
        self.to(dtype)
        self.pool_layer = "pool"
        self.pointwise_until_pool = True

    def forward(self, points):
        x = points if self.channels_first else points.transpose(1, 2)
        return self.head(self.pool(self.features(x)))


class Bare(nn.Module):
    """A model with no pointlens attributes at all (wraps a module, exposes nothing)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, points):
        return self.net(points)


class TinyDGCNN(nn.Module):
    """DGCNN-like net: EdgeConv on a kNN graph (points interact), max pool, linear head."""

    def __init__(self, num_classes: int = 5, k: int = 4, feat: int = 24, *, dtype=torch.float64,
                 seed: int = 1):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.k = k
        self.edge = nn.Sequential(nn.Linear(6, 16), nn.Tanh())
        self.conv = nn.Sequential(nn.Conv1d(16, feat, 1), nn.Tanh())
        self.pool = MaxPool()
        self.head = nn.Linear(feat, num_classes)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * (1.5 / max(1, p.shape[-1]) ** 0.5))
        self.to(dtype)
        self.pool_layer = "pool"
        self.pointwise_until_pool = False

    def forward(self, points):
        idx = knn(points.detach(), points.detach(), self.k).idx
        nb = gather_points(points, idx)
        ctr = points.unsqueeze(2).expand_as(nb)
        e = self.edge(torch.cat([ctr, nb - ctr], -1)).max(dim=2).values
        return self.head(self.pool(self.conv(e.transpose(1, 2))))


def channels_first_twin(net: TinyPointNet) -> ChannelsFirst:
    """A ``(B, 3, N)`` copy of ``net`` with the same weights, wrapped in :class:`ChannelsFirst`."""
    twin = TinyPointNet(net.head[-1].out_features, net.features[0].out_channels, net.features[3].out_channels,
                        dtype=net.head[0].weight.dtype, channels_first=True)
    twin.load_state_dict(net.state_dict())
    twin.train(net.training)
    return ChannelsFirst(twin)


def cloud(b: int = 2, n: int = 24, *, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    """Random clouds ``(b, n, 3)`` scaled into the unit ball."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, n, 3, generator=g, dtype=torch.float64)
    x = x / x.norm(dim=-1).amax(dim=1, keepdim=True).unsqueeze(-1)
    return x.to(dtype)


def test_tiny_nets_are_permutation_invariant():
    x = cloud(2, 20)
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(5))
    for net in (TinyPointNet().eval(), TinyDGCNN().eval()):
        torch.testing.assert_close(net(x[:, perm]), net(x), rtol=1e-12, atol=1e-12)


def test_channels_first_twin_has_same_logits_and_forwards_attributes():
    net = TinyPointNet().eval()
    wrapped = channels_first_twin(net).eval()
    x = cloud(3, 17)
    torch.testing.assert_close(wrapped(x), net(x), rtol=0, atol=1e-12)
    assert wrapped.pool_layer == "module.pool"
    assert dict(wrapped.named_modules())[wrapped.pool_layer] is wrapped.module.pool
    assert wrapped.head is wrapped.module.head
    assert wrapped.pointwise_until_pool is True
    with __import__("pytest").raises(AttributeError):
        wrapped.no_such_attribute  # noqa: B018
