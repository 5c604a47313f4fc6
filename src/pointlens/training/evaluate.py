"""Batched evaluation: predictions, overall / mean-class / per-class accuracy, confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pointlens.models.hooks import preserve_model_state
from pointlens.utils.progress import progress
from pointlens.utils.validate import as_points, check_int


@torch.no_grad()
def predict(model: nn.Module, points, *, batch_size: int = 64, device="cpu", desc: str | None = None) -> torch.Tensor:
    """Logits of ``model`` in eval mode for every cloud (the caller's train/eval mode is restored).

    Args:
        model: any module mapping ``(B, N, 3)`` to logits ``(B, C)``.
        points: ``(M, N, 3)`` array or tensor.
        batch_size: clouds per forward pass.
        device: where to run.

    Returns:
        ``(M, C)`` float32 logits on the CPU.
    """
    pts = as_points(points, "points")
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


def evaluate(model: nn.Module, dataset, *, batch_size: int = 64, device="cpu") -> EvalResult:
    """Evaluate a classifier on a :class:`~pointlens.data.dataset.PointCloudDataset` (single-label).

    Args:
        model: classifier mapping ``(B, N, 3)`` to ``(B, C)`` logits with ``C == dataset.num_classes``.
        dataset: the labelled clouds.
        batch_size: clouds per forward pass.
        device: where to run.

    Returns:
        :class:`EvalResult`.
    """
    logits = predict(model, dataset.points, batch_size=batch_size, device=device, desc="evaluate")
    pred = logits.argmax(1).numpy()
    acc, mca, per, conf = accuracy_report(pred, dataset.labels, dataset.class_names)
    return EvalResult(acc, mca, per, conf, len(dataset), pred, logits.numpy())
