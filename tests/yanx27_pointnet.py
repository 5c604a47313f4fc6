"""A small PointNet written the way yanx27/Pointnet_Pointnet2_pytorch writes it (models/pointnet_utils.py and
models/pointnet_cls.py), for the user-model tests: input T-Net (STN3d) and feature T-Net (STNkd), channels-first
input ``(B, 3, N)``, a FUNCTIONAL global max pool (``torch.max(x, 2, keepdim=True)[0]``, no module to hook),
``forward`` returning ``(log_softmax, trans_feat)``. Loaded by ``--model tests/yanx27_pointnet.py:get_model``.

Not a test module (no ``test_`` prefix); widths are tiny so the tests stay fast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class STNkd(nn.Module):
    """T-Net predicting a ``k x k`` transform from ``(B, k, N)`` (identity added, as in the original)."""

    def __init__(self, k=3, width=16):
        super().__init__()
        self.k = k
        self.conv1 = nn.Conv1d(k, width, 1)
        self.conv2 = nn.Conv1d(width, 2 * width, 1)
        self.fc1 = nn.Linear(2 * width, width)
        self.fc2 = nn.Linear(width, k * k)
        self.bn1 = nn.BatchNorm1d(width)
        self.bn2 = nn.BatchNorm1d(2 * width)
        self.bn3 = nn.BatchNorm1d(width)

    def forward(self, x):
        batch = x.size(0)
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = torch.max(x, 2, keepdim=True)[0].view(-1, self.conv2.out_channels)
        x = F.relu(self.bn3(self.fc1(x)))
        x = self.fc2(x)
        iden = torch.eye(self.k, dtype=x.dtype, device=x.device).flatten().repeat(batch, 1)
        return (x + iden).view(-1, self.k, self.k)


class PointNetEncoder(nn.Module):
    def __init__(self, global_feat=True, feature_transform=True, channel=3, width=16, out=64):
        super().__init__()
        self.stn = STNkd(channel, width)
        self.conv1 = nn.Conv1d(channel, width, 1)
        self.conv2 = nn.Conv1d(width, 2 * width, 1)
        self.conv3 = nn.Conv1d(2 * width, out, 1)
        self.bn1 = nn.BatchNorm1d(width)
        self.bn2 = nn.BatchNorm1d(2 * width)
        self.bn3 = nn.BatchNorm1d(out)
        self.global_feat = global_feat
        self.feature_transform = feature_transform
        self.out = out
        if self.feature_transform:
            self.fstn = STNkd(width, width)

    def forward(self, x):
        trans = self.stn(x)
        x = torch.bmm(x.transpose(2, 1), trans).transpose(2, 1)
        x = F.relu(self.bn1(self.conv1(x)))
        trans_feat = None
        if self.feature_transform:
            trans_feat = self.fstn(x)
            x = torch.bmm(x.transpose(2, 1), trans_feat).transpose(2, 1)
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.bn3(self.conv3(x))
        x = torch.max(x, 2, keepdim=True)[0]
        x = x.view(-1, self.out)
        return x, trans, trans_feat


class get_model(nn.Module):  # noqa: N801 - yanx27's name
    def __init__(self, k=4, normal_channel=False, width=16, out=64):
        super().__init__()
        channel = 6 if normal_channel else 3
        self.feat = PointNetEncoder(global_feat=True, feature_transform=True, channel=channel, width=width,
                                    out=out)
        self.fc1 = nn.Linear(out, 32)
        self.fc2 = nn.Linear(32, 16)
        self.fc3 = nn.Linear(16, k)
        self.dropout = nn.Dropout(p=0.4)
        self.bn1 = nn.BatchNorm1d(32)
        self.bn2 = nn.BatchNorm1d(16)
        self.relu = nn.ReLU()

    def forward(self, x):
        x, trans, trans_feat = self.feat(x)
        x = F.relu(self.bn1(self.fc1(x)))
        x = F.relu(self.bn2(self.dropout(self.fc2(x))))
        x = self.fc3(x)
        x = F.log_softmax(x, dim=1)
        return x, trans_feat


def factory(k=4, seed=0, **kwargs):
    """Build the model with seeded weights and non-trivial BatchNorm statistics (eval mode matters)."""
    torch.manual_seed(seed)
    model = get_model(k=k, **kwargs)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return model


def failing_factory(**kwargs):
    raise RuntimeError("no GPU found")


def not_a_module(**kwargs):
    return "a string"


class PerPointOutput(nn.Module):
    """Returns ``(B, N, C)`` per-point scores instead of ``(B, C)`` (a segmentation head by mistake)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 4)

    def forward(self, x):  # (B, N, 3)
        return self.lin(x)


