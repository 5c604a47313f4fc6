"""The point autoencoder of generative AM (Tan, WACV 2023; methods.md §2a) and its resumable training.

Encoder: PointNet-style shared MLP 3 -> 64 -> 128 -> 128 -> 256 -> ``latent`` (1x1 conv + BatchNorm + ReLU, the
last without ReLU) and a max-pool over points -> ``(B, latent)`` (default 128). Decoder: MLP
``latent -> 256 -> 512 -> 1024 -> N*3`` (ReLU between, none at the end) -> ``(B, N, 3)``. Loss: Chamfer
distance (PyTorch3D convention: squared L2, mean each way, both directions summed). Adam, lr 5e-4, batch 32
as in the paper.

Training (:func:`train_autoencoder`) follows :func:`pointlens.training.train`'s conventions: every epoch
re-seeds from ``(seed, epoch)`` so a resumed run continues exactly as the uninterrupted one; ``checkpoint.pt``
and ``history.json`` are written atomically after every epoch; progress bar per epoch.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pointlens.errors import CheckpointError, InvalidArgumentError
from pointlens.metrics.shape import chamfer_distance
from pointlens.training.train import config_diff
from pointlens.utils.io import save_json, save_torch
from pointlens.utils.progress import progress
from pointlens.utils.validate import as_points, check_float, check_int

__all__ = ["AEConfig", "PointAutoencoder", "load_autoencoder", "train_autoencoder", "AE_CHECKPOINT"]

AE_CHECKPOINT = "autoencoder.pt"
_KIND = "pointlens-autoencoder"


class PointAutoencoder(nn.Module):
    """PointNet encoder -> latent -> MLP decoder.

    Args:
        num_points: ``N``, points of the decoded clouds.
        latent: latent size (default 128).
        decoder: hidden widths of the decoder (default ``(256, 512, 1024)``).

    Shapes:
        :meth:`encode` ``(B, M, 3) -> (B, latent)`` (any ``M``); :meth:`decode` ``(B, latent) -> (B, N, 3)``;
        ``forward`` = decode(encode(x)).
    """

    def __init__(self, num_points: int = 1024, latent: int = 128, decoder=(256, 512, 1024)):
        super().__init__()
        self.num_points = check_int("num_points", num_points, minimum=1)
        self.latent = check_int("latent", latent, minimum=1)
        self.config = {"num_points": self.num_points, "latent": self.latent, "decoder": [int(d) for d in decoder]}
        widths = (3, 64, 128, 128, 256)
        enc: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            enc += [nn.Conv1d(a, b, 1), nn.BatchNorm1d(b), nn.ReLU()]
        enc += [nn.Conv1d(widths[-1], self.latent, 1), nn.BatchNorm1d(self.latent)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = []
        c = self.latent
        for w in decoder:
            dec += [nn.Linear(c, int(w)), nn.ReLU()]
            c = int(w)
        dec.append(nn.Linear(c, self.num_points * 3))
        self.decoder = nn.Sequential(*dec)

    def encode(self, points: torch.Tensor) -> torch.Tensor:
        return self.encoder(points.transpose(1, 2)).amax(-1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).view(z.shape[0], self.num_points, 3)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(points))


@dataclass
class AEConfig:
    """Everything that determines an autoencoder training run (defaults: the paper's Adam, lr 5e-4, batch 32)."""

    num_points: int = 1024
    latent: int = 128
    epochs: int = 40
    batch_size: int = 32
    lr: float = 5e-4
    seed: int = 0
    data: str = ""

    def validate(self) -> "AEConfig":
        check_int("epochs", self.epochs, minimum=1)
        check_int("batch_size", self.batch_size, minimum=2)
        check_int("num_points", self.num_points, minimum=1)
        check_float("lr", self.lr, minimum=0.0, strict_min=True)
        return self


def _epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + epoch * 7919 + 17) % (2**62)


