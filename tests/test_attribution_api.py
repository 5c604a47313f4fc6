"""The shared API: registry, permutation equivariance, model state, ChannelsFirst, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pointlens.attribution import Attribution, canonical_order, create_attribution, list_attributions
from pointlens.errors import InvalidArgumentError
from test_attribution_nets import TinyDGCNN, TinyPointNet, channels_first_twin, cloud

NAMES = ["pointshift", "gradient", "gradxinput", "ig", "smoothgrad", "occlusion", "occlusion-knn", "critical",
         "rise", "lime", "gradcam", "random"]

# small, fast settings per method
OPTIONS = {
    "ig": dict(steps=8),
    "smoothgrad": dict(n_samples=3, sigma=0.05),
    "occlusion-knn": dict(k=3, centres="fps", n_centres=6),
    "rise": dict(n_masks=16),
    "lime": dict(n_segments=5, n_samples=24),
}


def make(name, model, **extra):
    return create_attribution(name, model, **{**OPTIONS.get(name, {}), **extra})


def test_registry_lists_every_agreed_method():
    assert list_attributions() == NAMES
    net = TinyPointNet()
    for name in NAMES:
        m = make(name, net)
        assert isinstance(m, Attribution) and m.name == name


@pytest.mark.parametrize("name", NAMES)
def test_every_method_is_permutation_equivariant_on_a_permutation_invariant_model(name):
    net = TinyPointNet().eval()
    x = cloud(2, 24, seed=11)
    perm = torch.randperm(24, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([1, 2])
    s = make(name, net).attribute(x, target=t)
    sp = make(name, net).attribute(x[:, perm], target=t)
    assert s.shape == (2, 24) and s.dtype == torch.float64
    assert float(s.std()) > 1e-6  # not a constant map
    torch.testing.assert_close(sp, s[:, perm], rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", ["pointshift", "ig", "occlusion", "rise", "lime", "occlusion-knn"])
def test_permutation_equivariance_on_a_knn_graph_model(name):
    net = TinyDGCNN().eval()
    x = cloud(1, 20, seed=12)
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(2))
    s = make(name, net).attribute(x)
    torch.testing.assert_close(make(name, net).attribute(x[:, perm]), s[:, perm], rtol=1e-7, atol=1e-9)


def test_canonical_order_is_geometric():
    x = cloud(2, 30, seed=13)
    perm = torch.randperm(30, generator=torch.Generator().manual_seed(3))
    o, op = canonical_order(x), canonical_order(x[:, perm])
    torch.testing.assert_close(x[:, perm].gather(1, op.unsqueeze(-1).expand(-1, -1, 3)),
                               x.gather(1, o.unsqueeze(-1).expand(-1, -1, 3)), rtol=0, atol=0)
    first = x.gather(1, o.unsqueeze(-1).expand(-1, -1, 3))[..., 0]
    assert (first[:, 1:] >= first[:, :-1]).all()


@pytest.mark.parametrize("name", NAMES)
def test_methods_leave_the_model_untouched(name):
    net = TinyPointNet().train()
    net.features[0].weight.requires_grad_(False)
    net.head[0].bias.grad = torch.full_like(net.head[0].bias, 7.0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    flags = {n: p.requires_grad for n, p in net.named_parameters()}
    x = cloud(2, 16, seed=14)
    s1 = make(name, net).attribute(x, target=1)
    assert all(m.training for m in net.modules())
    assert flags == {n: p.requires_grad for n, p in net.named_parameters()}
    for n, p in net.named_parameters():
        if n == "head.0.bias":
            assert torch.equal(p.grad, torch.full_like(p, 7.0))
        else:
            assert p.grad is None, n
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k  # BatchNorm running stats included
    # explained in eval mode: dropout off, so the same call gives the same numbers
    torch.testing.assert_close(make(name, net).attribute(x, target=1), s1, rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_channels_first_wrapper_gives_the_same_scores(name):
    net = TinyPointNet().eval()
    wrapped = channels_first_twin(net).eval()
    x = cloud(2, 20, seed=15)
    a = make(name, net).attribute(x)
    b = make(name, wrapped).attribute(x)
    torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-11)
    if name == "occlusion":
        occ = make(name, wrapped)
        occ.attribute(x)
        assert occ.last_path == "fast"


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_raise_invalid_argument(name):
    net = TinyPointNet().eval()
    m = make(name, net)
    x = cloud(2, 10, seed=16)
    with pytest.raises(InvalidArgumentError, match="points"):
        m.attribute(x.transpose(1, 2))  # (B, 3, N)
    bad = x.clone()
    bad[0, 3, 1] = float("nan")
    with pytest.raises(InvalidArgumentError, match="NaN"):
        m.attribute(bad)
    with pytest.raises(InvalidArgumentError, match="target"):
        m.attribute(x, target=5)
    with pytest.raises(InvalidArgumentError, match="target"):
        m.attribute(x, target=[0, 1, 2])
    with pytest.raises(InvalidArgumentError, match="target"):
        m.attribute(x, target=0.5)


@pytest.mark.parametrize("name,options", [
    ("gradient-shap", {}), ("pointshift", {"alpha": -1}), ("pointshift", {"centre": "mode"}),
    ("pointshift", {"power": 2}), ("ig", {"steps": 0}), ("ig", {"method": "simpson"}),
    ("ig", {"baseline": "ones"}), ("smoothgrad", {"n_samples": 0}), ("smoothgrad", {"method": "nope"}),
    ("smoothgrad", {"method": "smoothgrad"}), ("rise", {"p_keep": 0.0}), ("rise", {"removal": "drop"}),
    ("rise", {"estimator": "mean"}), ("lime", {"n_samples": 1}), ("occlusion-knn", {"centres": "grid"}),
    ("gradcam", {"layer": "no.such.layer"}), ("critical", {"layout": "NCB"}),
    ("random", {"seed": 1.5}), ("gradient", {"batch_size": 0}),
])
def test_bad_names_and_options_raise_invalid_argument(name, options):
    with pytest.raises(InvalidArgumentError):
        create_attribution(name, TinyPointNet(), **options)


def test_not_a_model_raises_and_single_cloud_is_batched():
    with pytest.raises(InvalidArgumentError, match="model"):
        create_attribution("gradient", lambda x: x)
    net = TinyPointNet().eval()
    x = cloud(1, 12, seed=17)
    s = create_attribution("gradient", net).attribute(x[0].numpy())  # (N, 3) numpy array
    assert s.shape == (1, 12) and s.dtype == torch.float64
    np.testing.assert_allclose(s.numpy(), create_attribution("gradient", net).attribute(x).numpy(), atol=1e-6)
