"""The random baseline: uniform random scores, deterministic for a seed."""

from __future__ import annotations

import torch
from torch import nn

from pointlens.attribution.base import Attribution, cloud_seeds, per_point_draws
from pointlens.utils.seed import generator
from pointlens.utils.validate import check_int


class RandomAttribution(Attribution):
    """Uniform random scores in ``[0, 1)``: the baseline every method should beat.

    The model is only called (once, on one cloud) to range-check an explicit ``target``.

    Cloud ``b`` uses a generator seeded from ``seed`` and its geometry
    (:func:`cloud_seeds`); the draws are assigned to the points in geometric
    order (:func:`~pointlens.attribution.base.canonical_order`), so permuting a cloud permutes its scores.

    Args:
        model: the model (unused; kept for the common API).
        seed: random seed.

    SHAPES:
        ``attribute((B, N, 3), target) -> (B, N)``.
    """

    name = "random"

    def __init__(self, model: nn.Module, *, seed: int = 0, **kwargs):
        super().__init__(model, **kwargs)
        self.seed = check_int("seed", seed)

    def _attribute(self, x, target):
        b, n, _ = x.shape
        if target is not None:  # one forward pass of one cloud, only to range-check the target
            with torch.no_grad():
                classes = self._forward(x[:1]).shape[1]
            self._resolve(torch.zeros(b, classes, device=x.device), target)
        seeds = cloud_seeds(x, self.seed)
        draws = torch.stack([torch.rand(n, generator=generator(seeds[i]), dtype=torch.float64)
                             for i in range(b)])
        return per_point_draws(x.detach().cpu(), draws).to(device=x.device, dtype=x.dtype)
