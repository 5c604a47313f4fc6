"""Batched evaluation: predictions, overall / mean-class / per-class accuracy, confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pointlens.models.hooks import preserve_model_state
from pointlens.utils.progress import progress
from pointlens.utils.validate import as_images, as_points, check_int


def as_inputs(inputs, name: str = "points") -> torch.Tensor:
    """Model inputs of either modality as a float32 tensor: 4-D arrays are images ``(M, 3, H, W)``
    (:func:`~pointlens.utils.validate.as_images`), anything else points ``(M, N, 3)``
    (:func:`~pointlens.utils.validate.as_points`)."""
    if np.ndim(inputs) == 4:
        return as_images(inputs, "images" if name == "points" else name)
    return as_points(inputs, name)


@torch.no_grad()
def predict(model: nn.Module, points, *, batch_size: int = 64, device="cpu", desc: str | None = None) -> torch.Tensor:
    """Logits of ``model`` in eval mode for every input (the caller's train/eval mode is restored).

    Args:
        model: any module mapping ``(B, N, 3)`` clouds (or ``(B, 3, H, W)`` images) to logits ``(B, C)``.
        points: ``(M, N, 3)`` clouds or ``(M, 3, H, W)`` images, array or tensor (a dataset's ``inputs``).
        batch_size: inputs per forward pass.
        device: where to run.

    Returns:
        ``(M, C)`` float32 logits on the CPU.
    """
    pts = as_inputs(points, "points")
    check_int("batch_size", batch_size, minimum=1)
    out = []
    with preserve_model_state(model):
        model.eval()
        for s in progress(range(0, len(pts), batch_size), desc=desc or "predict"):
            out.append(model(pts[s:s + batch_size].to(device)).float().cpu())
    return torch.cat(out)


@dataclass
class EvalResult:
    """Classification quality on a labelled set.

    Attributes:
        accuracy: overall accuracy (share of clouds predicted right).
        mean_class_accuracy: mean over the classes PRESENT in the labels of their accuracy.
        per_class: ``{class name: accuracy}`` for the present classes.
        confusion: ``(C, C)`` int64 counts, rows = true class, columns = predicted class.
        n: number of clouds.
        predictions: ``(M,)`` predicted class indices.
        logits: ``(M, C)`` logits.
    """

    accuracy: float
    mean_class_accuracy: float
    per_class: dict
    confusion: np.ndarray
    n: int
    predictions: np.ndarray
    logits: np.ndarray

    def to_dict(self) -> dict:
        """JSON-safe summary (no per-cloud arrays)."""
        return {"accuracy": self.accuracy, "mean_class_accuracy": self.mean_class_accuracy, "n": self.n,
                "per_class_accuracy": self.per_class, "confusion": self.confusion.tolist()}


def accuracy_report(predictions, labels, class_names) -> tuple[float, float, dict, np.ndarray]:
    """Overall accuracy, mean-class accuracy, per-class accuracy and confusion matrix.

    Args:
        predictions: ``(M,)`` int predicted classes.
        labels: ``(M,)`` int true classes.
        class_names: ``C`` names.

    Returns:
        ``(accuracy, mean_class_accuracy, per_class dict, confusion (C, C))``.
    """
    pred = np.asarray(predictions, dtype=np.int64)
    lab = np.asarray(labels, dtype=np.int64)
    c = len(class_names)
    conf = np.zeros((c, c), dtype=np.int64)
    np.add.at(conf, (lab, pred), 1)
    acc = float((pred == lab).mean()) if len(lab) else float("nan")
    per = {}
    for k in range(c):
        tot = conf[k].sum()
        if tot:
            per[class_names[k]] = float(conf[k, k] / tot)
    mca = float(np.mean(list(per.values()))) if per else float("nan")
    return acc, mca, per, conf


@dataclass
class MultiLabelEvalResult:
    """Multi-label classification quality (ShapeParts scenes): a class is predicted when its logit is > 0.

    Attributes:
        map: mean over the classes with at least one positive of their average precision.
        per_class_ap: ``{class name: AP}`` for classes with positives.
        per_class_f1: ``{class name: F1}`` at logit 0 (sigmoid 0.5) for classes with positives or predictions.
        mean_f1: mean of ``per_class_f1``.
        accuracy: exact-match (subset) accuracy: share of clouds whose whole predicted label set is right.
        n: number of clouds.
        predictions: ``(M, C)`` bool predicted label sets.
        logits: ``(M, C)`` logits.
    """

    map: float
    per_class_ap: dict
    per_class_f1: dict
    mean_f1: float
    accuracy: float
    n: int
    predictions: np.ndarray
    logits: np.ndarray

    def to_dict(self) -> dict:
        """JSON-safe summary (no per-cloud arrays)."""
        return {"map": self.map, "mean_f1": self.mean_f1, "accuracy": self.accuracy, "n": self.n,
                "per_class_ap": self.per_class_ap, "per_class_f1": self.per_class_f1}


def average_precision(scores, positives) -> float:
    """Average precision of one class: the mean, over the positives, of the precision at each positive's rank.

    The same definition as scikit-learn's ``average_precision_score`` (ties: all tied scores enter together).

    Args:
        scores: ``(M,)`` real scores (higher = more likely positive).
        positives: ``(M,)`` bool.

    Returns:
        AP in ``[0, 1]``; NaN without positives.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(positives, dtype=bool)
    if not y.any():
        return float("nan")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # the last index of every group of tied scores
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall_gain = np.diff(np.r_[0, tp]) / y.sum()
    return float((precision * recall_gain).sum())


def multilabel_report(logits, labels, class_names) -> MultiLabelEvalResult:
    """mAP, per-class AP and F1 (at logit 0) and exact-match accuracy of multi-label predictions.

    Args:
        logits: ``(M, C)`` logits.
        labels: ``(M, C)`` multi-hot targets.
        class_names: ``C`` names.

    Returns:
        :class:`MultiLabelEvalResult`.
    """
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels) > 0.5
    pred = z > 0
    ap, f1 = {}, {}
    for k, name in enumerate(class_names):
        if y[:, k].any():
            ap[name] = average_precision(z[:, k], y[:, k])
        tp = int((pred[:, k] & y[:, k]).sum())
        denom = int(pred[:, k].sum() + y[:, k].sum())
        if denom:
            f1[name] = 2 * tp / denom
    exact = float((pred == y).all(1).mean()) if len(y) else float("nan")
    return MultiLabelEvalResult(_mean(ap), ap, f1, _mean(f1), exact, len(y), pred, z.astype(np.float32))


def _mean(d: dict) -> float:
    return float(np.mean(list(d.values()))) if d else float("nan")


def evaluate(model: nn.Module, dataset, *, batch_size: int = 64, device="cpu"):
    """Evaluate a classifier on a :class:`~pointlens.data.dataset.PointCloudDataset` or
    :class:`~pointlens.data.images.ImageDataset` (its ``inputs``).

    Single-label data gives an :class:`EvalResult`; multi-label data (``(M, C)`` multi-hot labels, ShapeParts
    scenes) a :class:`MultiLabelEvalResult` (mAP, per-class F1 at logit 0, exact-match accuracy).

    Args:
        model: classifier mapping ``(B, N, 3)`` (or ``(B, 3, H, W)``) to ``(B, C)`` logits with
            ``C == dataset.num_classes``.
        dataset: the labelled clouds or images.
        batch_size: clouds per forward pass.
        device: where to run.

    Returns:
        :class:`EvalResult` or :class:`MultiLabelEvalResult`.
    """
    logits = predict(model, dataset.inputs, batch_size=batch_size, device=device, desc="evaluate")
    if dataset.multilabel:
        return multilabel_report(logits.numpy(), dataset.labels, dataset.class_names)
    pred = logits.argmax(1).numpy()
    acc, mca, per, conf = accuracy_report(pred, dataset.labels, dataset.class_names)
    return EvalResult(acc, mca, per, conf, len(dataset), pred, logits.numpy())
