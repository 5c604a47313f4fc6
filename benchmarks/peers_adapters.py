"""Adapters that let Quantus 0.6 evaluate pointlens point clouds (used by ``bench_peers``; needs the ``peers`` extra).

Quantus sees a batch of point clouds as a channel-first array ``(B, 3, N)`` (3 "channels" = xyz, N "time steps" =
points) and calls a torch model on it; pointlens models map ``(B, N, 3)``. :class:`ChannelFirst` is the transpose
between the two. Explanations reach Quantus as ``(B, 1, N)`` arrays (one score per point, broadcast over xyz).

Two adapters make Quantus perturb POINTS the way pointlens does, so that stochastic metrics can be compared under
matched perturbations:

* :class:`PointIndexModel` + :func:`mark_points`: Quantus is given ``(B, 1, N)`` arrays holding
  ``cloud * N + point`` ids; its perturbation function writes ``-1`` into the chosen ids and the model moves those
  points onto the cloud's median centre (:func:`pointlens.ops.removal.shift_to_centre`), which is exactly
  pointlens' ``removal="shift"``. Quantus' random subsets are then subsets of points, as in pointlens.
* :func:`ball_jitter`: Quantus' perturbation moves every point by an offset drawn uniformly in a ball (numpy RNG),
  the distribution of :func:`pointlens.metrics.robustness.jitter_in_ball`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pointlens.attribution import create_attribution
from pointlens.ops.removal import cloud_centre, shift_to_centre


class ChannelFirst(nn.Module):
    """``(B, 3, N)`` -> logits: transposes to pointlens' ``(B, N, 3)`` and calls ``inner``."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.float().transpose(1, 2))


class PointIndexModel(nn.Module):
    """Model over ``(b, 1, N)`` point-id arrays: row ``r`` holds ``cloud * N + i`` for point ``i`` of ``cloud``, or
    ``-1`` for a point that Quantus "replaced"; those points move to the cloud's median centre before ``inner``."""

    def __init__(self, inner: nn.Module, points: torch.Tensor, centre: str = "median"):
        super().__init__()
        self.inner = inner
        self.points = points
        self.centre = cloud_centre(points, centre)

    def ids(self) -> np.ndarray:
        b, n, _ = self.points.shape
        return (np.arange(b)[:, None] * n + np.arange(n)[None, :]).astype(np.float64)[:, None, :]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.float64)[:, 0, :]
        n = self.points.shape[1]
        cloud = (x.amax(1) // n).long()
        removed = x < 0
        return self.inner(shift_to_centre(self.points[cloud], removed, self.centre[cloud]))


def mark_points(arr: np.ndarray, indices: np.ndarray, **kwargs) -> np.ndarray:
    """Quantus batch perturbation: write ``-1`` (= removed) at ``indices`` ``(B, m)`` of ``arr`` ``(B, F)``."""
    out = np.array(arr, copy=True)
    out[np.arange(len(out))[:, None], indices] = -1.0
    return out


def ball_jitter(arr: np.ndarray, indices: np.ndarray, radius: float = 0.02, **kwargs) -> np.ndarray:
    """Quantus batch perturbation on flattened channel-first clouds ``(B, 3 N)``: every point moves by an offset
    uniform in the ball of ``radius`` (numpy's global RNG, seeded by the caller)."""
    b = arr.shape[0]
    x = np.asarray(arr, dtype=np.float64).reshape(b, 3, -1)
    d = np.random.standard_normal(x.shape)
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    length = radius * np.random.uniform(size=(b, 1, x.shape[2])) ** (1.0 / 3.0)
    return (x + d * length).reshape(b, -1).astype(arr.dtype)


def unwrap(model: nn.Module) -> nn.Module:
    """The pointlens model inside a Quantus-facing wrapper."""
    return model.inner if isinstance(model, (ChannelFirst, PointIndexModel)) else model


def quantus_explain(name: str, **options):
    """A Quantus ``explain_func(model, inputs (B, 3, N), targets) -> (B, 1, N)`` running pointlens' ``name``."""

    def explain(model, inputs, targets, **kwargs):
        x = torch.as_tensor(np.asarray(inputs), dtype=torch.float32).transpose(1, 2).contiguous()
        t = torch.as_tensor(np.asarray(targets), dtype=torch.long).reshape(-1)
        scores = create_attribution(name, unwrap(model), **options).attribute(x, t)
        return scores.detach().to(torch.float64).numpy()[:, None, :]

    return explain


def pointlens_explain(name: str, **options):
    """A pointlens ``explain(model, points (B, N, 3), target) -> (B, N)`` running ``name``."""

    def explain(model, points, target):
        return create_attribution(name, model, **options).attribute(points, target)

    return explain


def reset_modules(model: nn.Module) -> list[str]:
    """Names of the modules Quantus' MPRT re-initialises, in its (forward) order: every module with a
    ``reset_parameters`` method."""
    return [name for name, m in model.named_modules() if hasattr(m, "reset_parameters")]
