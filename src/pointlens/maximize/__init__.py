"""pointlens.maximize: global explanations by activation maximisation (methods.md §2).

* :func:`maximize` — naive AM, generative AM (latent of a point autoencoder) and FlowAM (activation-flow
  alignment), ``S`` samples optimised as one batch, with a per-step trace;
* :func:`collect_flow` / :class:`FlowStats` — per-class activation flows, collected once and cached;
* :class:`PointAutoencoder`, :func:`train_autoencoder`, :func:`load_autoencoder` — generative AM's autoencoder;
* :func:`am_randomisation` — the cascading-randomisation sanity check for AM;
* :func:`flow_samples_per_class` — one FlowAM sample per class (what ``pointlens demo`` shows).

Metrics of AM outputs live in :mod:`pointlens.metrics.am`. See docs/maximize.md.
"""

from __future__ import annotations

import torch
from torch import nn

from pointlens.maximize.autoencoder import AEConfig, PointAutoencoder, load_autoencoder, train_autoencoder
from pointlens.maximize.core import DEFAULTS, METHODS, AMResult, maximize
from pointlens.maximize.flow import FlowStats, collect_flow, default_flow_layers
from pointlens.maximize.sanity import AMSanityResult, am_randomisation

__all__ = [
    "AEConfig",
    "AMResult",
    "AMSanityResult",
    "DEFAULTS",
    "FlowStats",
    "METHODS",
    "PointAutoencoder",
    "am_randomisation",
    "collect_flow",
    "default_flow_layers",
    "flow_samples_per_class",
    "load_autoencoder",
    "maximize",
    "train_autoencoder",
]


def flow_samples_per_class(model: nn.Module, points, labels, *, num_classes: int | None = None, classes=None,
                           steps: int = 150, num_points: int = 1024, seed: int = 0,
                           flow_stats: FlowStats | None = None, **options) -> tuple[torch.Tensor, list[int]]:
    """One FlowAM sample per class, e.g. for a demo gallery.

    Args:
        model: classifier ``(B, N, 3) -> (B, K)``.
        points: ``(M, N', 3)`` real training clouds (activation flows and the data box come from them).
        labels: ``(M,)`` their classes.
        num_classes: ``K`` (default ``max(labels) + 1``).
        classes: class indices to synthesise (default every class with real instances).
        steps: optimisation steps per class.
        num_points: points per synthesised cloud.
        seed: seed; class ``c`` uses ``seed + c``.
        flow_stats: precomputed statistics (default: collected here once).
        **options: further FlowAM options (see :func:`maximize`).

    Returns:
        ``(clouds (len(classes), num_points, 3), classes)``.
    """
    import numpy as np

    lab = np.asarray(labels).reshape(-1)
    k = int(num_classes) if num_classes is not None else int(lab.max()) + 1
    stats = flow_stats or collect_flow(model, points, lab, num_classes=k)
    if classes is None:
        classes = [c for c in range(k) if int(stats.counts[c]) > 0]
    out = []
    for c in classes:
        res = maximize(model, int(c), "flow", samples=1, steps=steps, seed=seed + int(c), points=num_points,
                       flow_stats=stats, data=points, data_labels=lab, **options)
        out.append(res.clouds[0])
    return torch.stack(out), [int(c) for c in classes]