def ae_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Chamfer loss (squared L2, mean each way, directions summed, batch mean). Shapes ``(B, N, 3)`` -> scalar."""
    return chamfer_distance(pred, target, preset="pytorch3d", backend="torch")


def _save(path: Path, model: PointAutoencoder, cfg: AEConfig, epoch: int, optimizer, history, seconds) -> None:
    save_torch(path, {"kind": _KIND, "config": model.config, "state_dict": model.state_dict(),
                      "training": {"ae_config": asdict(cfg), "epoch": epoch, "optimizer": optimizer.state_dict(),
                                   "history": history, "train_seconds": seconds}})


def load_autoencoder(path, *, num_points: int | None = None, device="cpu") -> PointAutoencoder:
    """Load an autoencoder written by :func:`train_autoencoder` (eval mode).

    Args:
        path: ``autoencoder.pt`` or the run folder holding it.
        num_points: when given, the checkpoint must decode this many points.
        device: torch device.

    Raises:
        CheckpointError: missing file, another kind of file, or another point count.
    """
    p = Path(path)
    if p.is_dir():
        p = p / AE_CHECKPOINT
    if not p.is_file():
        raise CheckpointError(f"--autoencoder {path}: file not found; train one with `pointlens autoencoder train`")
    try:
        obj = torch.load(p, map_location=device, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is one clear error
        raise CheckpointError(f"--autoencoder {path}: not readable as a torch file ({type(e).__name__})") from None
    if not isinstance(obj, dict) or obj.get("kind") != _KIND:
        raise CheckpointError(f"--autoencoder {path}: not a pointlens autoencoder checkpoint "
                              "(train one with `pointlens autoencoder train`)")
    cfg = obj["config"]
    if num_points is not None and int(cfg["num_points"]) != int(num_points):
        raise CheckpointError(f"--autoencoder {path}: decodes {cfg['num_points']} points but this run uses "
                              f"{num_points} (--points); train an autoencoder with --points {num_points}")
    model = PointAutoencoder(cfg["num_points"], cfg["latent"], cfg["decoder"])
    model.load_state_dict(obj["state_dict"])
    return model.to(device).eval()


def train_autoencoder(cfg: AEConfig, points, *, test_points=None, out_dir=None, resume: bool = False,
                      device="cpu") -> tuple[PointAutoencoder, list]:
    """Train a :class:`PointAutoencoder` on real clouds with the Chamfer loss.

    Args:
        cfg: :class:`AEConfig` (``num_points`` must equal the clouds' ``N``).
        points: ``(M, N, 3)`` training clouds.
        test_points: optional ``(M', N, 3)`` clouds; their mean Chamfer loss is recorded after every epoch.
        out_dir: run folder for ``autoencoder.pt`` + ``history.json`` (written after every epoch).
        resume: continue from ``out_dir/autoencoder.pt`` (same settings; only ``epochs`` may grow).
        device: torch device.

    Returns:
        ``(model in eval mode, history)``; history has one dict per epoch (``loss``, ``test_loss``, ``seconds``).
    """
    cfg.validate()
    pts = as_points(points).float()
    if pts.shape[1] != cfg.num_points:
        raise InvalidArgumentError(f"points: clouds of {pts.shape[1]} points; num_points is {cfg.num_points}")
    out = Path(out_dir) if out_dir is not None else None
    ckpt = out / AE_CHECKPOINT if out is not None else None
    torch.manual_seed(cfg.seed)
    model = PointAutoencoder(cfg.num_points, cfg.latent).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    history: list = []
    start, seconds = 0, 0.0
    if resume:
        if ckpt is None or not ckpt.is_file():
            raise InvalidArgumentError(f"--resume: no checkpoint at {ckpt}; run without --resume to start")
        obj = torch.load(ckpt, map_location=device, weights_only=True)
        saved = dict(obj["training"]["ae_config"])
        mine = asdict(cfg)
        diff = config_diff(saved, mine)
        if diff:
            raise InvalidArgumentError(f"--resume: the run in {out} used different settings ({', '.join(diff)}); "
                                       "use the same arguments or a new --out")
        model.load_state_dict(obj["state_dict"])
        opt.load_state_dict(obj["training"]["optimizer"])
        history = list(obj["training"]["history"])
        start = int(obj["training"]["epoch"])
        seconds = float(obj["training"]["train_seconds"])
    n = len(pts)
    for epoch in range(start, cfg.epochs):
        seed_e = _epoch_seed(cfg.seed, epoch)
        torch.manual_seed(seed_e)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed_e))
        batches = [order[s:s + cfg.batch_size] for s in range(0, n, cfg.batch_size)]
        if len(batches) > 1 and len(batches[-1]) < 2:
            batches = batches[:-1]
        model.train()
        t0 = time.perf_counter()
        tot, seen = 0.0, 0
        for b in progress(batches, desc=f"autoencoder epoch {epoch + 1}/{cfg.epochs}"):
            x = pts[b].to(device)
            loss = ae_loss(model(x), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(b)
            seen += len(b)
        seconds += time.perf_counter() - t0
        rec = {"epoch": epoch + 1, "loss": tot / max(1, seen), "seconds": time.perf_counter() - t0}
        if test_points is not None:
            rec["test_loss"] = evaluate_autoencoder(model, test_points, device=device)
        history.append(rec)
        if ckpt is not None:
            _save(ckpt, model, cfg, epoch + 1, opt, history, seconds)
            save_json(out / "history.json", history)
    model.eval()
    return model, history


def evaluate_autoencoder(model: PointAutoencoder, points, *, batch_size: int = 64, device="cpu") -> float:
    """Mean Chamfer loss (the training convention) of ``model`` on ``(M, N, 3)`` clouds, eval mode."""
    pts = as_points(points).float()
    was = model.training
    model.eval()
    vals = []
    with torch.no_grad():
        for s in range(0, len(pts), batch_size):
            x = pts[s:s + batch_size].to(device)
            vals.append(float(ae_loss(model(x), x)) * len(x))
    model.train(was)
    return float(np.sum(vals) / max(1, len(pts)))
