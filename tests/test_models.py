"""Models: shapes, permutation invariance, hooks on the pool layer, head, registry, T-Net regulariser."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pointlens.errors import InvalidArgumentError
from pointlens.models import GlobalMaxPool, create_model, list_models, register_model, registry
from pointlens.models.dgcnn import EdgeConv, edge_features
from pointlens.models.hooks import capture, get_layer
from pointlens.models.layers import ConvBNAct
from pointlens.models.pointnet2 import num_centres
from pointlens.ops import ball_query, farthest_point_sampling, gather_points, knn

# small but structurally complete configurations, to keep the tests fast on CPU
SMALL = {
    "pointnet": {"channels": (16, 16, 16, 32, 64), "head": (32, 16)},
    "pointnet2": {
        "npoints": (32, 8),
        "nsamples": (8, 16),
        "mlps": ((8, 16), (16, 32)),
        "global_mlp": (32, 64),
        "head": (32, 16),
        "reference_points": 64,
    },
    "dgcnn": {"k": 6, "emb_dims": 32, "channels": (8, 8, 16, 16), "head": (32, 16)},
}


def make(name: str, num_classes: int = 5, **extra) -> nn.Module:
    model = create_model(name, num_classes, **{**SMALL[name], **extra})
    randomize_batchnorm(model)
    return model.eval()


def randomize_batchnorm(model: nn.Module) -> None:
    """Non-trivial BN statistics and affine parameters, so eval-mode tests exercise them."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


def cloud(b: int, n: int) -> torch.Tensor:
    x = torch.randn(b, n, 3)
    return x / x.norm(dim=-1).amax(dim=1, keepdim=True)[..., None]


def test_registry_lists_the_three_families():
    assert {"pointnet", "pointnet2", "dgcnn"} <= set(list_models())
    with pytest.raises(InvalidArgumentError, match="dgcnn.*pointnet.*pointnet2"):
        create_model("resnet", 3)
    with pytest.raises(InvalidArgumentError, match="num_classes"):
        create_model("pointnet", 0)
    with pytest.raises(InvalidArgumentError, match="bogus"):
        create_model("pointnet", 3, bogus=1)
    with pytest.raises(InvalidArgumentError, match="dropout"):
        create_model("pointnet", 3, dropout=1.5)
    with pytest.raises(InvalidArgumentError, match="pooling"):
        create_model("dgcnn", 3, pooling="sum")


def test_register_model_decorator():
    @register_model("test-tiny")
    class Tiny(nn.Module):
        def __init__(self, num_classes, width=4):
            super().__init__()
            self.fc = nn.Linear(3, num_classes)
            self.width = width

        def forward(self, x):
            return self.fc(x.mean(1))

    try:
        assert "test-tiny" in list_models()
        m = create_model("test-tiny", 7, width=9)
        assert isinstance(m, Tiny) and m.width == 9
        assert m(torch.randn(2, 10, 3)).shape == (2, 7)
        with pytest.raises(InvalidArgumentError, match="width"):
            create_model("test-tiny", 7, depth=2)
    finally:
        registry._REGISTRY.pop("test-tiny", None)  # leave the registry as other tests expect it
    assert "test-tiny" not in list_models()


@pytest.mark.parametrize("name", ["pointnet", "pointnet2", "dgcnn"])
@pytest.mark.parametrize("b,n", [(1, 16), (3, 64), (2, 100)])
def test_output_shapes(name, b, n):
    model = make(name, num_classes=4)
    out = model(cloud(b, n))
    assert out.shape == (b, 4) and out.dtype == torch.float32
    assert bool(torch.isfinite(out).all())


@pytest.mark.parametrize("name", ["pointnet", "pointnet2", "dgcnn"])
def test_single_cloud_and_numpy_input(name):
    model = make(name)
    x = cloud(1, 32)
    ref = model(x)
    torch.testing.assert_close(model(x[0]), ref)  # (N, 3) gets a batch dimension
    torch.testing.assert_close(model(x.numpy()), ref)  # arrays are accepted


