"""The image classifier ``cnn``: shapes on any image size, its Grad-CAM layer, input checks, checkpoints, and
training/evaluation on DigitScenes through the same ``train``/``evaluate`` as the point models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pointlens.data import load_dataset
from pointlens.errors import InvalidArgumentError
from pointlens.models import create_model, load_checkpoint, save_checkpoint
from pointlens.models.hooks import capture
from pointlens.training import TrainConfig, evaluate, predict, train

TINY = {"channels": (4, 8, 8), "depth": 1}


def test_cnn_maps_images_of_any_size_to_logits_and_exposes_the_gradcam_layer():
    torch.manual_seed(0)
    model = create_model("cnn", 10).eval()
    assert model.gradcam_layer == "features.3" and type(model).gradcam_layer == "features.3"
    for h, w in ((64, 64), (37, 50), (8, 8)):
        x = torch.rand(2, 3, h, w)
        with capture(model, [model.gradcam_layer]) as cap:
            out = model(x)
        assert out.shape == (2, 10)
        assert cap[model.gradcam_layer].output.shape == (2, 128, h // 8, w // 8)
    # the logits are the head of the global average of the Grad-CAM layer's maps (avg pooling)
    x = torch.rand(3, 3, 32, 32)
    with capture(model, [model.gradcam_layer]) as cap:
        out = model(x)
    maps = cap[model.gradcam_layer].output
    torch.testing.assert_close(out, model.head(maps.mean(dim=(2, 3))))
    small = create_model("cnn", 3, **TINY)
    assert small.gradcam_layer == "features.2" and small.min_size == 4


def test_cnn_refuses_points_and_bad_images_with_a_clear_error():
    model = create_model("cnn", 4, **TINY)
    with pytest.raises(InvalidArgumentError, match=r"point cloud \(B, N, 3\).*classifies images, not points"):
        model(torch.rand(2, 100, 3))
    with pytest.raises(InvalidArgumentError, match=r"channels-last"):
        model(torch.rand(2, 16, 16, 3))
    with pytest.raises(InvalidArgumentError, match=r"at least 4 x 4 pixels"):
        model(torch.rand(2, 3, 2, 2))
    x = torch.rand(1, 3, 16, 16)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(InvalidArgumentError, match="NaN or infinite"):
        model(x)
    with pytest.raises(InvalidArgumentError, match="pooling"):
        create_model("cnn", 4, pooling="median")


def test_cnn_checkpoint_round_trip_gives_identical_logits(tmp_path):
    torch.manual_seed(1)
    model = create_model("cnn", 5, **TINY, pooling="avgmax")
    model.train()
    model(torch.rand(8, 3, 16, 16))  # move the BatchNorm statistics away from their initial values
    model.eval()
    path = save_checkpoint(tmp_path / "cnn.pt", model, class_names=list("abcde"), normalization="none")
    loaded = load_checkpoint(path)
    x = torch.rand(4, 3, 20, 24)
    assert torch.equal(loaded.model(x), model(x))
    assert loaded.config == model.config and loaded.class_names == list("abcde")
    assert loaded.meta["normalization"] == "none"


@pytest.fixture(scope="module")
def digits():
    spec = "digitscenes:n=120,size=32,max_digits=2,seed=5"
    return load_dataset(spec, split="train"), load_dataset(spec, split="test")


def test_training_on_digitscenes_lowers_the_loss_and_evaluates_with_map(digits, tmp_path):
    train_set, test_set = digits
    cfg = TrainConfig(model="cnn", model_kwargs=TINY, epochs=4, batch_size=16, lr=3e-3, seed=0,
                      augment={"jitter": True})  # point augmentation options are ignored for images
    result = train(cfg, train_set, test_set, out_dir=tmp_path)
    losses = [r["loss"] for r in result.history]
    assert losses[-1] < losses[0]
    assert {"map", "mean_f1"} <= set(result.history[-1]["test"])
    ev = evaluate(result.model, test_set)
    assert ev.n == len(test_set) and 0.0 <= ev.map <= 1.0
    logits = predict(result.model, test_set.images)
    np.testing.assert_allclose(ev.logits, logits.numpy())
    loaded = load_checkpoint(tmp_path / "checkpoint.pt")
    assert loaded.meta["extra"]["input"] == {"modality": "image", "image_size": [32, 32]}
    assert torch.equal(loaded.model(torch.from_numpy(test_set.images)), logits)
    again = train(cfg, train_set, test_set)  # same seed, same weights
    for k, v in result.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k]), k


def test_training_refuses_a_point_model_on_images(digits):
    with pytest.raises(InvalidArgumentError, match="pointnet takes points but the data are images; use an image"):
        train(TrainConfig(model="pointnet", epochs=1), digits[0])


def test_cli_trains_and_evaluates_the_cnn_with_its_own_defaults(tmp_path, capsys):
    import json

    from pointlens.cli.main import main

    data = "digitscenes:n=40,size=16,max_digits=1,seed=1"
    out = tmp_path / "run"
    assert main(["train", "--model", "cnn", "--data", data, "--epochs", "1",
                 "--out", str(out), "--json", "--quiet", "--no-report"]) == 0
    assert {"map", "mean_f1", "per_class_f1"} <= set(json.loads(capsys.readouterr().out)["test"])
    args = json.loads((out / "config.json").read_text())["arguments"]
    assert args["epochs"] == 1 and args["lr"] == 2e-3  # the cnn's learning rate when --lr is not given
    assert main(["evaluate", "--checkpoint", str(out / "checkpoint.pt"), "--data", data, "--json", "--quiet",
                 "--no-report"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["n"] == 8 and 0.0 <= metrics["map"] <= 1.0 and set(metrics["per_class_f1"]) <= set("0123456789")
