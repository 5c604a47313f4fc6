"""Supervised training of classifiers (point clouds, or images with the ``cnn`` model) with resumable,
reproducible runs.

Reproducibility: every epoch re-seeds torch and the data generator from ``(seed, epoch)``, so a run resumed from
the checkpoint of epoch ``e`` continues exactly as the uninterrupted run would have, and the same seed gives the
same weights. Under ``torchrun --nproc-per-node K`` the model is wrapped in DistributedDataParallel: every rank
draws the same global batch order and takes its share of each batch; rank 0 writes the run folder.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pointlens.errors import CheckpointError, InvalidArgumentError
from pointlens.training import distributed as D
from pointlens.training.evaluate import evaluate
from pointlens.utils.io import save_json
from pointlens.utils.progress import progress
from pointlens.utils.validate import check_float, check_int

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class TrainConfig:
    """Everything that determines a training run.

    Attributes:
        model: registry name (``pointnet``, ``pointnet2``, ``dgcnn``).
        model_kwargs: extra constructor options of the model.
        epochs: passes over the training set.
        batch_size: global clouds per optimisation step.
        lr: peak learning rate of Adam; decays by a cosine schedule to ``lr * min_lr_ratio``.
        weight_decay: Adam weight decay.
        min_lr_ratio: final learning rate as a fraction of ``lr``.
        label_smoothing: cross-entropy label smoothing.
        seed: the run's seed.
        augment: keyword options of :func:`pointlens.data.transforms.augment` (``{}`` disables augmentation);
            point clouds only: image datasets are trained without augmentation (a flip or rotation changes what
            a digit is).
        reg_weight: weight of ``model.regularization_loss()`` (PointNet's feature-transform regulariser).
        eval_every: evaluate on the test set every this many epochs (and after the last).
    """

    model: str = "pointnet"
    model_kwargs: dict = field(default_factory=dict)
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    min_lr_ratio: float = 0.01
    label_smoothing: float = 0.0
    seed: int = 0
    augment: dict = field(default_factory=lambda: {"rotate": False, "jitter": True, "scale": True, "shift": True})
    reg_weight: float = 0.001
    eval_every: int = 1

    def validate(self) -> "TrainConfig":
        check_int("epochs", self.epochs, minimum=1)
        check_int("batch_size", self.batch_size, minimum=2)
        check_float("lr", self.lr, minimum=0.0, strict_min=True)
        check_float("weight_decay", self.weight_decay, minimum=0.0)
        check_int("eval_every", self.eval_every, minimum=1)
        return self


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    Attributes:
        model: the trained model (unwrapped, eval mode).
        history: one dict per finished epoch (loss, train accuracy, test accuracy when evaluated, seconds).
        final: metrics of the last evaluation on the test set (``{}`` without a test set).
        train_seconds: wall time spent in training steps in this process (evaluation excluded).
    """

    model: nn.Module
    history: list
    final: dict
    train_seconds: float


def _lr_at(cfg: TrainConfig, epoch: int) -> float:
    t = epoch / max(1, cfg.epochs)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def _epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + epoch * 7919 + 17) % (2**62)


def _state_for_checkpoint(cfg, epoch, optimizer, history, train_seconds):
    return {"train_config": asdict(cfg), "epoch": epoch, "optimizer": optimizer.state_dict(),
            "history": history, "train_seconds": train_seconds}