@pytest.mark.parametrize("name", ["pointnet", "pointnet2", "dgcnn"])
def test_bad_input_gives_clear_errors(name):
    model = make(name)
    with pytest.raises(InvalidArgumentError, match=r"points.*\(B, N, 3\).*ChannelsFirst"):
        model(torch.randn(2, 3, 40))
    with pytest.raises(InvalidArgumentError, match="NaN"):
        model(torch.full((1, 20, 3), float("nan")))


def test_minimum_points():
    dgcnn = make("dgcnn")  # k = 6
    assert dgcnn.min_points == 6
    assert dgcnn(cloud(2, 6)).shape == (2, 5)
    with pytest.raises(InvalidArgumentError, match=r"points: got 5 points per cloud.*at least 6.*k=6"):
        dgcnn(cloud(2, 5))
    for name in ("pointnet", "pointnet2"):
        assert make(name)(cloud(2, 1)).shape == (2, 5)  # a single point is a valid cloud


@pytest.mark.parametrize(
    "name,extra",
    [
        ("pointnet", {}),
        ("pointnet", {"input_transform": True, "feature_transform": True}),
        ("dgcnn", {}),
        ("dgcnn", {"pooling": "max"}),
    ],
)
def test_permutation_invariance(name, extra):
    model = make(name, **extra)
    x = cloud(3, 80)
    perm = torch.randperm(80)
    with torch.no_grad():
        torch.testing.assert_close(model(x[:, perm]), model(x), rtol=0, atol=1e-5)


def test_pointnet2_is_deterministic_in_eval():
    model = make("pointnet2")
    x = cloud(2, 64)
    with torch.no_grad():
        a, b = model(x), model(x)
        torch.manual_seed(123)  # eval FPS uses no randomness
        c = model(x)
    assert torch.equal(a, b) and torch.equal(a, c)
    # batch independence: each cloud's logits do not depend on the others in the batch (eval mode)
    torch.testing.assert_close(model(x[1:]), a[1:], rtol=0, atol=1e-5)


def test_pointnet2_centres_scale_with_n():
    assert [num_centres(1024, m, 1024) for m in (512, 128)] == [512, 128]
    assert [num_centres(2048, m, 1024) for m in (512, 128)] == [512, 128]
    assert [num_centres(256, m, 1024) for m in (512, 128)] == [128, 32]
    assert [num_centres(3, m, 1024) for m in (512, 128)] == [2, 1]
    model = make("pointnet2")  # npoints (32, 8) for 64 points
    for n, m_last in ((64, 8), (32, 4), (640, 8)):
        with capture(model, model.pool_layer) as acts:
            model(cloud(1, n))
        assert acts[model.pool_layer].input.shape == (1, 64, m_last)


def test_pointnet2_groups_hold_relative_coordinates():
    model = make("pointnet2", normalize_xyz=True)
    x = cloud(2, 64)
    with capture(model, ["sa.0.mlp.0.conv", "sa.1.mlp.0.conv"]) as acts:
        model(x)
    grouped = acts["sa.0.mlp.0.conv"].input  # (B, 3, M, K)
    centre_idx = farthest_point_sampling(x, 32)
    centres = gather_points(x, centre_idx)
    idx = ball_query(centres, x, 0.2, 8)
    expected = (gather_points(x, idx) - centres[:, :, None, :]) / 0.2  # divided by the radius (normalize_xyz)
    torch.testing.assert_close(grouped.permute(0, 2, 3, 1), expected)
    assert acts["sa.1.mlp.0.conv"].input.shape == (2, 3 + 16, 8, 16)
    # every relative coordinate of a ball lies inside the radius (padding repeats a member)
    assert float(grouped.norm(dim=1).max()) < 1.0
    raw = make("pointnet2")  # default: Qi et al.'s unnormalised relative coordinates
    with capture(raw, ["sa.0.mlp.0.conv"]) as acts:
        raw(x)
    torch.testing.assert_close(acts["sa.0.mlp.0.conv"].input.permute(0, 2, 3, 1), expected * 0.2)


