"""Networks of the reconstruction study: a small CNN image encoder, an MLP point-set decoder, and the two
recognition heads (cluster classifier, embedding regressor), with one seeded training loop.

All networks read the two-channel images of :func:`pointlens.recon.render.network_input` ``(B, 2, H, W)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from pointlens.errors import bad_argument
from pointlens.utils.progress import progress
from pointlens.utils.validate import check_float, check_int


class ImageEncoder(nn.Module):
    """Small CNN: stride-2 3×3 conv blocks (BatchNorm, ReLU) down to 4×4, then a linear layer.

    Args:
        in_channels: image channels (2: silhouette and nearness).
        image_size: ``H = W`` of the input (any size >= 8; blocks halve it until it is <= 4, then it is
            average pooled to 4×4).
        width: channels of the first block; doubled by each following block (at most 8×).
        feature_dim: size of the output feature.

    Shapes:
        input ``(B, in_channels, H, W)`` -> output ``(B, feature_dim)``.
    """

    def __init__(self, in_channels: int = 2, image_size: int = 64, width: int = 16, feature_dim: int = 256):
        super().__init__()
        in_channels = check_int("in_channels", in_channels, minimum=1)
        image_size = check_int("image_size", image_size, minimum=8)
        width = check_int("width", width, minimum=1)
        feature_dim = check_int("feature_dim", feature_dim, minimum=1)
        layers: list[nn.Module] = []
        c_in, c_out, size = in_channels, width, image_size
        while size > 4:
            layers += [
                nn.Conv2d(c_in, c_out, 3, stride=2, padding=1),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
            c_in, size = c_out, (size + 1) // 2
            c_out = min(c_out * 2, width * 8)
        layers.append(nn.AdaptiveAvgPool2d(4))
        self.features = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(c_in * 16, feature_dim), nn.ReLU(inplace=True))
        self.feature_dim = feature_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(images))


class PointDecoder(nn.Module):
    """MLP point-set decoder: feature ``(B, F)`` -> points ``(B, P, 3)``.

    Args:
        feature_dim: input feature size ``F``.
        num_points: points ``P`` in the output set.
        hidden: width of the two hidden layers.
    """

    def __init__(self, feature_dim: int = 256, num_points: int = 1024, hidden: int = 512):
        super().__init__()
        self.num_points = check_int("num_points", num_points, minimum=1)
        hidden = check_int("hidden", hidden, minimum=1)
        self.mlp = nn.Sequential(
            nn.Linear(feature_dim, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, self.num_points * 3),
        )

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        return self.mlp(feature).reshape(feature.shape[0], self.num_points, 3)


class EncoderDecoder(nn.Module):
    """Baseline (i): image -> CNN encoder -> MLP point decoder.

    Shapes:
        ``(B, C, H, W)`` -> ``(B, P, 3)``.
    """

    def __init__(self, encoder: ImageEncoder, decoder: PointDecoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(images))


class ImageHead(nn.Module):
    """CNN encoder + linear head: the cluster classifier (logits ``(B, K)``, baseline ii) and the embedding
    regressor (``(B, D)``, baseline iii).

    Shapes:
        ``(B, C, H, W)`` -> ``(B, out_dim)``.
    """

    def __init__(self, encoder: ImageEncoder, out_dim: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.feature_dim, check_int("out_dim", out_dim, minimum=1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(images))


def fit(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    desc: str | None = None,
) -> list[float]:
    """Train ``model`` with Adam on ``(inputs, targets)`` pairs; deterministic for a seed.

    Args:
        model: maps a batch of inputs ``(b, ...)`` to predictions compared with ``targets[b]`` by ``loss_fn``.
        inputs: ``(M, ...)`` training inputs.
        targets: ``(M, ...)`` training targets.
        loss_fn: ``loss_fn(prediction, target) -> scalar`` (mean over the batch).
        epochs: passes over the data.
        batch_size: mini-batch size.
        lr: Adam learning rate (a cosine schedule decays it to 0 over the run).
        seed: seeds the shuffling.
        desc: progress bar label.

    Returns:
        the mean training loss of every epoch (``epochs`` floats). The model is left in eval mode.
    """
    epochs = check_int("epochs", epochs, minimum=0)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    lr = check_float("lr", lr, minimum=0.0, strict_min=True)
    if len(inputs) != len(targets) or len(inputs) == 0:
        raise bad_argument(
            "inputs/targets",
            f"{len(inputs)} inputs and {len(targets)} targets",
            "the same, non-zero number of rows",
        )
    g = torch.Generator().manual_seed(int(seed))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = max(1, epochs * ((len(inputs) + batch_size - 1) // batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    history: list[float] = []
    model.train()
    for _ in progress(range(epochs), desc=desc):
        order = torch.randperm(len(inputs), generator=g)
        total, count = 0.0, 0
        for start in range(0, len(inputs), batch_size):
            idx = order[start : start + batch_size]
            if len(idx) < 2 and len(inputs) > 1:
                continue  # BatchNorm needs two samples
            loss = loss_fn(model(inputs[idx]), targets[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        history.append(total / max(count, 1))
    model.eval()
    return history


@torch.no_grad()
def predict(model: nn.Module, inputs: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """Run ``model`` in eval mode over ``inputs (M, ...)`` in batches; returns the concatenated outputs."""
    was_training = model.training
    model.eval()
    out = torch.cat([model(inputs[i : i + batch_size]) for i in range(0, len(inputs), batch_size)])
    model.train(was_training)
    return out
