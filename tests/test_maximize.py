"""Activation maximisation: the optimiser raises the target logit, same seed -> same clouds, batched samples are
independent, activation flows equal a direct computation, the randomisation check re-initialises exactly the
named layers on a copy, the autoencoder resumes exactly and refuses another point count."""

import copy

import pytest
import torch

from pointlens.errors import CheckpointError, DataError, InvalidArgumentError
from pointlens.maximize import (
    AEConfig,
    PointAutoencoder,
    am_randomisation,
    collect_flow,
    flow_samples_per_class,
    load_autoencoder,
    maximize,
    train_autoencoder,
)
from pointlens.maximize.core import DEFAULTS, continuity, outside_bounds
from pointlens.maximize.flow import check_layers, layer_descriptor
from pointlens.models import create_model

torch.set_num_threads(1)
N = 48


def data(seed=0, m=12):
    """Three separable classes: a cube, a half-size cube, a flat square."""
    g = torch.Generator().manual_seed(seed)
    pts = torch.rand(m, N, 3, generator=g) * 2 - 1
    lab = torch.arange(m) % 3
    pts[lab == 1] *= 0.5
    pts[lab == 2, :, 2] *= 0.1
    return pts, lab


_TRAINED = {}


def tiny(seed=0, classes=3):
    """A tiny PointNet trained for 60 steps on :func:`data` (so its logits respond to the shape)."""
    if seed not in _TRAINED:
        torch.manual_seed(seed)
        m = create_model("pointnet", classes, channels=(8, 16), head=(16,), dropout=0.0)
        pts, lab = data()
        opt = torch.optim.Adam(m.parameters(), lr=0.02)
        m.train()
        for _ in range(60):
            loss = torch.nn.functional.cross_entropy(m(pts), lab)
            opt.zero_grad()
            loss.backward()
            opt.step()
        _TRAINED[seed] = m.eval()
    return copy.deepcopy(_TRAINED[seed])


@pytest.mark.parametrize("method", ["naive", "flow"])
def test_optimiser_raises_target_logit(method):
    m = tiny()
    pts, lab = data()
    opts = {"flow_stats": collect_flow(m, pts, lab, num_classes=3)} if method == "flow" else {}
    res = maximize(m, 2, method, samples=3, steps=40, seed=0, points=N, data=pts, data_labels=lab, **opts)
    assert res.clouds.shape == (3, N, 3)
    assert res.trace["logit"].shape == (41, 3)
    with torch.no_grad():
        before = res.trace["logit"][0]
        after = m(res.clouds)[:, 2]
    assert torch.allclose(after, res.trace["logit"][-1], atol=1e-5)
    assert (after > before + 1.0).all()


def test_generative_raises_target_logit_and_decodes_ae_points():
    m = tiny()
    pts, lab = data()
    torch.manual_seed(0)
    ae = PointAutoencoder(num_points=N, latent=8, decoder=(16, 32)).eval()
    res = maximize(m, 0, "generative", samples=2, steps=40, seed=0, autoencoder=ae, data=pts, data_labels=lab,
                   lr=0.05)
    assert res.clouds.shape == (2, N, 3) and res.latent.shape == (2, 8)
    assert (res.trace["logit"][-1] > res.trace["logit"][0] + 0.1).all()
    assert torch.allclose(ae.decode(res.latent), res.clouds, atol=1e-6)


def test_same_seed_same_clouds_and_batch_independence():
    m = tiny()
    pts, lab = data()
    fs = collect_flow(m, pts, lab, num_classes=3)
    a = maximize(m, 1, "flow", samples=3, steps=15, seed=7, points=N, flow_stats=fs, data=pts, data_labels=lab)
    b = maximize(m, 1, "flow", samples=3, steps=15, seed=7, points=N, flow_stats=fs, data=pts, data_labels=lab)
    c = maximize(m, 1, "flow", samples=3, steps=15, seed=8, points=N, flow_stats=fs, data=pts, data_labels=lab)
    one = maximize(m, 1, "flow", samples=1, steps=15, seed=7, points=N, flow_stats=fs, data=pts, data_labels=lab)
    assert torch.equal(a.clouds, b.clouds)
    assert not torch.allclose(a.clouds, c.clouds)
    assert torch.allclose(a.clouds[:1], one.clouds, atol=1e-5)


def test_caller_model_untouched_by_maximize():
    m = tiny()
    m.train()
    state = copy.deepcopy(m.state_dict())
    maximize(m, 0, "naive", samples=2, steps=5, seed=0, points=N)
    assert m.training and all(p.requires_grad for p in m.parameters())
    assert all(torch.equal(state[k], v) for k, v in m.state_dict().items())