def test_pointnet2_normalize_xyz_equals_scaled_first_layer_weights():
    """Dividing the relative coordinates by r is the same as dividing the first layer's xyz weights by r."""
    norm = make("pointnet2", normalize_xyz=True)
    raw = make("pointnet2", normalize_xyz=False)
    raw.load_state_dict(norm.state_dict())
    with torch.no_grad():
        for level, r in zip(raw.sa, (0.2, 0.4)):
            level.mlp[0].conv.weight[:, :3] /= r
    x = cloud(3, 64)
    torch.testing.assert_close(raw(x), norm(x), rtol=1e-5, atol=1e-5)
    unscaled = make("pointnet2", normalize_xyz=False)
    unscaled.load_state_dict(norm.state_dict())
    with capture(unscaled, ["sa.0.pool"]) as a, capture(norm, ["sa.0.pool"]) as b:
        unscaled(x), norm(x)
    assert not torch.allclose(a["sa.0.pool"].output, b["sa.0.pool"].output, atol=1e-2)  # the flag matters
    with pytest.raises(InvalidArgumentError, match="normalize_xyz"):
        make("pointnet2", normalize_xyz="yes")


def test_dgcnn_edge_features_match_brute_force():
    x = torch.randn(2, 5, 30)  # (B, C, N) features
    e = edge_features(x, 4)
    assert e.shape == (2, 10, 30, 4)
    xt = x.transpose(1, 2)
    d = torch.cdist(xt, xt)
    for b in range(2):
        for i in range(30):
            nb = d[b, i].argsort()[:4]
            assert nb[0] == i  # the point itself is its nearest neighbour
            got = e[b, :, i, :]  # (2C, k)
            # neighbour order does not matter to the max that follows: compare as sets of columns
            want = torch.cat([xt[b, nb] - xt[b, i], xt[b, i].expand(4, -1)], dim=1).T
            key = lambda m: m[:, m[0].argsort()]  # noqa: E731
            torch.testing.assert_close(key(got), key(want))


def _reference_edge_convs(model: nn.Module, on: bool) -> None:
    for m in model.modules():
        if isinstance(m, EdgeConv):
            m.fused = on


def _mixed_sign_batchnorm(model: nn.Module) -> None:
    """BN scales of both signs and one exactly zero: the fused path must take a min where the scale is < 0."""
    g = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            w = torch.randn(m.num_features, generator=g, dtype=m.weight.dtype)
            w[0] = 0.0
            m.weight.data.copy_(w)


@pytest.mark.parametrize("slope", [0.2, 0.0])
def test_dgcnn_fused_edge_conv_equals_the_reference_values_and_gradients(slope):
    model = make("dgcnn", negative_slope=slope).double()
    _mixed_sign_batchnorm(model)
    assert all(m._can_fuse() for m in model.modules() if isinstance(m, EdgeConv))
    x = cloud(3, 40).double()
    outs, grads = [], []

    def logits(p):  # the model's forward in float64 (model() itself casts its input to float32)
        feats, f = [], p.transpose(1, 2)
        for conv in model.edge_convs:
            f = conv(f)
            feats.append(f)
        return model.forward_head(model.embed(torch.cat(feats, dim=1)))

    for fused in (True, False):
        _reference_edge_convs(model, fused)
        xi = x.clone().requires_grad_(True)
        out = logits(xi)
        out[:, 1].sum().backward()
        outs.append(out.detach())
        grads.append(xi.grad)
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=1e-12)
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-12)
    assert float(grads[0].abs().max()) > 0


def test_dgcnn_fused_edge_conv_folds_a_conv_bias():
    layer = EdgeConv(4, 6, k=5).double()
    conv = layer.conv.conv
    layer.conv.conv = nn.Conv2d(8, 6, kernel_size=1, bias=True).double()
    layer.conv.conv.weight.data.copy_(conv.weight.data)
    randomize_batchnorm(layer)
    _mixed_sign_batchnorm(layer)
    layer.eval()
    x = torch.randn(2, 4, 30, dtype=torch.float64)
    assert layer._can_fuse()
    fused = layer(x)
    layer.fused = False
    torch.testing.assert_close(fused, layer(x), rtol=0, atol=1e-12)


