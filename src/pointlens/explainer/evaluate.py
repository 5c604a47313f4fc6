"""The mask-metric table: trained explainers, attribution baselines and the trivial rows on one dataset."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from pointlens.errors import bad_argument
from pointlens.explainer.baselines import attribution_masks, class_truth
from pointlens.explainer.train import as_inputs, explain_masks, present_classes
from pointlens.metrics.masks import METRIC_NAMES, TRIVIAL, mask_metrics, trivial_masks
from pointlens.models.hooks import preserve_model_state

#: methods given by trained networks rather than by pointlens.attribution
NETWORK_METHODS = ("explainer", "rtis")


def evaluate_methods(classifier: nn.Module, dataset, methods, *, networks: dict | None = None,
                     method_options: dict | None = None, target: str = "label", trivial: bool = True,
                     batch_size: int = 16, device="cpu", modality=None) -> tuple[dict, dict]:
    """Score every method's per-class masks with the mask metrics.

    Args:
        classifier: the explained classifier.
        dataset: :class:`~pointlens.data.dataset.PointCloudDataset` (scenes or single-label with ground truth)
            or :class:`~pointlens.data.images.ImageDataset` (per-class pixel masks); without ground truth only
            ``saliency`` and ``class_specific`` are defined.
        methods: names: ``explainer``/``rtis`` (looked up in ``networks``) or attribution names.
        networks: ``{name: explainer network}`` for the network methods.
        method_options: ``{attribution name: options dict}``.
        target: single-label data: present class = ``"label"`` or ``"prediction"``.
        trivial: add the rows all-0, all-0.5, all-1 and ground-truth (when there is a ground truth).
        batch_size: inputs per attribution / explainer call.
        device: where the networks run.
        modality: the :class:`~pointlens.explainer.modality.Modality` whose ``apply`` masks the inputs for the
            saliency metric and the class-specific check (default: shift to the median centre for clouds,
            ``m ⊙ x`` for images — the masking of the paper, whatever fill the explainer was trained with).

    Returns:
        ``(table, masks)``: ``table[name] = {"accuracy", "mae", "miou", "saliency", "class_specific",
        "seconds", "clouds_per_second"}`` (floats; ``seconds`` = time to compute the masks,
        ``clouds_per_second`` = inputs per second); ``masks[name]`` = ``(M, C, N)`` or ``(M, C, H, W)`` float32
        array.
    """
    networks = dict(networks or {})
    method_options = dict(method_options or {})
    for name in methods:
        if name in NETWORK_METHODS and name not in networks:
            raise bad_argument("--methods", name, f"a method with a trained network (--{name} DIR) or an "
                               "attribution method")
    points = as_inputs(dataset.inputs)
    apply = None
    if modality is not None:
        def apply(x, m):
            return modality.apply(x, m, modality.prepare(x))
    with preserve_model_state(classifier):
        classifier.eval()
        present = present_classes(classifier, dataset, target, device=device)
        truth = class_truth(dataset, present)
        rows: dict = {}
        if trivial and truth is not None:
            for name, m in trivial_masks(truth).items():
                rows[name] = (m, 0.0)
        for name in methods:
            t0 = time.perf_counter()
            if name in networks:
                m = explain_masks(networks[name], points, batch_size=batch_size, device=device)
            else:
                m = attribution_masks(name, classifier, points, present, options=method_options.get(name),
                                      batch_size=batch_size)
            rows[name] = (m, time.perf_counter() - t0)
        table, masks = {}, {}
        truth_t = torch.from_numpy(truth) if truth is not None else None
        for name, (m, sec) in rows.items():
            if truth_t is not None:
                res = mask_metrics(classifier, points, m, present, truth_t, apply=apply)
            else:
                res = _metrics_without_truth(classifier, points, m, present, apply)
            res.pop("per_input", None)
            res["seconds"] = sec
            res["clouds_per_second"] = len(points) / sec if sec > 0 else float("nan")
            table[name] = res
            masks[name] = m.numpy()
    return table, masks


def _metrics_without_truth(classifier, points, m, present, apply=None) -> dict:
    from pointlens.metrics.masks import class_specific, present_mask, saliency_metric

    s = present_mask(m, present)
    sal = saliency_metric(classifier, points, s, present, apply=apply).numpy()
    cs = class_specific(classifier, points, m, present, apply=apply).numpy()
    out = {k: float("nan") for k in METRIC_NAMES}
    out["saliency"] = float(np.mean(sal))
    out["class_specific"] = float(np.nanmean(cs)) if np.isfinite(cs).any() else float("nan")
    return out


def table_markdown(table: dict, *, title_cols=("accuracy ↑", "MAE ↓", "mean IoU ↑", "saliency ↓",
                                                "class-specific ↑", "seconds")) -> str:
    """The table as Markdown: one row per method (trivial rows first, in italics)."""
    lines = ["| method | " + " | ".join(title_cols) + " |", "|---" * (len(title_cols) + 1) + "|"]
    for name, r in table.items():
        label = f"_{name}_" if name in TRIVIAL else name
        vals = [r.get(k, float("nan")) for k in (*METRIC_NAMES, "seconds")]
        lines.append(f"| {label} | " + " | ".join("—" if not np.isfinite(v) else f"{v:.3f}" if i < 5 else f"{v:.1f}"
                                                  for i, v in enumerate(vals)) + " |")
    return "\n".join(lines)


def table_csv(table: dict) -> str:
    """The table as CSV (``method,accuracy,mae,miou,saliency,class_specific,seconds``)."""
    cols = (*METRIC_NAMES, "seconds")
    out = ["method," + ",".join(cols)]
    for name, r in table.items():
        out.append(name + "," + ",".join("" if not np.isfinite(r.get(k, np.nan)) else f"{r[k]:.6g}" for k in cols))
    return "\n".join(out) + "\n"
