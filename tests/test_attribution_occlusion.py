"""Occlusion: leave-one-out (brute force vs. a naive loop vs. the fast max-pool path) and k-NN patches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pointlens.attribution import KNNOcclusion, Occlusion
from pointlens.errors import InvalidArgumentError
from pointlens.ops.removal import cloud_centre
from test_attribution_nets import Bare, TinyDGCNN, TinyPointNet, cloud


def naive_loo(net, x, target):
    out = torch.empty(x.shape[:2], dtype=x.dtype)
    with torch.no_grad():
        for b in range(x.shape[0]):
            full = net(x[b:b + 1])[0, target[b]]
            for i in range(x.shape[1]):
                y = torch.from_numpy(np.delete(x[b].numpy(), i, axis=0)).unsqueeze(0)
                out[b, i] = full - net(y)[0, target[b]]
    return out


@pytest.mark.parametrize("net_cls", [TinyPointNet, TinyDGCNN])
def test_brute_force_leave_one_out_equals_naive_loop(net_cls):
    net = net_cls().eval()
    x = cloud(2, 12, seed=1)
    t = torch.tensor([0, 2])
    occ = Occlusion(net, fast=False, batch_size=5)
    torch.testing.assert_close(occ.attribute(x, target=t), naive_loo(net, x, t), rtol=1e-10, atol=1e-12)
    assert occ.last_path == "brute"


def _check_fast_equals_brute(net, x, t=None, **kw):
    fast = Occlusion(net, batch_size=33, **kw)
    s_fast = fast.attribute(x, target=t)
    assert fast.last_path == "fast"
    s_brute = Occlusion(net, fast=False, batch_size=64).attribute(x, target=t)
    torch.testing.assert_close(s_fast, s_brute, rtol=0, atol=1e-5)
    assert s_brute.abs().max() > 1e-3
    return s_fast


def test_fast_leave_one_out_equals_brute_force_float32():
    net = TinyPointNet(num_classes=7, hidden=32, feat=64, dtype=torch.float32, seed=3).eval()
    x = cloud(3, 200, seed=2, dtype=torch.float32)
    s = _check_fast_equals_brute(net, x)
    assert (s == 0).sum() > 100  # points that are the arg-max of no channel score exactly 0
    _check_fast_equals_brute(net, x, torch.tensor([6, 0, 3]))


def test_fast_leave_one_out_with_ties_from_duplicate_points():
    net = TinyPointNet(dtype=torch.float32, seed=4).eval()
    x = cloud(2, 40, seed=3, dtype=torch.float32)
    x[:, 30:] = x[:, :10]  # ten exact duplicates: every channel they win is a tie
    s = _check_fast_equals_brute(net, x)
    assert (s[:, :10] == 0).all() and (s[:, 30:] == 0).all()
    pooled_winners = net.features(x.transpose(1, 2)).argmax(dim=2)
    assert (pooled_winners < 10).any()  # some channels really are won by duplicated points


def test_fast_path_with_explicit_pool_layer_and_head_on_a_bare_model():
    net = TinyPointNet(dtype=torch.float32, seed=5).eval()
    bare = Bare(net)
    assert not Occlusion(bare).uses_fast_path()
    _check_fast_equals_brute(bare, cloud(2, 64, seed=4, dtype=torch.float32), pool_layer="net.pool",
                             head="net.head")
    _check_fast_equals_brute(bare, cloud(2, 64, seed=4, dtype=torch.float32), pool_layer="net.pool",
                             head=net.head)


def test_fallback_to_brute_force_when_points_interact_or_pool_is_not_max():
    dg = TinyDGCNN().eval()
    x = cloud(1, 12, seed=5)
    occ = Occlusion(dg)
    assert not occ.uses_fast_path()
    occ.attribute(x)
    assert occ.last_path == "brute"
    with pytest.raises(InvalidArgumentError):
        Occlusion(dg, fast=True)
    mean_net = TinyPointNet(pool="mean").eval()  # claims pointwise_until_pool but pools by mean
    occ = Occlusion(mean_net)
    torch.testing.assert_close(occ.attribute(x), naive_loo(mean_net, x, mean_net(x).argmax(-1)))
    assert occ.last_path == "brute"
    with pytest.raises(InvalidArgumentError):
        Occlusion(mean_net, fast=True).attribute(x)
    with pytest.raises(InvalidArgumentError):
        Occlusion(TinyPointNet(), pool_layer="pool")  # head missing


def test_knn_occlusion_with_k1_is_leave_one_out():
    net = TinyDGCNN().eval()
    x = cloud(2, 14, seed=6)
    t = torch.tensor([4, 1])
    torch.testing.assert_close(KNNOcclusion(net, k=1).attribute(x, target=t), naive_loo(net, x, t),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("removal", ["delete", "shift"])
def test_knn_occlusion_fps_spreads_patch_drops_back_by_hand(removal):
    net = TinyPointNet().eval()
    x = cloud(2, 30, seed=7)
    t = torch.tensor([0, 3])
    occ = KNNOcclusion(net, k=4, centres="fps", n_centres=5, removal=removal, batch_size=2)
    got = occ.attribute(x, target=t)
    cidx, members = occ.patches(x)
    assert members.shape == (2, 5, 4)
    with torch.no_grad():
        for b in range(2):
            full = net(x[b:b + 1])[0, t[b]]
            drops = []
            for j in range(5):
                patch = set(members[b, j].tolist())
                assert int(cidx[b, j]) in patch
                if removal == "delete":
                    y = x[b, [i for i in range(30) if i not in patch]]
                else:
                    y = x[b].clone()
                    y[list(patch)] = cloud_centre(x[b:b + 1])[0, 0]
                drops.append(float(full - net(y.unsqueeze(0))[0, t[b]]))
            for i in range(30):
                inside = [drops[j] for j in range(5) if i in members[b, j].tolist()]
                if inside:
                    want = sum(inside) / len(inside)
                else:
                    dist = (x[b, cidx[b]] - x[b, i]).norm(dim=-1)
                    want = drops[int(dist.argmin())]
                assert abs(float(got[b, i]) - want) < 1e-10


def test_occlusion_bad_arguments():
    net = TinyPointNet().eval()
    with pytest.raises(InvalidArgumentError):
        KNNOcclusion(net, k=12).attribute(cloud(1, 12))
    with pytest.raises(InvalidArgumentError):
        Occlusion(net).attribute(cloud(1, 1))
    with pytest.raises(InvalidArgumentError):
        Occlusion(net, fast="yes")


def test_fast_path_on_the_registry_pointnet():
    import pointlens.models as models

    net = models.create_model("pointnet", 4, channels=[16, 32, 64], head=[32]).eval()
    assert Occlusion(net).uses_fast_path()
    _check_fast_equals_brute(net, cloud(2, 96, seed=9, dtype=torch.float32))
    wrapped_names = dict(net.named_modules())
    assert net.pool_layer in wrapped_names
