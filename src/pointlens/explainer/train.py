"""Training point explainers for a frozen classifier: validation split, early stopping, checkpoints, exact resume.

Reproducibility follows :mod:`pointlens.training`: every epoch re-seeds torch and the batch order from
``(seed, epoch)``, and the checkpoint written after every epoch holds the network, the optimizer state, the
early-stopping state (best validation loss, its epoch, its weights, epochs without improvement), the history
and torch's RNG state. A run resumed from the checkpoint of epoch ``e`` therefore continues exactly as the
uninterrupted run would have, and ends with bit-identical weights (tested).

Files in ``out_dir``: ``checkpoint.pt`` (training state, every epoch), ``explainer.pt`` (the best weights and
what is needed to rebuild and apply them, at the end), ``history.json``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pointlens.errors import CheckpointError, InvalidArgumentError, bad_argument
from pointlens.explainer.network import create_explainer_network
from pointlens.explainer.objective import OBJECTIVES, ObjectiveWeights, RTISWeights
from pointlens.explainer.points import PointModality
from pointlens.models.hooks import preserve_model_state
from pointlens.training.train import config_diff
from pointlens.utils.io import save_json, save_torch
from pointlens.utils.progress import progress
from pointlens.utils.validate import as_points, check_choice, check_float, check_int

CHECKPOINT_NAME = "checkpoint.pt"
EXPLAINER_NAME = "explainer.pt"
FORMAT = "pointlens-explainer"


@dataclass
class ExplainerConfig:
    """Everything that determines an explainer training run.

    Attributes:
        objective: ``"stalder"`` (Stalder et al.) or ``"rtis"`` (Dabkowski & Gal's real-time saliency).
        network: ``"pointnet-seg"`` or ``"dgcnn-seg"`` (:mod:`pointlens.explainer.network`).
        network_kwargs: options of the network.
        preset: the paper's weights for the Stalder objective (``"vgg16"`` or ``"resnet50"``).
        weights: overrides of :class:`~pointlens.explainer.objective.ObjectiveWeights` (Stalder) or
            :class:`~pointlens.explainer.objective.RTISWeights` (RTIS).
        k: neighbours of the smoothness graph.
        centre: ``"median"`` or ``"mean"``: where a masked-out point goes.
        epochs: the most passes over the training clouds.
        batch_size: clouds per step (the paper: 16).
        lr: Adam learning rate (the paper's 1e-5 / 1e-4 fine-tune a pretrained DeepLab; this network starts
            from scratch).
        weight_decay: Adam weight decay.
        val_fraction: share of the training clouds held out for validation (early stopping).
        patience: stop after this many epochs without a lower validation loss.
        seed: the run's seed (network init, split, batch order).
        target: single-label data: explain the ``"label"`` or the classifier's ``"prediction"``.
    """

    objective: str = "stalder"
    network: str = "pointnet-seg"
    network_kwargs: dict = field(default_factory=dict)
    preset: str = "vgg16"
    weights: dict = field(default_factory=dict)
    k: int = 10
    centre: str = "median"
    epochs: int = 30
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0
    val_fraction: float = 0.1
    patience: int = 5
    seed: int = 0
    target: str = "label"

    def validate(self) -> "ExplainerConfig":
        check_choice("objective", self.objective, tuple(OBJECTIVES))
        check_int("epochs", self.epochs, minimum=1)
        check_int("batch_size", self.batch_size, minimum=2)
        check_float("lr", self.lr, minimum=0.0, strict_min=True)
        check_float("weight_decay", self.weight_decay, minimum=0.0)
        check_float("val_fraction", self.val_fraction, minimum=0.0, maximum=0.9)
        check_int("patience", self.patience, minimum=1)
        check_choice("target", self.target, ("label", "prediction"))
        self.objective_weights()
        PointModality(k=self.k, centre=self.centre)
        return self

    def objective_weights(self):
        """The weights object of the chosen objective (preset + overrides), validated."""
        try:
            if self.objective == "rtis":
                return RTISWeights(**self.weights).validate()
            return ObjectiveWeights.preset(self.preset, **self.weights)
        except TypeError as e:
            raise bad_argument("weights", sorted(self.weights), f"weights of the {self.objective} objective "
                               f"({e})") from None


@dataclass
class ExplainerResult:
    """Outcome of :func:`train_explainer`.

    Attributes:
        network: the explainer with the best validation weights (eval mode).
        history: one dict per finished epoch (train loss and terms, validation loss, seconds).
        best_epoch: epoch (1-based) of the lowest validation loss.
        best_val: that loss.
        stopped_early: True when patience ran out before ``epochs``.
        train_seconds: wall time in training steps (over every call of a resumed run).
    """

    network: nn.Module
    history: list
    best_epoch: int
    best_val: float
    stopped_early: bool
    train_seconds: float


def _epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + epoch * 7919 + 29) % (2**62)


def present_classes(classifier: nn.Module, dataset, target: str = "label", *, device="cpu",
                    batch_size: int = 64) -> torch.Tensor:
    """``(M, C)`` bool classes present in every cloud: the multi-hot label (multi-label data), else one class:
    the label or the classifier's prediction (``target``)."""
    check_choice("target", target, ("label", "prediction"))
    if dataset.multilabel:
        return torch.from_numpy(np.asarray(dataset.labels) > 0.5)
    c = dataset.num_classes
    if target == "label":
        lab = torch.from_numpy(np.asarray(dataset.labels, dtype=np.int64))
    else:
        from pointlens.training import predict

        lab = predict(classifier, dataset.points, batch_size=batch_size, device=device, desc="predict").argmax(1)
    return torch.nn.functional.one_hot(lab, c).bool()


def split_validation(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``n`` clouds into ``(train indices, validation indices)`` (sorted)."""
    perm = np.random.default_rng([int(seed), 0xE1]).permutation(n)
    n_val = int(round(fraction * n)) if fraction > 0 else 0
    if fraction > 0:
        n_val = min(max(1, n_val), n - 2)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _objective_call(cfg: ExplainerConfig, classifier, modality, x, present, network, multilabel):
    weights = cfg.objective_weights()
    logits = network(x)
    return OBJECTIVES[cfg.objective](classifier, modality, x, logits, present, weights=weights,
                                     multilabel=multilabel)


def _freeze(classifier: nn.Module) -> None:
    classifier.eval()
    for p in classifier.parameters():
        p.requires_grad_(False)


def train_explainer(cfg: ExplainerConfig, classifier: nn.Module, train_set, *, out_dir=None, resume: bool = False,
                    device="cpu", meta: dict | None = None, stop_after: int | None = None) -> ExplainerResult:
    """Train an explainer network for ``classifier`` on ``train_set`` (its clouds; no ground truth is used).

    Args:
        cfg: :class:`ExplainerConfig`.
        classifier: the frozen explanandum ``(B, N, 3) -> (B, C)`` (left in its mode with its flags).
        train_set: :class:`~pointlens.data.dataset.PointCloudDataset`; multi-label data trains with BCE,
            single-label data with cross-entropy against the label or the prediction (``cfg.target``).
        out_dir: run folder for ``checkpoint.pt`` (every epoch), ``explainer.pt`` and ``history.json``.
        resume: continue from ``out_dir/checkpoint.pt`` (same config required).
        device: torch device.
        meta: plain values stored in ``explainer.pt`` (e.g. the classifier's path and format).
        stop_after: stop (as if interrupted) after this many epochs of this call, without writing
            ``explainer.pt`` (tests and benchmarks of ``--resume``).

    Returns:
        :class:`ExplainerResult`.
    """
    cfg.validate()
    out = Path(out_dir) if out_dir is not None else None
    ckpt = out / CHECKPOINT_NAME if out is not None else None
    multilabel = bool(train_set.multilabel)
    c = train_set.num_classes
    modality = PointModality(k=cfg.k, centre=cfg.centre)

    with preserve_model_state(classifier):
        _freeze(classifier)
        classifier.to(device)
        present_all = present_classes(classifier, train_set, cfg.target, device=device)
        pts_all = torch.from_numpy(train_set.points)
        tr_idx, va_idx = split_validation(len(pts_all), cfg.val_fraction, cfg.seed)
        if len(tr_idx) < 2:
            raise bad_argument("train_set", f"{len(pts_all)} clouds", "at least 3 clouds (2 to train, 1 to validate)")

        torch.manual_seed(cfg.seed)
        network = create_explainer_network(cfg.network, c, **cfg.network_kwargs).to(device)
        optimizer = torch.optim.Adam(network.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        state = {"epoch": 0, "history": [], "best_val": float("inf"), "best_epoch": 0, "best_state": None,
                 "bad_epochs": 0, "stopped": False, "train_seconds": 0.0}
        if resume:
            state = _load_training_state(ckpt, cfg, network, optimizer, device)

        epochs_run = 0
        for epoch in range(state["epoch"], cfg.epochs):
            if state["stopped"] or (stop_after is not None and epochs_run >= stop_after):
                break
            seed_e = _epoch_seed(cfg.seed, epoch)
            torch.manual_seed(seed_e)
            gen = torch.Generator().manual_seed(seed_e)
            order = torch.from_numpy(tr_idx)[torch.randperm(len(tr_idx), generator=gen)]
            batches = [order[s:s + cfg.batch_size] for s in range(0, len(order), cfg.batch_size)]
            if len(batches) > 1 and len(batches[-1]) < 2:
                batches = batches[:-1]  # batch norm needs two clouds
            network.train()
            t0 = time.perf_counter()
            sums: dict = {}
            seen = 0
            for bidx in progress(batches, desc=f"explainer epoch {epoch + 1}/{cfg.epochs}"):
                x = pts_all[bidx].to(device)
                res = _objective_call(cfg, classifier, modality, x, present_all[bidx].to(device), network, multilabel)
                optimizer.zero_grad(set_to_none=True)
                res.total.backward()
                optimizer.step()
                for k, v in res.as_floats().items():
                    sums[k] = sums.get(k, 0.0) + v * len(bidx)
                seen += len(bidx)
            state["train_seconds"] += time.perf_counter() - t0
            record = {"epoch": epoch + 1, "train": {k: v / max(1, seen) for k, v in sums.items()},
                      "seconds": time.perf_counter() - t0}
            if len(va_idx):
                val = validation_loss(cfg, classifier, network, pts_all[torch.from_numpy(va_idx)],
                                      present_all[torch.from_numpy(va_idx)], multilabel, device=device)
                record["val"] = val
                score = val["total"]
            else:
                score = record["train"]["total"]
            if score < state["best_val"] - 1e-7:
                state.update(best_val=score, best_epoch=epoch + 1, bad_epochs=0,
                             best_state=copy.deepcopy(network.state_dict()))
            else:
                state["bad_epochs"] += 1
                if state["bad_epochs"] >= cfg.patience:
                    state["stopped"] = True
            state["history"].append(record)
            state["epoch"] = epoch + 1
            epochs_run += 1
            if out is not None:
                _save_training_state(ckpt, cfg, network, optimizer, state)
                save_json(out / "history.json", state["history"])

        finished = state["stopped"] or state["epoch"] >= cfg.epochs
        if state["best_state"] is not None and finished:
            network.load_state_dict(state["best_state"])
        network.eval()
        if out is not None and finished:
            save_explainer(out / EXPLAINER_NAME, network, cfg, class_names=list(train_set.class_names),
                           meta={**(meta or {}), "best_epoch": state["best_epoch"], "best_val": state["best_val"],
                                 "num_points": int(train_set.num_points), "multilabel": multilabel,
                                 "train_seconds": state["train_seconds"]})
    return ExplainerResult(network, state["history"], state["best_epoch"], state["best_val"], state["stopped"],
                           state["train_seconds"])


@torch.no_grad()
def validation_loss(cfg: ExplainerConfig, classifier, network, points, present, multilabel: bool, *,
                    device="cpu", batch_size: int = 64) -> dict:
    """Mean objective and terms over ``points (M, N, 3)`` with the network in eval mode."""
    modality = PointModality(k=cfg.k, centre=cfg.centre)
    with preserve_model_state(network):
        network.eval()
        sums: dict = {}
        for s in range(0, len(points), batch_size):
            x = points[s:s + batch_size].to(device)
            res = _objective_call(cfg, classifier, modality, x, present[s:s + batch_size].to(device), network,
                                  multilabel)
            for k, v in res.as_floats().items():
                sums[k] = sums.get(k, 0.0) + v * len(x)
    return {k: v / len(points) for k, v in sums.items()}


def _save_training_state(path, cfg, network, optimizer, state) -> None:
    save_torch(path, {"format": FORMAT + "-training", "config": asdict(cfg), "network_config": network.config,
                      "network": network.state_dict(), "optimizer": optimizer.state_dict(),
                      "rng": torch.get_rng_state(), **state})


def _load_training_state(path, cfg, network, optimizer, device) -> dict:
    if path is None or not path.is_file():
        raise InvalidArgumentError(f"--resume: no checkpoint at {path}; run without --resume to start")
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file
        raise CheckpointError(f"{path}: not a readable explainer training checkpoint ({type(e).__name__})") from None
    if not isinstance(saved, dict) or saved.get("format") != FORMAT + "-training":
        raise CheckpointError(f"{path}: not an explainer training checkpoint")
    mine, theirs = asdict(cfg), saved["config"]
    diff = config_diff(theirs, mine)
    if diff:
        raise InvalidArgumentError(f"--resume: the run in {path.parent} used different settings ({', '.join(diff)}); "
                                   "use the same arguments or a new --out")
    network.load_state_dict(saved["network"])
    optimizer.load_state_dict(saved["optimizer"])
    torch.set_rng_state(saved["rng"].cpu())
    keys = ("epoch", "history", "best_val", "best_epoch", "best_state", "bad_epochs", "stopped", "train_seconds")
    return {k: saved[k] for k in keys}


# ------------------------------------------------------------------------------------------- save / load / apply
@dataclass
class LoadedExplainer:
    """An explainer read by :func:`load_explainer`.

    Attributes:
        network: the network (eval mode) mapping ``(B, N, 3)`` to ``(B, C, N)`` mask logits.
        config: the :class:`ExplainerConfig` it was trained with.
        class_names: ``C`` names.
        meta: plain values stored at training time (classifier path and format, best epoch, ...).
    """

    network: nn.Module
    config: ExplainerConfig
    class_names: list
    meta: dict


def save_explainer(path, network: nn.Module, cfg: ExplainerConfig, *, class_names, meta: dict | None = None) -> Path:
    """Write ``explainer.pt`` atomically: network config and weights, training config, class names, meta."""
    return save_torch(path, {"format": FORMAT, "network_config": network.config, "network": network.state_dict(),
                             "config": asdict(cfg), "class_names": list(class_names), "meta": dict(meta or {})})


def load_explainer(path, device="cpu") -> LoadedExplainer:
    """Load an explainer from ``explainer.pt`` or a run folder holding it.

    Raises:
        CheckpointError: missing or unreadable file, or not an explainer.
    """
    p = Path(path)
    if p.is_dir():
        p = p / EXPLAINER_NAME
    if not p.is_file():
        raise CheckpointError(f"--explainer {path}: no {EXPLAINER_NAME} found; train one with "
                              "'pointlens explainer train' (an interrupted run needs --resume to finish)")
    try:
        saved = torch.load(p, map_location=device, weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"{p}: not a readable explainer ({type(e).__name__})") from None
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise CheckpointError(f"{p}: not a pointlens explainer (written by 'pointlens explainer train')")
    nc = saved["network_config"]
    network = create_explainer_network(nc["name"], nc["num_classes"], **nc["kwargs"])
    network.load_state_dict(saved["network"])
    network.to(device).eval()
    return LoadedExplainer(network, ExplainerConfig(**saved["config"]), list(saved["class_names"]),
                           dict(saved.get("meta", {})))


@torch.no_grad()
def explain_masks(network: nn.Module, points, *, batch_size: int = 32, device=None) -> torch.Tensor:
    """Per-class masks of an explainer: ``σ(network(points))``, one forward pass per batch.

    Args:
        network: explainer network.
        points: ``(M, N, 3)`` array or tensor.
        batch_size: clouds per forward pass.
        device: where to run (default: the network's device).

    Returns:
        ``(M, C, N)`` float32 masks in ``[0, 1]`` on the CPU.
    """
    x = as_points(points)
    check_int("batch_size", batch_size, minimum=1)
    dev = device or next(network.parameters()).device
    with preserve_model_state(network):
        network.eval()
        out = [torch.sigmoid(network(x[s:s + batch_size].to(dev))).float().cpu()
               for s in range(0, len(x), batch_size)]
    return torch.cat(out)
