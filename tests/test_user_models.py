"""A user's own models (not from the registry) get every attribution method and the drop experiment (issue 3, line 5).

Both models are written here the way users write them: a PointNet-like network that takes (B, 3, N) (wrapped with
ChannelsFirst) and a DGCNN-like network that takes (B, N, 3) and builds its own k-NN graph; both pool with
nn.AdaptiveMaxPool1d, which the hook-based methods find by name.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pointlens.attribution import create_attribution, list_attributions
from pointlens.models import ChannelsFirst
from pointlens.perturb.dropping import run_drop_experiment


class UserPointNet(nn.Module):
    """Takes (B, 3, N) like most public PointNet code."""

    def __init__(self, classes=3):
        super().__init__()
        self.mlp = nn.Sequential(nn.Conv1d(3, 32, 1), nn.ReLU(), nn.Conv1d(32, 64, 1), nn.ReLU())
        self.pool = nn.AdaptiveMaxPool1d(1)
        self.fc = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, classes))

    def forward(self, x):  # (B, 3, N)
        return self.fc(self.pool(self.mlp(x)).squeeze(-1))


class UserDGCNN(nn.Module):
    """Takes (B, N, 3); one EdgeConv over a k-NN graph computed with plain torch."""

    def __init__(self, classes=3, k=6):
        super().__init__()
        self.k = k
        self.edge = nn.Sequential(nn.Linear(6, 32), nn.LeakyReLU(0.2))
        self.point = nn.Sequential(nn.Conv1d(32, 64, 1), nn.LeakyReLU(0.2))
        self.pool = nn.AdaptiveMaxPool1d(1)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):  # (B, N, 3)
        d = torch.cdist(x, x)
        idx = d.topk(self.k, largest=False).indices  # (B, N, k)
        nb = torch.gather(x.unsqueeze(1).expand(-1, x.shape[1], -1, -1), 2, idx.unsqueeze(-1).expand(-1, -1, -1, 3))
        centre = x.unsqueeze(2).expand_as(nb)
        e = self.edge(torch.cat([nb - centre, centre], -1)).amax(2)  # (B, N, 32)
        return self.fc(self.pool(self.point(e.transpose(1, 2))).squeeze(-1))


def options_for(name: str, pool: str) -> dict:
    small = {"ig": {"steps": 8}, "smoothgrad": {"n_samples": 4}, "rise": {"n_masks": 32},
             "lime": {"n_segments": 6, "n_samples": 32}, "occlusion-knn": {"k": 4}}
    opts = dict(small.get(name, {}))
    if name == "critical":
        opts["pool_layer"] = pool
    if name == "gradcam":
        opts["layer"] = pool
    return opts


def clouds(b=4, n=48):
    g = torch.Generator().manual_seed(0)
    return torch.rand(b, n, 3, generator=g) * 2 - 1


MODELS = {
    "pointnet-like (B, 3, N)": (lambda: ChannelsFirst(UserPointNet()), "module.pool"),
    "dgcnn-like (B, N, 3)": (lambda: UserDGCNN(), "pool"),
}


@pytest.mark.parametrize("model_name", list(MODELS))
@pytest.mark.parametrize("method", list_attributions())
def test_every_method_on_user_models(model_name, method):
    torch.manual_seed(0)
    make, pool = MODELS[model_name]
    model = make().eval()
    x = clouds()
    scores = create_attribution(method, model, **options_for(method, pool)).attribute(x)
    assert scores.shape == (4, 48) and torch.isfinite(scores).all()
    perm = torch.randperm(48)
    again = create_attribution(method, model, **options_for(method, pool)).attribute(x[:, perm])
    torch.testing.assert_close(again, scores[:, perm], rtol=1e-4, atol=1e-5)  # equivariant: model is invariant


@pytest.mark.parametrize("model_name", list(MODELS))
def test_drop_experiment_on_user_models(model_name):
    torch.manual_seed(0)
    make, pool = MODELS[model_name]
    model = make().eval()
    x = clouds(6, 40)
    with torch.no_grad():
        y = model(x).argmax(1)  # labels = the model's own predictions: clean accuracy is exactly 1
    methods = {"pointshift": create_attribution("pointshift", model),
               "critical": create_attribution("critical", model, pool_layer=pool), "random": "random"}
    curves = run_drop_experiment(model, x, y, methods, modes=("high", "low"), budgets=(0, 10, 20), per_step=5)
    assert set(curves) == {f"{m}-{d}" for m in methods for d in ("high", "low")}
    for curve in curves.values():
        assert curve[0] == 1.0 and all(0.0 <= a <= 1.0 for a in curve.values())
