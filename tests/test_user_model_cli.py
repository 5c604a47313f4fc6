"""Your own model on the command line (issue 18): ``--model PATH.py:FACTORY`` for every command.

The model is ``tests/yanx27_pointnet.py``: yanx27's PointNet as people have it (input and feature T-Nets, a
functional ``torch.max`` pool, channels-first input, ``(log_softmax, trans_feat)`` output), its state dict saved
the way yanx27's train script saves it (``model_state_dict`` next to the epoch and optimizer state) from a
DataParallel model (``module.`` prefixes). ``evaluate``, ``explain`` with every method (no layer name) and ``drop``
must give the same numbers as the library API on the same model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pointlens.attribution import attribution_class, create_attribution, list_attributions
from pointlens.cli.main import main
from pointlens.errors import CheckpointError, InvalidArgumentError
from pointlens.models import load_user_model
from pointlens.models.hooks import find_pool_layer, get_layer

HELPER = Path(__file__).with_name("yanx27_pointnet.py")
REF = f"{HELPER}:factory"
ADAPT = dict(input_layout="bcn", output_index=0, output="log_softmax")
ADAPT_CLI = ["--input-layout", "bcn", "--output-index", "0", "--output", "log_softmax"]
M, N, K = 6, 40, 4
SMALL = {"ig": {"steps": 4}, "smoothgrad": {"n_samples": 3}, "rise": {"n_masks": 24},
         "lime": {"n_segments": 5, "n_samples": 24}, "occlusion-knn": {"k": 4}}


def trained_like():
    """The "trained" weights: the factory with another seed (so loading the file visibly matters)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("yanx27_for_test", HELPER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.factory(seed=1).eval(), mod


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A yanx27-style checkpoint (DataParallel keys under model_state_dict) and an npz of M clouds whose labels
    are the model's own predictions (clean accuracy exactly 1, so dropping has something to lower)."""
    tmp = tmp_path_factory.mktemp("usermodel")
    net, _ = trained_like()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(5)
    train_x, train_y = torch.rand(8, 3, N, generator=g) * 2 - 1, torch.arange(8) % K
    net.train()
    for _ in range(15):  # a few steps so that the classes it predicts differ; and a real optimizer state
        opt.zero_grad()
        torch.nn.functional.nll_loss(net(train_x)[0], train_y).backward()
        opt.step()
    net.eval()
    state = {f"module.{k}": v for k, v in net.state_dict().items()}
    ckpt = tmp / "best_model.pth"
    torch.save({"epoch": 7, "instance_acc": 0.9, "class_acc": 0.8, "model_state_dict": state,
                "optimizer_state_dict": opt.state_dict()}, ckpt)
    from pointlens.data import load_dataset

    g = torch.Generator().manual_seed(3)
    raw = (torch.rand(M, N, 3, generator=g) * 2 - 1) * torch.linspace(0.5, 2, M).view(-1, 1, 1)
    data, names = tmp / "clouds.npz", np.array([f"c{i}" for i in range(K)])
    np.savez(data, points=raw.numpy(), labels=np.zeros(M, dtype=np.int64), class_names=names)
    pts = torch.from_numpy(load_dataset(f"npz:{data}", split=None, num_points=N).points)  # as the CLI sees them
    with torch.no_grad():
        labels = net(pts.transpose(1, 2))[0].argmax(1)
    np.savez(data, points=raw.numpy(), labels=labels.numpy(), class_names=names)
    return {"ckpt": ckpt, "data": data, "points": pts, "labels": labels, "net": net, "tmp": tmp}


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err.strip()


def common(files):
    return ["--model", REF, "--checkpoint", files["ckpt"], *ADAPT_CLI, "--data", f"npz:{files['data']}",
            "--split", "all", "--points", N, "--quiet"]


def library_model(files):
    return load_user_model(REF, files["ckpt"], **ADAPT)


# ------------------------------------------------------------------------------------------ the library
def test_library_model_is_the_users_model_with_its_own_names(files):
    model = library_model(files)
    net = files["net"]
    x = files["points"]
    with torch.no_grad():
        ref = net(x.transpose(1, 2))[0]
        torch.testing.assert_close(model(x), ref, rtol=0, atol=0)  # log_softmax: unchanged
        fresh = load_user_model(REF, None, **ADAPT)(x)  # the factory's own weights (seed 0) differ
    assert (fresh - ref).abs().max() > 1e-3
    names = [n for n, _ in model.named_modules()]
    assert names[0] == "" and "feat.conv3" in names and not any(n.startswith(("module", "wrapped")) for n in names)
    assert set(model.state_dict()) == set(net.state_dict())
    assert model.spec.stripped_prefix == "module." and model.spec.state_key == "model_state_dict"
    assert model.spec.checkpoint_sha256 and len(model.spec.checkpoint_sha256) == 64
    with pytest.raises(InvalidArgumentError, match="feat.bn3"):  # the error lists the user's names
        get_layer(model, "module.feat.bn3")
    # the layer before yanx27's functional torch.max: feat.bn3, output (B, 64, N)
    pool = find_pool_layer(model)
    assert (pool.name, pool.use, pool.layout) == ("feat.bn3", "output", "BCN")
    # train()/eval() reach the wrapped model's own flag and its layers
    model.train()
    assert model.wrapped.training and model.feat.bn3.training
    model.eval()
    assert not model.wrapped.training


def test_critical_points_of_a_functional_pool_are_the_argmax_counts(files):
    """Automatic layer: counts equal a hand computation of arg-max over points of feat.bn3's output."""
    model = library_model(files)
    x = files["points"][:3]
    got = create_attribution("critical", model, ties="first").attribute(x)
    feats = {}
    h = model.feat.bn3.register_forward_hook(lambda m, i, o: feats.setdefault("f", o.detach()))
    with torch.no_grad():
        model(x)
    h.remove()
    arg = feats["f"].argmax(dim=2)  # (B, 64)
    ref = torch.stack([torch.bincount(a, minlength=N) for a in arg]).float()
    torch.testing.assert_close(got, ref)
    assert float(got.sum()) == 3 * 64


def test_gradcam_on_the_found_layer_matches_hand_computation(files):
    model = library_model(files)
    x = files["points"][:2]
    t = torch.tensor([1, 3])
    got = create_attribution("gradcam", model, relu=False).attribute(x, target=t)
    store = {}

    def hook(m, i, o):
        o.retain_grad()
        store["a"] = o

    h = model.feat.bn3.register_forward_hook(hook)
    out = model(x)
    h.remove()
    out.gather(1, t.view(-1, 1)).sum().backward()
    a, g = store["a"].detach(), store["a"].grad
    torch.testing.assert_close(got, (g.mean(2, keepdim=True) * a).sum(1), rtol=1e-5, atol=1e-7)


def test_shared_module_reused_after_the_pool_is_not_chosen():
    from pointlens.models.adapters import ModelAdapter

    spec_mod = trained_like()[1]
    pool = find_pool_layer(ModelAdapter(spec_mod.ReusedReLU().eval()))
    assert (pool.name, pool.use, pool.layout) == ("lin2", "output", "BNC")


def test_output_kinds_give_the_models_probabilities(files):
    """probs are turned into log-probabilities: softmax of the adapter's output = the model's probabilities."""
    from pointlens.models.adapters import ModelAdapter

    net, _ = trained_like()

    class Probs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x)[0].exp()

    x = files["points"][:3]
    adapted = ModelAdapter(Probs(), input_layout="bcn", output="probs")
    with torch.no_grad():
        p = net(x.transpose(1, 2))[0].exp()
        torch.testing.assert_close(adapted(x).softmax(1), p, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(ModelAdapter(net, **ADAPT)(x).softmax(1), p, rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------------------- the CLI = the library
def test_evaluate_explain_every_method_and_drop_equal_the_library(files, capsys):
    tmp = files["tmp"]
    model = library_model(files)
    x, y = files["points"], files["labels"]

    code, out, err = run(capsys, "evaluate", *common(files), "--json", "--out", tmp / "ev")
    assert code == 0, err
    ev = json.loads(out)
    with torch.no_grad():
        acc = float((model(x).argmax(1) == y).float().mean())
    assert ev["accuracy"] == acc == 1.0
    config = json.loads((tmp / "ev" / "config.json").read_text())
    record = json.dumps(config)
    assert REF in record and model.spec.checkpoint_sha256 in record and "feat.bn3" in record

    for name in list_attributions():
        opts = dict(SMALL.get(name, {}))
        cli_opts = [a for k, v in opts.items() for a in ("--option", f"{k}={v}")]
        code, out, err = run(capsys, "explain", *common(files), "--method", name, *cli_opts, "--renders", 0,
                             "--out", tmp / f"ex_{name}")
        assert code == 0, (name, err)
        cli = np.load(tmp / f"ex_{name}" / "scores.npz")["scores"]
        if name == "pointshift":
            opts["alpha"] = 1.0
        if "seed" in __import__("inspect").signature(attribution_class(name).__init__).parameters:
            opts["seed"] = 0
        lib = create_attribution(name, model, **opts).attribute(x).detach().numpy()
        assert cli.shape == (M, N) and np.isfinite(cli).all(), name
        np.testing.assert_allclose(cli, lib, rtol=1e-5, atol=1e-6, err_msg=name)
        assert np.abs(lib).sum() > 0, name

    from pointlens.perturb.dropping import drop_curve

    methods = ["pointshift", "critical", "gradcam", "random"]
    code, out, err = run(capsys, "drop", *common(files), "--methods", ",".join(methods), "--budgets", "0,8,16",
                         "--per-step", 4, "--json", "--out", tmp / "drop")
    assert code == 0, err
    curves = json.loads(out)
    for name in methods:
        scorer = "random" if name == "random" else create_attribution(name, model, **(
            {"alpha": 1.0} if name == "pointshift" else {}))
        for mode in ("high", "low"):
            res = drop_curve(model, x, y, scorer, budgets=[0, 8, 16], per_step=4, mode=mode, batch_size=64,
                             seed=0)
            assert curves[f"{name}-{mode}"] == {str(b): float(res.accuracy[b]) for b in (0, 8, 16)}, name
    assert min(v for c in curves.values() for v in c.values()) < 1.0, curves  # the experiment moved something


def test_the_run_folder_rebuilds_the_same_model(files, capsys, tmp_path):
    import shutil

    from pointlens.models import rebuild_user_model

    ck = tmp_path / "copy.pth"
    shutil.copy(files["ckpt"], ck)
    argv = [a if a != files["ckpt"] else ck for a in common(files) if a != "--quiet"]
    code, out, err = run(capsys, "explain", *argv, "--method", "critical", "--renders", 0, "--out", tmp_path / "r")
    assert code == 0, err
    assert "feat.bn3 (its output, BCN; detected)" in err  # the automatic layer is stated
    record = json.loads((tmp_path / "r" / "config.json").read_text())["arguments"]["model_record"]
    assert record["source_path"] == str(HELPER.resolve()) and record["stripped_prefix"] == "module."
    again = rebuild_user_model(record)
    scores = np.load(tmp_path / "r" / "scores.npz")["scores"]
    np.testing.assert_array_equal(create_attribution("critical", again).attribute(files["points"]).numpy(), scores)
    with torch.no_grad():
        torch.testing.assert_close(again(files["points"]), library_model(files)(files["points"]), rtol=0, atol=0)
    state = torch.load(ck, weights_only=True)
    state["epoch"] = 8  # the same weights, another file: a rerun says so
    torch.save(state, ck)
    with pytest.raises(CheckpointError, match="changed since it was recorded"):
        rebuild_user_model(record)
    rebuild_user_model(record, verify=False)


# --------------------------------------------------------------------------------------------- errors
def expect_error(capsys, argv, *words):
    code, out, err = run(capsys, *argv)
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)
    return err


def test_wrong_references_are_one_line_and_exit_2(files, capsys, tmp_path):
    data = ["--data", f"npz:{files['data']}", "--split", "all", "--points", N, "--quiet"]
    ck = ["--checkpoint", files["ckpt"]]
    ev = ["evaluate", *data, *ck]
    expect_error(capsys, [*ev, "--model", "tests/no_such_file.py:factory", *ADAPT_CLI], "no_such_file.py", "not found")
    expect_error(capsys, [*ev, "--model", f"{HELPER}:fatcory", *ADAPT_CLI], "'fatcory'", "factory")  # lists names
    expect_error(capsys, [*ev, "--model", "no_such_pkg.models:get", *ADAPT_CLI], "cannot import", "no_such_pkg")
    expect_error(capsys, [*ev, "--model", "just_a_name", *ADAPT_CLI], "--model", "PATH.py:FACTORY")
    expect_error(capsys, [*ev, "--model", f"{HELPER}:failing_factory", *ADAPT_CLI], "factory raised",
                 "no GPU found")
    expect_error(capsys, [*ev, "--model", f"{HELPER}:not_a_module"], "returned a str")
    expect_error(capsys, [*ev, "--model", REF, "--model-kwargs", "{k: 5}", *ADAPT_CLI], "--model-kwargs", "JSON")
    # weights that do not fit: another class count (shape mismatch), and a plain state dict of another model
    expect_error(capsys, [*ev, "--model", REF, "--model-kwargs", '{"k": 5}', *ADAPT_CLI], "do not fit",
                 "fc3.weight (4, 16) vs (5, 16)")
    torch.save({"state_dict": {"conv.weight": torch.zeros(2)}}, tmp_path / "other.pt")
    expect_error(capsys, ["evaluate", *data, "--checkpoint", tmp_path / "other.pt", "--model", REF, *ADAPT_CLI],
                 "do not fit", "missing keys", "unexpected keys: conv.weight")
    torch.save({"epoch": 3, "acc": 0.5}, tmp_path / "nostate.pt")
    expect_error(capsys, ["evaluate", *data, "--checkpoint", tmp_path / "nostate.pt", "--model", REF],
                 "no state dict", "epoch")
    expect_error(capsys, ["evaluate", *data, "--checkpoint", tmp_path / "missing.pt", "--model", REF], "not found")
    # outputs that are not (B, C)
    expect_error(capsys, ["evaluate", *data, "--model", f"{HELPER}:PerPointOutput"], "(2, 64, 4)", "(B, C)")
    expect_error(capsys, [*ev, "--model", REF, "--input-layout", "bcn"], "--output-index", "tuple[(2, 4), (2, 16, 16)]")
    expect_error(capsys, [*ev, "--model", REF, "--input-layout", "bcn", "--output-index", "1"], "(2, 16, 16)")
    expect_error(capsys, [*ev, "--model", REF, "--input-layout", "bnc", "--output-index", "0"], "probe batch")
    # a declared output kind that the numbers contradict
    expect_error(capsys, [*ev, "--model", REF, "--input-layout", "bcn", "--output-index", "0", "--output", "probs"],
                 "not probabilities")
    # adapter options without --model, and neither --model nor --checkpoint
    expect_error(capsys, ["evaluate", *data, "--checkpoint", files["ckpt"], "--output-index", "0"], "--output-index",
                 "--model")
    expect_error(capsys, ["evaluate", *data], "--checkpoint")
    # a layer name the model does not have: one line listing the user's own names
    expect_error(capsys, ["explain", *data, *ck, "--model", REF, *ADAPT_CLI, "--method", "critical", "--option",
                          "pool_layer=pool", "--out", tmp_path / "x"], "pool", "feat.bn3")


class Payload:
    """Pickles to a call of ``open(marker, "w")``: unpickling it creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_code_in_the_checkpoint_never_runs(files, capsys, tmp_path):
    marker, imported = tmp_path / "pwned", tmp_path / "imported"
    state = torch.load(files["ckpt"], weights_only=True)["model_state_dict"]
    evil = tmp_path / "evil.pth"
    torch.save({"model_state_dict": state, "extra": Payload(marker)}, evil)
    torch.load(evil, weights_only=False)  # the control: an unsafe load DOES run it
    assert marker.exists()
    marker.unlink()
    factory_file = tmp_path / "user_factory.py"  # records whether user code was even imported
    factory_file.write_text(
        f"from pathlib import Path\nPath({str(imported)!r}).touch()\nimport importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('y', {str(HELPER)!r})\n"
        "m = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(m)\nfactory = m.factory\n")
    err = expect_error(capsys, ["evaluate", "--data", f"npz:{files['data']}", "--split", "all", "--points", N,
                                "--checkpoint", evil, "--model", f"{factory_file}:factory", *ADAPT_CLI],
                       "pickled", "io.open")
    assert not marker.exists() and not imported.exists(), err  # nothing ran: not the payload, not the factory
    with pytest.raises(CheckpointError, match="pickled"):
        load_user_model(f"{factory_file}:factory", evil, **ADAPT)
    assert not marker.exists() and not imported.exists()
    # the same weights without the payload load, and then the factory file is the code that runs
    torch.save({"model_state_dict": state}, tmp_path / "clean.pth")
    load_user_model(f"{factory_file}:factory", tmp_path / "clean.pth", **ADAPT)
    assert imported.exists() and not marker.exists()


def test_dgcnn_style_model_every_method(files):
    """WangYue's DGCNN layout (functional k-NN graph, max + avg pool): the layer found is conv5; every method
    runs without a layer name and the model declares min_points = k, which dropping respects."""
    model = load_user_model(f"{HELPER}:dgcnn", None, kwargs={"k": 6}, input_layout="bcn")
    pool = find_pool_layer(model)
    assert (pool.name, pool.use, pool.layout) == ("conv5", "output", "BCN")
    x = files["points"][:2, :24]
    for name in list_attributions():
        s = create_attribution(name, model, **SMALL.get(name, {})).attribute(x)
        assert s.shape == (2, 24) and torch.isfinite(s).all(), name
    counts = create_attribution("critical", model).attribute(x)
    assert float(counts.sum()) == 2 * 32  # one unit per channel of conv5 per cloud


def test_a_wrappers_module_prefix_is_optional_in_layer_names():
    from pointlens.models import ChannelsFirst

    net = trained_like()[1].dgcnn(k=4).eval()
    wrapped = ChannelsFirst(net)
    assert get_layer(wrapped, "conv5") is net.conv5 is get_layer(wrapped, "module.conv5")
    with pytest.raises(InvalidArgumentError) as err:
        get_layer(wrapped, "pool")
    listed = str(err.value).split("expected")[1]
    assert "conv5" in listed and "module." not in listed
    x = torch.rand(2, 30, 3)
    a = create_attribution("gradcam", wrapped, layer="conv5", use="output").attribute(x)
    b = create_attribution("gradcam", wrapped, layer="module.conv5", use="output").attribute(x)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert a.abs().sum() > 0


def test_package_module_reference_and_nested_prefixes(tmp_path):
    """``package.module:FACTORY``; keys under ``module.model.`` (DDP around a wrapper's self.model) load; a
    pointlens model's own pool_layer is seen through the adapter (occlusion keeps its fast path, same numbers)."""
    from pointlens.models import create_model

    torch.manual_seed(0)
    net = create_model("pointnet", 3, channels=(8, 16), head=(8,)).eval()
    torch.save({"state_dict": {f"module.model.{k}": v for k, v in net.state_dict().items()}}, tmp_path / "w.pt")
    model = load_user_model("pointlens.models.pointnet:PointNet", tmp_path / "w.pt",
                            kwargs='{"num_classes": 3, "channels": [8, 16], "head": [8]}')
    assert model.spec.stripped_prefix == "module.model." and model.spec.state_key == "state_dict"
    x = torch.rand(2, 20, 3)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x), rtol=0, atol=0)
    assert model.pool_layer == net.pool_layer and create_attribution("critical", model).pool.detected is False
    fast = create_attribution("occlusion", model)
    assert fast.pool_layer == "pool"
    torch.testing.assert_close(fast.attribute(x), create_attribution("occlusion", net).attribute(x))