def train(cfg: TrainConfig, train_set, test_set=None, *, model: nn.Module | None = None, out_dir=None,
          resume: bool = False, device="cpu", on_epoch=None) -> TrainResult:
    """Train a classifier on ``train_set`` and evaluate it on ``test_set`` after epochs.

    Args:
        cfg: the run's :class:`TrainConfig`.
        train_set: :class:`~pointlens.data.dataset.PointCloudDataset` or
            :class:`~pointlens.data.images.ImageDataset` (its ``inputs`` are fed to the model) to train on:
            single-label (cross-entropy) or multi-label with ``(M, C)`` multi-hot labels (ShapeParts scenes,
            DigitScenes; binary cross-entropy with logits per class, ``label_smoothing`` ignored; "train
            accuracy" is then the per-label accuracy at logit 0).
        test_set: optional dataset evaluated every ``cfg.eval_every`` epochs.
        model: a model to train; default ``create_model(cfg.model, train_set.num_classes, **cfg.model_kwargs)``
            built after seeding with ``cfg.seed``.
        out_dir: run folder; ``checkpoint.pt`` (pointlens checkpoint with the training state) is written
            atomically after every epoch, and ``history.json``.
        resume: continue from ``out_dir/checkpoint.pt`` (its config must match ``cfg``; only ``epochs`` may
            differ: raising it extends the run, with the cosine schedule recomputed for the new total, so an
            extended run is not identical to a fresh run of that length).
        device: torch device.
        on_epoch: optional callback ``f(epoch_record: dict)``.

    Returns:
        :class:`TrainResult`.
    """
    from pointlens.data.transforms import augment
    from pointlens.models import create_model, load_checkpoint, save_checkpoint

    cfg.validate()
    multilabel = bool(train_set.multilabel)
    rank, world_size = D.init_from_env(device)
    out = Path(out_dir) if out_dir is not None else None
    ckpt_path = out / CHECKPOINT_NAME if out is not None else None

    if model is None:
        torch.manual_seed(cfg.seed)
        model = create_model(cfg.model, train_set.num_classes, **cfg.model_kwargs)
    data_kind = getattr(train_set, "modality", "points")
    if getattr(model, "modality", "points") != data_kind:
        want = "an image model (cnn)" if data_kind == "image" else "a point-cloud model (pointnet, pointnet2, dgcnn)"
        raise InvalidArgumentError(f"model: {getattr(model, 'config', {}).get('name', type(model).__name__)} takes "
                                   f"{getattr(model, 'modality', 'points')} but the data are {data_kind}s; "
                                   f"use {want} (CLI: --model)")
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history: list = []
    start_epoch = 0
    train_seconds = 0.0
    if resume:
        if ckpt_path is None or not ckpt_path.is_file():
            raise InvalidArgumentError(f"--resume: no checkpoint at {ckpt_path}; run without --resume to start")
        loaded = load_checkpoint(ckpt_path, device=device)
        state = loaded.meta.get("extra", {}).get("training")
        if not state:
            raise CheckpointError(f"{ckpt_path}: holds no training state to resume from")
        saved = state["train_config"]
        mine = asdict(cfg)
        diff = config_diff(saved, mine)
        if diff:
            raise InvalidArgumentError(f"--resume: the run in {out} used different settings ({', '.join(diff)}); "
                                       "use the same arguments or a new --out")
        if getattr(model, "config", loaded.config) != loaded.config:
            raise InvalidArgumentError(
                f"--resume: the model in {ckpt_path} was built as {loaded.config} but this run builds "
                f"{model.config}; use the same model options or a new --out")
        model.load_state_dict(loaded.model.state_dict())
        optimizer.load_state_dict(state["optimizer"])
        history = list(state["history"])
        start_epoch = int(state["epoch"])
        train_seconds = float(state.get("train_seconds", 0.0))

    net = model
    if world_size > 1:
        net = nn.parallel.DistributedDataParallel(model)

    points = getattr(train_set, "modality", "points") == "points"
    pts_all = torch.from_numpy(train_set.inputs)
    lab_all = torch.from_numpy(train_set.labels.astype(np.float32 if multilabel else np.int64))
    n = len(pts_all)
    final: dict = history[-1].get("test", {}) if history else {}

    for epoch in range(start_epoch, cfg.epochs):
        seed_e = _epoch_seed(cfg.seed, epoch)
        torch.manual_seed(seed_e + rank)  # dropout differs by rank as in any DDP run; identical across reruns
        gen = torch.Generator().manual_seed(seed_e)
        for g in optimizer.param_groups:
            g["lr"] = _lr_at(cfg, epoch)
        order = torch.randperm(n, generator=gen)
        net.train()
        t0 = time.perf_counter()
        tot_loss, tot_correct, tot_seen = 0.0, 0, 0
        batches = [order[s:s + cfg.batch_size] for s in range(0, n, cfg.batch_size)]
        if len(batches) > 1 and len(batches[-1]) < 2 * world_size:
            batches = batches[:-1]  # BatchNorm needs at least two clouds on every rank
        for bidx in progress(batches, desc=f"epoch {epoch + 1}/{cfg.epochs}"):
            x = pts_all[bidx]
            y = lab_all[bidx]
            if cfg.augment and points:
                x = augment(x, gen, **cfg.augment)
            if world_size > 1:
                x, y = x[rank::world_size], y[rank::world_size]
            x, y = x.to(device), y.to(device)
            logits = net(x)
            if multilabel:
                loss = F.binary_cross_entropy_with_logits(logits, y)
            else:
                loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
            reg = getattr(model, "regularization_loss", None)
            if reg is not None and cfg.reg_weight:
                loss = loss + cfg.reg_weight * reg()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            tot_loss += float(loss.detach()) * len(y)
            if multilabel:  # per-label accuracy: share of (cloud, class) decisions right at logit 0
                tot_correct += float(((logits.detach() > 0) == (y > 0.5)).float().mean(1).sum())
            else:
                tot_correct += int((logits.detach().argmax(1) == y).sum())
            tot_seen += len(y)
        train_seconds += time.perf_counter() - t0
        record = {"epoch": epoch + 1, "lr": _lr_at(cfg, epoch), "loss": tot_loss / max(1, tot_seen),
                  "train_accuracy": tot_correct / max(1, tot_seen), "seconds": time.perf_counter() - t0}
        if test_set is not None and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs):
            final = _summary(evaluate(model, test_set, device=device))
            record["test"] = final
        history.append(record)
        if out is not None and D.is_main():
            extra = {"training": _state_for_checkpoint(cfg, epoch + 1, optimizer, history, train_seconds)}
            if not points:
                extra["input"] = {"modality": train_set.modality, "image_size": list(train_set.image_size)}
            save_checkpoint(ckpt_path, model, class_names=list(train_set.class_names), extra=extra,
                            normalization="unit_sphere" if points else "none")
            save_json(out / "history.json", history)
        if on_epoch is not None and D.is_main():
            on_epoch(record)
        D.barrier()
    if world_size > 1:
        # DDP keeps parameters in sync, but each rank updated its BatchNorm running statistics on its own share
        # of the batches: adopt rank 0's buffers so every rank holds the model that rank 0 saved.
        import torch.distributed as dist

        for buf in model.buffers():
            dist.broadcast(buf.data, 0)
        if test_set is not None and history:
            final = _summary(evaluate(model, test_set, device=device))
    model.eval()
    return TrainResult(model, history, final, train_seconds)


def _summary(ev) -> dict:
    """The per-epoch test record: accuracy figures (single-label) or mAP / mean F1 (multi-label)."""
    if hasattr(ev, "map"):
        return {"map": ev.map, "mean_f1": ev.mean_f1, "accuracy": ev.accuracy, "n": ev.n}
    return {"accuracy": ev.accuracy, "mean_class_accuracy": ev.mean_class_accuracy, "n": ev.n}


def config_diff(saved: dict, current: dict, ignore=("epochs",)) -> list[str]:
    """The settings of ``current`` that differ from a resumed run's ``saved`` config (tuples and lists compare
    equal, as they do after a JSON round trip); ``ignore`` lists settings a resume may change (the epoch count).

    Returns:
        the differing keys, in ``current``'s order (empty: the run may be resumed).
    """
    return [k for k in current if k not in ignore and _norm(saved.get(k)) != _norm(current[k])]


def _norm(v):
    """Compare configs saved as JSON-like structures (tuples vs lists)."""
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v]
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items()}
    return v
