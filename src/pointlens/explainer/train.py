"""Training explainers for a frozen classifier: validation split, early stopping, checkpoints, exact resume.

Modality-independent: the data's ``modality`` (``"points"`` or ``"image"``) picks the mask application and
smoothness (:class:`~pointlens.explainer.points.PointModality` or :class:`~pointlens.explainer.images.ImageModality`)
and the default network (``pointnet-seg`` or ``unet``); the inputs are the data's ``inputs`` (clouds
``(M, N, 3)`` or images ``(M, 3, H, W)``).

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
from pointlens.explainer.images import ImageModality
from pointlens.explainer.network import DEFAULT_NETWORK, MODALITY_NETWORKS, create_explainer_network
from pointlens.explainer.objective import OBJECTIVES, ObjectiveWeights, RTISWeights
from pointlens.explainer.points import PointModality
from pointlens.models.hooks import preserve_model_state
from pointlens.training.train import config_diff
from pointlens.utils.io import save_json, save_torch
from pointlens.utils.progress import progress
from pointlens.utils.validate import as_images, as_points, check_choice, check_float, check_int

CHECKPOINT_NAME = "checkpoint.pt"
EXPLAINER_NAME = "explainer.pt"
FORMAT = "pointlens-explainer"
MODALITIES = tuple(MODALITY_NETWORKS)
#: settings added after the first explainer checkpoints: the values those runs had
_LEGACY = {"modality": "points", "fill": "zero", "blur_sigma": 5.0}


@dataclass
class ExplainerConfig:
    """Everything that determines an explainer training run.

    Attributes:
        objective: ``"stalder"`` (Stalder et al.) or ``"rtis"`` (Dabkowski & Gal's real-time saliency).
        modality: ``"points"`` or ``"image"``; None = the training data's (set by :func:`train_explainer`).
        network: ``"pointnet-seg"`` or ``"dgcnn-seg"`` (clouds), ``"unet"`` (images)
            (:mod:`pointlens.explainer.network`); None = the modality's default (``pointnet-seg`` / ``unet``).
        network_kwargs: options of the network.
        preset: the paper's weights for the Stalder objective (``"vgg16"`` or ``"resnet50"``).
        weights: overrides of :class:`~pointlens.explainer.objective.ObjectiveWeights` (Stalder) or
            :class:`~pointlens.explainer.objective.RTISWeights` (RTIS).
        k: neighbours of the smoothness graph (clouds).
        centre: ``"median"`` or ``"mean"``: where a masked-out point goes (clouds).
        fill: what a masked-out pixel becomes (images): ``"zero"`` (the paper, ``m ⊙ x``), ``"grey"`` or
            ``"blur"`` (:class:`~pointlens.explainer.images.ImageModality`).
        blur_sigma: the blur's standard deviation in pixels (``fill="blur"``).
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
    modality: str | None = None
    network: str | None = None
    network_kwargs: dict = field(default_factory=dict)
    preset: str = "vgg16"
    weights: dict = field(default_factory=dict)
    k: int = 10
    centre: str = "median"
    fill: str = "zero"
    blur_sigma: float = 5.0
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
        if self.modality is not None:
            check_choice("modality", self.modality, MODALITIES)
            if self.network is not None and self.network not in MODALITY_NETWORKS[self.modality]:
                raise bad_argument("network", self.network, f"a network for {self.modality} data: one of "
                                   + ", ".join(MODALITY_NETWORKS[self.modality]))
        self.objective_weights()
        PointModality(k=self.k, centre=self.centre)
        ImageModality(fill=self.fill, blur_sigma=self.blur_sigma)
        return self

    def resolved(self, modality: str) -> "ExplainerConfig":
        """A copy for data of ``modality``: ``modality`` and ``network`` (the modality's default) filled in.

        Raises:
            InvalidArgumentError: the config names another modality, or a network of another modality.
        """
        check_choice("modality", modality, MODALITIES)
        if self.modality is not None and self.modality != modality:
            raise bad_argument("modality", self.modality, f"{modality} (the data's modality)")
        import dataclasses

        return dataclasses.replace(self, modality=modality,
                                   network=self.network or DEFAULT_NETWORK[modality]).validate()

    def make_modality(self):
        """The :class:`~pointlens.explainer.modality.Modality` of a resolved config."""
        if self.modality == "image":
            return ImageModality(fill=self.fill, blur_sigma=self.blur_sigma)
        if self.modality == "points":
            return PointModality(k=self.k, centre=self.centre)
        raise bad_argument("modality", self.modality, "points or image (call resolved() first)")

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
    """``(M, C)`` bool classes present in every input (cloud or image): the multi-hot label (multi-label data),
    else one class: the label or the classifier's prediction (``target``)."""
    check_choice("target", target, ("label", "prediction"))
    if dataset.multilabel:
        return torch.from_numpy(np.asarray(dataset.labels) > 0.5)
    c = dataset.num_classes
    if target == "label":
        lab = torch.from_numpy(np.asarray(dataset.labels, dtype=np.int64))
    else:
        x = as_inputs(dataset.inputs)
        with preserve_model_state(classifier), torch.no_grad():
            classifier.eval()
            lab = torch.cat([classifier(x[s:s + batch_size].to(device)).float().cpu()
                             for s in progress(range(0, len(x), batch_size), desc="predict")]).argmax(1)
    return torch.nn.functional.one_hot(lab, c).bool()


def as_inputs(inputs, name: str = "inputs") -> torch.Tensor:
    """Clouds ``(M, N, 3)`` or images ``(M, 3, H, W)`` (array or tensor) as a float32 tensor, checked."""
    t = torch.from_numpy(np.ascontiguousarray(inputs)) if isinstance(inputs, np.ndarray) else torch.as_tensor(inputs)
    if t.dim() == 4:
        return as_images(t, name)
    return as_points(t, name)


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
    """Train an explainer network for ``classifier`` on ``train_set`` (its inputs; no ground truth is used).

    Args:
        cfg: :class:`ExplainerConfig` (its ``modality`` and ``network`` default to the data's, see
            :meth:`ExplainerConfig.resolved`; the resolved config is what is saved and resumed).
        classifier: the frozen explanandum ``(B, N, 3)`` or ``(B, 3, H, W)`` -> ``(B, C)`` (left in its mode
            with its flags).
        train_set: :class:`~pointlens.data.dataset.PointCloudDataset` or
            :class:`~pointlens.data.images.ImageDataset`; multi-label data trains with BCE, single-label data
            with cross-entropy against the label or the prediction (``cfg.target``).
        out_dir: run folder for ``checkpoint.pt`` (every epoch), ``explainer.pt`` and ``history.json``.
        resume: continue from ``out_dir/checkpoint.pt`` (same config required).
        device: torch device.
        meta: plain values stored in ``explainer.pt`` (e.g. the classifier's path and format).
        stop_after: stop (as if interrupted) after this many epochs of this call, without writing
            ``explainer.pt`` (tests and benchmarks of ``--resume``).

    Returns:
        :class:`ExplainerResult`.
    """
    cfg = cfg.validate().resolved(getattr(train_set, "modality", "points"))
    out = Path(out_dir) if out_dir is not None else None
    ckpt = out / CHECKPOINT_NAME if out is not None else None
    multilabel = bool(train_set.multilabel)
    c = train_set.num_classes
    modality = cfg.make_modality()

    with preserve_model_state(classifier):
        _freeze(classifier)
        classifier.to(device)
        present_all = present_classes(classifier, train_set, cfg.target, device=device)
        pts_all = as_inputs(train_set.inputs, "train_set")
        tr_idx, va_idx = split_validation(len(pts_all), cfg.val_fraction, cfg.seed)
        if len(tr_idx) < 2:
            raise bad_argument("train_set", f"{len(pts_all)} inputs", "at least 3 inputs (2 to train, 1 to validate)")
        if cfg.network == "unet":  # a size the network cannot take fails now, not after the first epoch
            f = 2 ** int(cfg.network_kwargs.get("depth", 3))
            if pts_all.shape[2] % f or pts_all.shape[3] % f:
                raise bad_argument("train_set", f"images of {pts_all.shape[2]}x{pts_all.shape[3]} pixels",
                                   f"height and width divisible by 2^depth = {f} (or a smaller unet depth)")

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
                batches = batches[:-1]  # batch norm needs two inputs
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
            shape = ({"num_points": int(pts_all.shape[1])} if cfg.modality == "points"
                     else {"image_size": [int(pts_all.shape[2]), int(pts_all.shape[3])]})
            save_explainer(out / EXPLAINER_NAME, network, cfg, class_names=list(train_set.class_names),
                           meta={**(meta or {}), "best_epoch": state["best_epoch"], "best_val": state["best_val"],
                                 **shape, "multilabel": multilabel, "modality": cfg.modality,
                                 "train_seconds": state["train_seconds"]})
    return ExplainerResult(network, state["history"], state["best_epoch"], state["best_val"], state["stopped"],
                           state["train_seconds"])


@torch.no_grad()
def validation_loss(cfg: ExplainerConfig, classifier, network, points, present, multilabel: bool, *,
                    device="cpu", batch_size: int = 64) -> dict:
    """Mean objective and terms over ``points`` (clouds ``(M, N, 3)`` or images ``(M, 3, H, W)``; ``cfg``
    resolved) with the network in eval mode."""
    modality = cfg.make_modality()
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
    mine, theirs = asdict(cfg), {**_LEGACY, **saved["config"]}
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
        network: the network (eval mode) mapping ``(B, N, 3)`` to ``(B, C, N)`` (clouds) or ``(B, 3, H, W)`` to
            ``(B, C, H, W)`` (images) mask logits.
        config: the :class:`ExplainerConfig` it was trained with (resolved: ``modality`` and ``network`` set).
        class_names: ``C`` names.
        meta: plain values stored at training time (classifier path and format, best epoch, ...).
    """

    network: nn.Module
    config: ExplainerConfig
    class_names: list
    meta: dict

    @property
    def modality(self) -> str:
        """``"points"`` or ``"image"``."""
        return self.config.modality


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
    return LoadedExplainer(network, ExplainerConfig(**{**_LEGACY, **saved["config"]}), list(saved["class_names"]),
                           dict(saved.get("meta", {})))


@torch.no_grad()
def explain_masks(network: nn.Module, points, *, batch_size: int = 32, device=None) -> torch.Tensor:
    """Per-class masks of an explainer: ``σ(network(inputs))``, one forward pass per batch.

    Args:
        network: explainer network.
        points: clouds ``(M, N, 3)`` or images ``(M, 3, H, W)``, array or tensor.
        batch_size: inputs per forward pass.
        device: where to run (default: the network's device).

    Returns:
        ``(M, C, N)`` or ``(M, C, H, W)`` float32 masks in ``[0, 1]`` on the CPU.
    """
    x = as_inputs(points)
    check_int("batch_size", batch_size, minimum=1)
    dev = device or next(network.parameters()).device
    with preserve_model_state(network):
        network.eval()
        out = [torch.sigmoid(network(x[s:s + batch_size].to(dev))).float().cpu()
               for s in range(0, len(x), batch_size)]
    return torch.cat(out)