def test_flow_statistics_equal_direct_computation():
    m = tiny()
    pts, lab = data()
    fs = collect_flow(m, pts, lab, num_classes=3, layers=["features.1", "head.0"], reduce="both")
    with torch.no_grad():
        feat = m.features(pts.transpose(1, 2))      # (M, 16, N)
    want = torch.cat([feat.amax(-1), feat.mean(-1)], 1)[lab == 1]
    assert torch.allclose(fs.mean["features.1"][1], want.mean(0), atol=1e-5)
    assert torch.allclose(fs.std["features.1"][1], want.std(0, unbiased=False), atol=1e-5)
    assert fs.mean["head.0"].shape == (3, 16) and fs.counts.tolist() == [4, 4, 4]
    assert layer_descriptor(torch.ones(2, 5), "max").shape == (2, 5)


def test_unknown_layer_suggests_close_names():
    with pytest.raises(InvalidArgumentError, match="did you mean features.1"):
        check_layers(tiny(), ["featurs.1"])


def test_regularisers_closed_form():
    x = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0], [3.0, 0, 0]]])
    # nearest-neighbour distances 1, 1, 2 -> mean of squares (1 + 1 + 4) / 3
    assert continuity(x, k=1).item() == pytest.approx(2.0)
    lo, hi = -torch.ones(3), torch.ones(3)
    # only the point at x=3 is outside, by 2 -> 4 / 3
    assert outside_bounds(x, lo, hi).item() == pytest.approx(4 / 3)


def test_randomisation_reinitialises_exactly_named_layers_on_a_copy():
    m = tiny()
    m.train()
    original = copy.deepcopy(m.state_dict())
    seen = []

    def generate(model):
        seen.append({k: v.clone() for k, v in model.state_dict().items()})
        return maximize(model, 0, "naive", samples=2, steps=3, seed=0, points=N)

    res = am_randomisation(m, generate, layers=["head.1", "head.0", "features.1"])
    assert len(seen) == 4 and len(res.steps) == 3
    groups = [("head.1.",), ("head.1.", "head.0."), ("head.1.", "head.0.", "features.1.")]
    for state, prefixes in zip(seen[1:], groups):
        for k, v in state.items():
            if "running" in k or "num_batches" in k:
                continue
            changed = not torch.equal(v, original[k])
            assert changed == k.startswith(prefixes), k
    assert res.steps[-1].modules == ("head.1", "head.0.linear", "head.0.bn", "features.1.conv", "features.1.bn")
    assert m.training
    assert all(torch.equal(original[k], v) for k, v in m.state_dict().items())
    assert set(res.curve()) == {"head.1", "head.0", "features.1"}
    assert (res.steps[-1].moved > 0).all()


def test_autoencoder_resume_equals_uninterrupted_and_point_count_checked(tmp_path):
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(8, 32, 3, generator=g)
    cfg = AEConfig(num_points=32, latent=8, epochs=2, batch_size=4)
    full, hist = train_autoencoder(cfg, pts, out_dir=tmp_path / "a")
    train_autoencoder(AEConfig(num_points=32, latent=8, epochs=1, batch_size=4), pts, out_dir=tmp_path / "b")
    resumed, hist_b = train_autoencoder(cfg, pts, out_dir=tmp_path / "b", resume=True)
    assert len(hist) == 2 and len(hist_b) == 2
    assert all(torch.equal(a, b) for a, b in zip(full.state_dict().values(), resumed.state_dict().values()))
    ae = load_autoencoder(tmp_path / "a", num_points=32)
    assert ae.decode(torch.zeros(1, 8)).shape == (1, 32, 3)
    with pytest.raises(CheckpointError, match="decodes 32 points"):
        load_autoencoder(tmp_path / "a", num_points=64)
    with pytest.raises(InvalidArgumentError, match="different settings"):
        train_autoencoder(AEConfig(num_points=32, latent=8, epochs=3, batch_size=4, lr=1e-3), pts,
                          out_dir=tmp_path / "b", resume=True)


def test_flow_samples_per_class_and_missing_class():
    m = tiny()
    pts, lab = data()
    clouds, classes = flow_samples_per_class(m, pts, lab, num_classes=3, steps=3, num_points=N)
    assert clouds.shape == (3, N, 3) and classes == [0, 1, 2]
    with pytest.raises(DataError, match="no real instance"):
        flow_samples_per_class(m, pts[lab != 2], lab[lab != 2], num_classes=3, classes=[2], steps=1, num_points=N)