def test_dgcnn_fused_edge_conv_only_when_nothing_could_tell():
    model = make("dgcnn")
    conv0 = model.edge_convs[0]
    assert conv0._can_fuse()
    model.train()
    assert not conv0._can_fuse()  # batch statistics: the reference path
    model.eval()
    with capture(model, "edge_convs.0.conv.bn"):
        assert not conv0._can_fuse()  # a hook inside must see the edge tensor
        assert model.edge_convs[1]._can_fuse()
    with capture(model, "edge_convs.0"):
        assert conv0._can_fuse()  # a hook on the EdgeConv itself sees the same output either way
    handle = nn.modules.module.register_module_forward_hook(lambda *a: None)
    try:
        assert not conv0._can_fuse()
    finally:
        handle.remove()
    assert conv0._can_fuse()
    conv0.conv.act = nn.LeakyReLU(-0.5)  # not monotone: the max cannot move inside
    assert not conv0._can_fuse()


def test_dgcnn_graph_is_dynamic():
    model = make("dgcnn")
    x = cloud(1, 40)
    with capture(model, ["edge_convs.0", "edge_convs.0.conv.conv", "edge_convs.1.conv.conv"]) as acts:
        model(x)
    # layer 0 builds its graph on xyz, layer 1 on layer 0's output features
    torch.testing.assert_close(acts["edge_convs.0.conv.conv"].input, edge_features(x.transpose(1, 2), 6))
    out0 = acts["edge_convs.0"].output  # (1, 8, N)
    torch.testing.assert_close(acts["edge_convs.1.conv.conv"].input, edge_features(out0, 6))
    g_xyz = knn(x, x, 6).idx.sort(-1).values
    g_feat = knn(out0.transpose(1, 2), out0.transpose(1, 2), 6).idx.sort(-1).values
    assert not torch.equal(g_xyz, g_feat)


@pytest.mark.parametrize("name", ["pointnet", "pointnet2", "dgcnn"])
def test_pool_hook_and_head(name):
    model = make(name)
    x = cloud(2, 48)
    assert isinstance(get_layer(model, model.pool_layer), GlobalMaxPool)
    with torch.no_grad(), capture(model, model.pool_layer) as acts:
        logits = model(x)
    rec = acts[model.pool_layer]
    assert rec.input.dim() == 3 and rec.input.shape[:2] == (2, rec.output.shape[1])
    torch.testing.assert_close(rec.output, rec.input.max(dim=2).values, rtol=0, atol=0)
    with torch.no_grad():
        if name == "dgcnn":  # head input = [max, avg] pooled features
            head_in = torch.cat([rec.output, rec.input.mean(dim=2)], dim=1)
        else:
            head_in = rec.output
        torch.testing.assert_close(model.head(head_in), logits, rtol=0, atol=1e-6)
        torch.testing.assert_close(model.forward_head(rec.input), logits, rtol=0, atol=1e-6)
        torch.testing.assert_close(model.forward_features(x), rec.input, rtol=0, atol=0)


def test_dgcnn_max_pooling_head_takes_pooled_feature():
    model = make("dgcnn", pooling="max")
    with torch.no_grad(), capture(model, model.pool_layer) as acts:
        logits = model(cloud(2, 30))
        torch.testing.assert_close(model.head(acts["pool"].output), logits, rtol=0, atol=1e-6)


def test_pointwise_until_pool_is_true_only_for_plain_pointnet():
    assert make("pointnet").pointwise_until_pool is True
    assert make("pointnet", input_transform=True).pointwise_until_pool is False
    assert make("pointnet", feature_transform=True).pointwise_until_pool is False
    assert make("pointnet2").pointwise_until_pool is False
    assert make("dgcnn").pointwise_until_pool is False


