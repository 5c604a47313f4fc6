"""Point explainer networks: segmentation backbones giving per-class per-point mask logits ``(B, C, N)``.

* ``pointnet-seg`` (:class:`PointNetSeg`): PointNet's segmentation layout — a shared per-point MLP, a global
  max-pooled feature, the global feature concatenated to every point's local features, a per-point MLP to
  ``C`` logits.
* ``dgcnn-seg`` (:class:`DGCNNSeg`): DGCNN's segmentation layout — EdgeConv layers on dynamic k-NN graphs
  (:class:`pointlens.models.dgcnn.EdgeConv`), their outputs concatenated, a global max-pooled embedding
  concatenated back to every point, a per-point MLP to ``C`` logits.

Both are small by default (sized for CPU training). Build one with :func:`create_explainer_network`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pointlens.errors import bad_argument
from pointlens.models.layers import SharedMLP, check_channels
from pointlens.utils.validate import check_int


class _SegHead(nn.Module):
    """Per-point MLP to ``C`` logits: shared conv+BN+ReLU layers, then a plain 1x1 conv."""

    def __init__(self, in_channels: int, hidden: Sequence[int], num_classes: int):
        super().__init__()
        self.mlp = SharedMLP(in_channels, hidden) if hidden else nn.Identity()
        self.out = nn.Conv1d(hidden[-1] if hidden else in_channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.mlp(x))


class PointNetSeg(nn.Module):
    """PointNet-style segmentation network.

    Args:
        num_classes: mask channels ``C`` (the classifier's classes).
        local: widths of the shared per-point layers (default ``(64, 128)``).
        global_channels: widths of the layers before the global max pool (default ``(256,)``).
        head: hidden widths of the per-point head (default ``(128, 64)``).

    Shapes:
        ``(B, N, 3)`` -> ``(B, C, N)`` mask logits.
    """

    def __init__(self, num_classes: int, local: Sequence[int] = (64, 128), global_channels: Sequence[int] = (256,),
                 head: Sequence[int] = (128, 64)):
        super().__init__()
        local = check_channels("local", local)
        global_channels = check_channels("global_channels", global_channels)
        head = check_channels("head", head, allow_empty=True)
        self.config = {"name": "pointnet-seg", "num_classes": int(num_classes),
                       "kwargs": {"local": list(local), "global_channels": list(global_channels),
                                  "head": list(head)}}
        self.local = SharedMLP(3, local)
        self.global_mlp = SharedMLP(local[-1], global_channels)
        self.head = _SegHead(local[-1] + global_channels[-1], head, num_classes)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        f = self.local(points.transpose(1, 2))  # (B, L, N)
        g = self.global_mlp(f).amax(2, keepdim=True)  # (B, G, 1)
        return self.head(torch.cat([f, g.expand(-1, -1, f.shape[2])], 1))


class DGCNNSeg(nn.Module):
    """DGCNN-style segmentation network (EdgeConv layers on dynamic k-NN graphs).

    Args:
        num_classes: mask channels ``C``.
        k: neighbours of every EdgeConv graph (default 16).
        edge_channels: output widths of the EdgeConv layers (default ``(64, 64, 64)``).
        emb_dims: width of the global embedding (default 256).
        head: hidden widths of the per-point head (default ``(128, 64)``).

    Shapes:
        ``(B, N, 3)`` -> ``(B, C, N)`` mask logits (``N > k``).
    """

    def __init__(self, num_classes: int, k: int = 16, edge_channels: Sequence[int] = (64, 64, 64),
                 emb_dims: int = 256, head: Sequence[int] = (128, 64)):
        super().__init__()
        from pointlens.models.dgcnn import EdgeConv

        k = check_int("k", k, minimum=1)
        edge_channels = check_channels("edge_channels", edge_channels)
        emb_dims = check_int("emb_dims", emb_dims, minimum=1)
        head = check_channels("head", head, allow_empty=True)
        self.config = {"name": "dgcnn-seg", "num_classes": int(num_classes),
                       "kwargs": {"k": k, "edge_channels": list(edge_channels), "emb_dims": emb_dims,
                                  "head": list(head)}}
        self.k = k
        convs, c = [], 3
        for w in edge_channels:
            convs.append(EdgeConv(c, w, k))
            c = w
        self.edge_convs = nn.ModuleList(convs)
        cat = sum(edge_channels)
        self.embed = SharedMLP(cat, (emb_dims,), activation="leaky_relu")
        self.head = _SegHead(cat + emb_dims, head, num_classes)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        if points.shape[1] <= self.k:
            raise bad_argument("points", f"{points.shape[1]} points per cloud", f"more than k = {self.k}")
        x = points.transpose(1, 2)
        feats = []
        for conv in self.edge_convs:
            x = conv(x)
            feats.append(x)
        f = torch.cat(feats, 1)
        g = self.embed(f).amax(2, keepdim=True)
        return self.head(torch.cat([f, g.expand(-1, -1, f.shape[2])], 1))


NETWORKS = {"pointnet-seg": PointNetSeg, "dgcnn-seg": DGCNNSeg}


def create_explainer_network(name: str, num_classes: int, **kwargs) -> nn.Module:
    """Build an explainer network by name (``pointnet-seg`` or ``dgcnn-seg``).

    Args:
        name: network name.
        num_classes: mask channels ``C``.
        **kwargs: the network's options (see its class).

    Returns:
        the network (training mode), mapping ``(B, N, 3)`` to ``(B, C, N)`` mask logits; its ``config`` dict
        rebuilds it.
    """
    if name not in NETWORKS:
        raise bad_argument("network", name, "one of " + ", ".join(NETWORKS))
    num_classes = check_int("num_classes", num_classes, minimum=1)
    import inspect

    accepted = [p for p in inspect.signature(NETWORKS[name]).parameters if p != "num_classes"]
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        raise bad_argument(f"{name} option", ", ".join(unknown), "one of " + ", ".join(accepted))
    return NETWORKS[name](num_classes, **kwargs)