def _continuity_full_matrix(x: torch.Tensor, k: int) -> torch.Tensor:
    """Reference: differentiate the full N x N distance matrix and its top-k (the earlier implementation)."""
    n = x.shape[1]
    d = torch.cdist(x, x) + torch.eye(n, dtype=x.dtype) * 1e9
    return (d.topk(k, dim=-1, largest=False).values.mean(-1) ** 2).mean(-1)


@pytest.mark.parametrize("k", [1, 3, 8])
def test_continuity_equals_the_full_distance_matrix_value_and_gradient(k):
    x = torch.randn(3, 60, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(k))
    x[1, 5] = x[1, 4]  # a duplicated point: distance 0 to a neighbour, finite gradient
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    va, vb = continuity(a, k), _continuity_full_matrix(b, k)
    torch.testing.assert_close(va, vb, rtol=0, atol=1e-12)
    ga, = torch.autograd.grad(va.sum(), a)
    gb, = torch.autograd.grad(vb.sum(), b)
    assert torch.isfinite(ga).all()
    torch.testing.assert_close(ga, gb, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["naive", "generative"])
def test_contrast_objective_closed_form(method):
    """At step 0 the objective is -f_t - contrast * log softmax_t (regularisers off), per sample."""
    m = tiny()
    pts, lab = data()
    extra = {"bounds": 0.0} if method == "naive" else {
        "autoencoder": PointAutoencoder(num_points=N, latent=8, decoder=(16, 32)).eval()}
    for c in (0.0, 2.5):
        res = maximize(m, 1, method, samples=2, steps=0, seed=3, points=N, data=pts, data_labels=lab,
                       contrast=c, **extra)
        with torch.no_grad():
            logits = m(res.clouds).double()
        want = -logits[:, 1] - c * logits.log_softmax(1)[:, 1]
        assert torch.allclose(res.trace["objective"][0].double(), want, atol=1e-5)
        assert torch.allclose(res.trace["prob"][0].double(), logits.softmax(1)[:, 1], atol=1e-6)


def test_contrast_defaults_per_method():
    """Naive AM's default objective is logit + 1 * cross-entropy (the same clouds as an explicit contrast=1, other
    clouds than contrast=0); FlowAM and generative AM default to the pure logit (contrast=0)."""
    m = tiny()
    pts, lab = data()
    kw = dict(samples=3, steps=15, seed=0, points=N, data=pts, data_labels=lab)
    base = maximize(m, 1, "naive", **kw)
    one = maximize(m, 1, "naive", contrast=1, **kw)
    zero = maximize(m, 1, "naive", contrast=0, **kw)
    assert torch.equal(base.clouds, one.clouds)
    assert not torch.allclose(base.clouds, zero.clouds)
    assert DEFAULTS["naive"]["contrast"] == 1.0
    assert DEFAULTS["flow"]["contrast"] == DEFAULTS["generative"]["contrast"] == 0.0
    assert all(d["keep"] == "best" for d in DEFAULTS.values())


def test_keep_best_returns_the_best_assigned_iterate():
    """keep="best": each sample's cloud is the iterate of its recorded step (re-running with that many steps
    gives the same cloud), and that step has the highest target logit among the steps assigned to the target."""
    m = tiny()
    pts, lab = data()
    kw = dict(samples=3, seed=1, points=N, data=pts, data_labels=lab, lr=0.05)
    res = maximize(m, 0, "naive", steps=12, **kw)  # keep="best" is the default
    assert res.step.shape == (3,)
    last = maximize(m, 0, "naive", steps=12, keep="last", **kw)
    assert torch.equal(last.step, torch.full((3,), 12))
    for i in range(3):
        st = int(res.step[i])
        again = maximize(m, 0, "naive", steps=st, keep="last", **kw)
        assert torch.allclose(res.clouds[i], again.clouds[i], atol=1e-6)
        with torch.no_grad():
            logits = m(torch.stack([maximize(m, 0, "naive", steps=j, keep="last", **kw).clouds[i]
                                    for j in range(13)]))
        won = logits.argmax(1) == 0
        score = torch.where(won, logits[:, 0], torch.full_like(logits[:, 0], -float("inf")))
        if not won.any():
            score = logits[:, 0]
        assert st == int(score.argmax())
    with pytest.raises(InvalidArgumentError, match="keep"):
        maximize(m, 0, "naive", steps=1, keep="first", **kw)