def test_plain_pointnet_features_are_pointwise_and_leave_one_out_is_exact():
    model = make("pointnet")
    x = cloud(1, 25)
    with torch.no_grad():
        feats = model.forward_features(x)  # (1, 64, 25)
        single = torch.cat([model.forward_features(x[:, i : i + 1]) for i in range(25)], dim=2)
        torch.testing.assert_close(feats, single, rtol=0, atol=1e-5)
        j = 7
        keep = [i for i in range(25) if i != j]
        torch.testing.assert_close(
            model(x[:, keep]), model.forward_head(feats[:, :, keep]), rtol=0, atol=1e-5
        )


def test_gradients_reach_the_points():
    for name in ("pointnet", "pointnet2", "dgcnn"):
        model = make(name)
        x = cloud(2, 40).requires_grad_(True)
        model(x)[:, 0].sum().backward()
        assert x.grad.shape == x.shape and bool(torch.isfinite(x.grad).all())
        assert float(x.grad.abs().sum(-1).gt(0).float().mean()) > 0.1, name


def test_pointnet_gradient_matches_finite_differences():
    model = make("pointnet").double()
    x = cloud(1, 12).double()

    def f(p):
        feats = p.transpose(1, 2)
        for block in model.features:
            feats = block(feats)
        return model.head(model.pool(feats))[0, 2]

    x.requires_grad_(True)
    f(x).backward()
    eps = 1e-6
    for i, c in ((0, 0), (5, 1), (11, 2)):
        e = torch.zeros_like(x)
        e[0, i, c] = eps
        with torch.no_grad():
            fd = (f(x + e) - f(x - e)) / (2 * eps)
        assert float(x.grad[0, i, c]) == pytest.approx(float(fd), rel=1e-4, abs=1e-8)


def test_feature_transform_regulariser_closed_form():
    model = make("pointnet", feature_transform=True, input_transform=True)
    p = next(model.parameters())
    assert float(make("pointnet").regularization_loss()) == 0.0  # no T-Net: 0
    assert model.regularization_loss().item() == 0.0  # before any forward
    model(cloud(2, 20))
    assert model.regularization_loss().item() == pytest.approx(0.0, abs=1e-10)  # identity at init
    out = model.feature_transform.fc[-1]
    k = 16
    with torch.no_grad():
        out.bias.copy_((2 * torch.eye(k) - torch.eye(k)).reshape(-1))  # A = 2I for every cloud
    model(cloud(2, 20))
    assert model.regularization_loss().item() == pytest.approx(9.0 * k, rel=1e-5)  # ||I - 4I||_F^2 = 9k
    q, _ = torch.linalg.qr(torch.randn(k, k, dtype=torch.float64))
    with torch.no_grad():
        out.bias.copy_((q.float() - torch.eye(k)).reshape(-1))  # orthogonal A: loss 0
    model(cloud(2, 20))
    assert model.regularization_loss().item() == pytest.approx(0.0, abs=1e-4)
    assert model.regularization_loss().device == p.device


