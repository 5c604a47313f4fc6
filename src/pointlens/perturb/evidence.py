"""Is the ground truth real? Delete the annotated evidence and watch a classifier fail.

For ShapeParts, twin classes share their body and differ only by discriminative parts (``gt_mask``). If that
ground truth is real, a classifier that tells the twins apart must lose that ability when the discriminative parts
are deleted, and keep it when the same number of random other points are deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pointlens.errors import bad_argument
from pointlens.models.hooks import preserve_model_state
from pointlens.ops.removal import delete_points


@dataclass
class EvidenceCheck:
    """Twin-pair accuracy under three conditions (share of clouds whose true class beats its twin's logit).

    Attributes:
        clean: nothing deleted.
        evidence_deleted: every ground-truth (discriminative-part) point deleted.
        random_deleted: as many random non-evidence points deleted, per cloud.
        accuracy_clean: plain accuracy over all classes, nothing deleted.
        n: number of clouds.
        deleted_fraction: mean share of points deleted per cloud.
    """

    clean: float
    evidence_deleted: float
    random_deleted: float
    accuracy_clean: float
    n: int
    deleted_fraction: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _twin_correct(logits: torch.Tensor, label: int, twin: int) -> bool:
    return bool(logits[label] > logits[twin])


@torch.no_grad()
def evidence_deletion_check(model: nn.Module, dataset, twin_index, *, seed: int = 0,
                            device="cpu") -> EvidenceCheck:
    """Twin-pair accuracy with the evidence deleted vs. the same number of random other points deleted.

    Points are really deleted (the clouds shrink; each cloud is evaluated on its own, since clouds lose different
    numbers of points).

    Args:
        model: classifier mapping ``(B, N, 3)`` to ``(B, C)`` logits.
        dataset: single-label :class:`~pointlens.data.dataset.PointCloudDataset` with ``gt_mask (M, N)``.
        twin_index: ``(C,)`` int array: the twin class of each class.
        seed: seed of the random deletions.
        device: where to run.

    Returns:
        :class:`EvidenceCheck`.
    """
    if dataset.gt_mask is None:
        raise bad_argument("dataset", "a dataset without gt_mask", "a dataset with ground-truth evidence (ShapeParts)")
    twin_index = np.asarray(twin_index)
    gen = np.random.default_rng(seed)
    clean = ev = rnd = acc = 0
    fractions = []
    with preserve_model_state(model):
        model.eval()
        for i in range(len(dataset)):
            x = torch.from_numpy(dataset.points[i:i + 1]).to(device)
            mask = dataset.gt_mask[i]
            y, t = int(dataset.labels[i]), int(twin_index[int(dataset.labels[i])])
            k = int(mask.sum())
            if k == 0 or k >= len(mask):
                raise bad_argument("dataset.gt_mask", f"cloud {i} with {k} evidence points",
                                   "between 1 and N-1 evidence points per cloud")
            logits = model(x)[0]
            clean += _twin_correct(logits, y, t)
            acc += int(logits.argmax()) == y
            idx_ev = torch.from_numpy(np.flatnonzero(mask)).unsqueeze(0).to(device)
            ev += _twin_correct(model(delete_points(x, idx_ev))[0], y, t)
            others = np.flatnonzero(~mask)
            idx_rnd = torch.from_numpy(np.sort(gen.choice(others, size=min(k, len(others) - 1), replace=False)))
            rnd += _twin_correct(model(delete_points(x, idx_rnd.unsqueeze(0).to(device)))[0], y, t)
            fractions.append(k / len(mask))
    n = len(dataset)
    return EvidenceCheck(clean / n, ev / n, rnd / n, acc / n, n, float(np.mean(fractions)))