class ReusedReLU(nn.Module):
    """Channels-last model with ONE ``nn.ReLU`` module reused before AND after the functional pool."""

    def __init__(self, k=4):
        super().__init__()
        self.lin1 = nn.Linear(3, 16)
        self.lin2 = nn.Linear(16, 24)
        self.head = nn.Linear(24, k)
        self.relu = nn.ReLU()

    def forward(self, x):  # (B, N, 3)
        x = self.relu(self.lin1(x))
        x = self.lin2(x)
        x = x.amax(dim=1)
        return self.head(self.relu(x))


# ------------------------------------------------------------------ DGCNN as in WangYueFt/dgcnn (pytorch/model.py)
def knn(x, k):
    inner = -2 * torch.matmul(x.transpose(2, 1), x)
    xx = torch.sum(x ** 2, dim=1, keepdim=True)
    pairwise_distance = -xx - inner - xx.transpose(2, 1)
    return pairwise_distance.topk(k=k, dim=-1)[1]  # (B, N, k)


def get_graph_feature(x, k=20):
    batch_size, num_dims, num_points = x.shape
    idx = knn(x, k=k) + torch.arange(0, batch_size, device=x.device).view(-1, 1, 1) * num_points
    x = x.transpose(2, 1).contiguous()
    feature = x.view(batch_size * num_points, -1)[idx.view(-1), :].view(batch_size, num_points, k, num_dims)
    x = x.view(batch_size, num_points, 1, num_dims).repeat(1, 1, k, 1)
    return torch.cat((feature - x, x), dim=3).permute(0, 3, 1, 2).contiguous()  # (B, 2D, N, k)


class DGCNN(nn.Module):
    """Two EdgeConvs (functional k-NN graph, max over neighbours), conv5, max+avg pool; logits out."""

    def __init__(self, k=6, emb_dims=32, output_channels=4):
        super().__init__()
        self.k = k
        self.min_points = k
        self.conv1 = nn.Sequential(nn.Conv2d(6, 16, 1, bias=False), nn.BatchNorm2d(16), nn.LeakyReLU(0.2))
        self.conv2 = nn.Sequential(nn.Conv2d(32, 16, 1, bias=False), nn.BatchNorm2d(16), nn.LeakyReLU(0.2))
        self.conv5 = nn.Sequential(nn.Conv1d(32, emb_dims, 1, bias=False), nn.BatchNorm1d(emb_dims),
                                   nn.LeakyReLU(0.2))
        self.linear1 = nn.Linear(emb_dims * 2, 16, bias=False)
        self.bn6 = nn.BatchNorm1d(16)
        self.dp1 = nn.Dropout(p=0.5)
        self.linear2 = nn.Linear(16, output_channels)

    def forward(self, x):  # (B, 3, N)
        x1 = self.conv1(get_graph_feature(x, k=self.k)).max(dim=-1, keepdim=False)[0]
        x2 = self.conv2(get_graph_feature(x1, k=self.k)).max(dim=-1, keepdim=False)[0]
        x = self.conv5(torch.cat((x1, x2), dim=1))
        x = torch.cat((F.adaptive_max_pool1d(x, 1).view(x.size(0), -1),
                       F.adaptive_avg_pool1d(x, 1).view(x.size(0), -1)), 1)
        x = self.dp1(F.leaky_relu(self.bn6(self.linear1(x)), negative_slope=0.2))
        return self.linear2(x)


def dgcnn(k=6, seed=0, **kwargs):
    torch.manual_seed(seed)
    return DGCNN(k=k, **kwargs)
