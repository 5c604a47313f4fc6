"""Explainer networks: segmentation backbones giving per-class mask logits (``(B, C, N)`` or ``(B, C, H, W)``).

* ``pointnet-seg`` (:class:`PointNetSeg`): PointNet's segmentation layout — a shared per-point MLP, a global
  max-pooled feature, the global feature concatenated to every point's local features, a per-point MLP to
  ``C`` logits.
* ``dgcnn-seg`` (:class:`DGCNNSeg`): DGCNN's segmentation layout — EdgeConv layers on dynamic k-NN graphs
  (:class:`pointlens.models.dgcnn.EdgeConv`), their outputs concatenated, a global max-pooled embedding
  concatenated back to every point, a per-point MLP to ``C`` logits.

* ``unet`` (:class:`UNet`), for images: a small U-Net encoder–decoder, ``(B, 3, H, W) -> (B, C, H, W)``.

All are small by default (sized for CPU training). Build one with :func:`create_explainer_network`;
:data:`DEFAULT_NETWORK` names each modality's default.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
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


class _ConvBlock(nn.Sequential):
    """Two 3x3 conv + batch norm + ReLU layers (padding 1: the size is kept)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True),
                         nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class UNet(nn.Module):
    """A small U-Net (Ronneberger et al. 2015) giving per-class mask logits for images.

    ``depth`` encoder levels, each a :class:`_ConvBlock` (two 3x3 conv + BN + ReLU) followed by a 2x2 max pool,
    widths ``width · 2^level``; a bottleneck block of width ``width · 2^depth``; ``depth`` decoder levels, each a
    2x2 transposed convolution (stride 2) to the level's width, concatenated with the encoder's feature map of
    that level (the skip connection) and a :class:`_ConvBlock`; a 1x1 convolution to ``C`` logits.

    Args:
        num_classes: mask channels ``C``.
        width: channels of the first level (default 16).
        depth: pooling levels (default 3; ``H`` and ``W`` must be divisible by ``2^depth``).
        in_channels: input channels (default 3, RGB).

    Shapes:
        ``(B, in_channels, H, W)`` -> ``(B, C, H, W)`` mask logits.
    """

    def __init__(self, num_classes: int, width: int = 16, depth: int = 3, in_channels: int = 3):
        super().__init__()
        width = check_int("width", width, minimum=1)
        depth = check_int("depth", depth, minimum=1, maximum=8)
        in_channels = check_int("in_channels", in_channels, minimum=1)
        self.config = {"name": "unet", "num_classes": int(num_classes),
                       "kwargs": {"width": width, "depth": depth, "in_channels": in_channels}}
        self.depth = depth
        self.in_channels = in_channels
        widths = [width * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        c = in_channels
        for w in widths[:-1]:
            self.down.append(_ConvBlock(c, w))
            c = w
        self.bottleneck = _ConvBlock(widths[-2], widths[-1])
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for lvl in reversed(range(depth)):
            self.up.append(nn.ConvTranspose2d(widths[lvl + 1], widths[lvl], 2, stride=2))
            self.dec.append(_ConvBlock(2 * widths[lvl], widths[lvl]))
        self.out = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != self.in_channels:
            raise bad_argument("images", f"shape {tuple(images.shape)}", f"(B, {self.in_channels}, H, W)")
        h, w = images.shape[-2:]
        f = 2 ** self.depth
        if h % f or w % f:
            raise bad_argument("images", f"size {h}x{w}", f"height and width divisible by 2^depth = {f} (resize or "
                               "crop the images, or build the unet with a smaller depth)")
        skips = []
        x = images
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            x = dec(torch.cat([up(x), skip], 1))
        return self.out(x)


NETWORKS = {"pointnet-seg": PointNetSeg, "dgcnn-seg": DGCNNSeg, "unet": UNet}
#: the networks of each modality, the default first
MODALITY_NETWORKS = {"points": ("pointnet-seg", "dgcnn-seg"), "image": ("unet",)}
DEFAULT_NETWORK = {m: names[0] for m, names in MODALITY_NETWORKS.items()}


def create_explainer_network(name: str, num_classes: int, **kwargs) -> nn.Module:
    """Build an explainer network by name (``pointnet-seg`` or ``dgcnn-seg`` for clouds, ``unet`` for images).

    Args:
        name: network name.
        num_classes: mask channels ``C``.
        **kwargs: the network's options (see its class).

    Returns:
        the network (training mode), mapping ``(B, N, 3)`` to ``(B, C, N)`` (point networks) or
        ``(B, 3, H, W)`` to ``(B, C, H, W)`` (``unet``) mask logits; its ``config`` dict rebuilds it.
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