def test_input_transform_is_identity_at_init():
    with_t = make("pointnet", input_transform=True)
    without = make("pointnet")
    without.load_state_dict(
        {k: v for k, v in with_t.state_dict().items() if not k.startswith("input_transform")}
    )
    x = cloud(2, 30)
    with torch.no_grad():
        torch.testing.assert_close(with_t(x), without(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["pointnet", "pointnet2", "dgcnn"])
def test_config_rebuilds_the_model(name):
    model = make(name, num_classes=3)
    cfg = model.config
    assert cfg["name"] == name and cfg["num_classes"] == 3
    twin = create_model(cfg["name"], cfg["num_classes"], **cfg["kwargs"])
    twin.load_state_dict(model.state_dict())
    twin.eval()
    x = cloud(2, 40)
    with torch.no_grad():
        assert torch.equal(twin(x), model(x))
    assert twin.config == cfg


def test_default_sizes_and_layer_names():
    pn = create_model("pointnet", 40)
    assert [b.conv.out_channels for b in pn.features] == [64, 64, 64, 128, 1024]
    assert [m.out_features for m in pn.head if isinstance(m, nn.Linear)] == [40]
    assert pn.head[0].drop.p == 0.3
    names = dict(pn.named_modules())
    for n in ("features.0", "features.4.act", "pool", "head", "head.0.linear", "head.2"):
        assert n in names
    dg = create_model("dgcnn", 40)
    assert [c.conv.conv.out_channels for c in dg.edge_convs] == [64, 64, 128, 256]
    assert dg.embed.conv.out_channels == 1024 and dg.k == 20
    assert (
        isinstance(dg.edge_convs[0].conv.act, nn.LeakyReLU)
        and dg.edge_convs[0].conv.act.negative_slope == 0.2
    )
    p2 = create_model("pointnet2", 40)
    assert [lvl.max_centres for lvl in p2.sa] == [512, 128] and [lvl.radius for lvl in p2.sa] == [0.2, 0.4]
    assert p2.global_mlp[-1].conv.out_channels == 1024


def _fold_all(model: nn.Module, on: bool) -> None:
    for m in model.modules():
        if isinstance(m, ConvBNAct):
            m.fused = on


@pytest.mark.parametrize("dim,shape,bias,affine", [(1, (3, 5, 17), True, True), (1, (2, 5, 9), False, True),
                                                    (2, (2, 5, 6, 4), True, True), (1, (2, 5, 9), True, False)])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_conv_bn_act_folded_equals_the_reference_values_and_every_gradient(dim, shape, bias, affine, activation):
    layer = ConvBNAct(5, 7, dim=dim, activation=activation, bias=bias).double()
    if not affine:
        layer.bn = (nn.BatchNorm1d if dim == 1 else nn.BatchNorm2d)(7, affine=False).double()
    randomize_batchnorm(layer)
    if affine:
        _mixed_sign_batchnorm(layer) if dim == 2 else layer.bn.weight.data.uniform_(-2, 2)
    layer.eval()
    x = torch.randn(*shape, dtype=torch.float64)
    res = []
    for on in (True, False):
        layer.fused = on
        assert layer._can_fold(x) == on
        xi = x.clone().requires_grad_(True)
        out = layer(xi)
        params = [p for p in layer.parameters()]
        grads = torch.autograd.grad((out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum(),
                                    [xi, *params])
        res.append((out.detach(), grads))
    torch.testing.assert_close(res[0][0], res[1][0], rtol=0, atol=1e-12)
    for a, b in zip(res[0][1], res[1][1]):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-11)
    assert float(res[0][1][0].abs().max()) > 0


def test_conv_bn_act_folds_only_when_nothing_could_tell():
    model = make("pointnet")
    block = model.get_submodule("features.4")
    x = torch.randn(2, block.conv.in_channels, 20)
    assert block._can_fold(x)
    model.train()
    assert not block._can_fold(x)  # batch statistics: the reference path
    model.eval()
    with capture(model, "features.4.bn"):
        assert not block._can_fold(x)  # a hook inside must see the un-activated batch-norm output
    pts = cloud(2, 20)
    with capture(model, "features.4") as acts:
        assert block._can_fold(x)  # a hook on the block sees the same output either way
        model(pts)
    ref = acts["features.4"].output
    _fold_all(model, False)
    with capture(model, "features.4") as acts:
        model(pts)
    torch.testing.assert_close(ref, acts["features.4"].output, rtol=1e-5, atol=1e-5)
    assert not block._can_fold(torch.randn(2, block.conv.in_channels))  # wrong rank: the reference path raises


def test_pointnet_folded_forward_and_input_gradient_equal_the_reference():
    model = make("pointnet").double()
    randomize_batchnorm(model)
    x = cloud(3, 50).double()
    res = []
    for on in (True, False):
        _fold_all(model, on)
        xi = x.clone().requires_grad_(True)
        out = model.forward_head(model.forward_features(xi))
        g, = torch.autograd.grad(out[:, 2].sum(), xi)
        res.append((out.detach(), g))
    torch.testing.assert_close(res[0][0], res[1][0], rtol=0, atol=1e-10)
    torch.testing.assert_close(res[0][1], res[1][1], rtol=0, atol=1e-10)
