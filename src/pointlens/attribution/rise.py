"""RISE-3D: black-box saliency from random point subsets (Petsiuk et al. 2018, for point clouds)."""

from __future__ import annotations

import torch
from torch import nn

from pointlens.attribution.base import Attribution, cloud_seeds, per_point_draws
from pointlens.ops.removal import CENTRES, cloud_centre, keep_points, shift_to_centre
from pointlens.utils.seed import generator
from pointlens.utils.validate import check_choice, check_float, check_int

OUTPUTS = ("prob", "logit")
ESTIMATORS = ("rise", "centred")


def model_output(logits: torch.Tensor, target: torch.Tensor, output: str) -> torch.Tensor:
    """The explained quantity per row: softmax probability (``"prob"``) or ``"logit"`` of ``target``."""
    if output == "prob":
        logits = logits.softmax(dim=-1)
    return logits.gather(1, target.view(-1, 1)).squeeze(1)


class RISE(Attribution):
    """RISE-3D: ``s_i = sum_m f(x restricted to M_m) M_mi / (n_masks p)`` over random keep-masks ``M_m``.

    ``f`` is the target probability (or logit) and ``p`` the expected fraction of points kept (RISE's
    normalisation). With ``estimator="centred"`` the masks' mean output is subtracted first:
    ``s_i = sum_m (f_m - mean_m f) M_mi / (n_masks p)``. RISE's own estimator contains the term
    ``mean_m f * count_i / (n_masks p)``, where ``count_i`` (how many masks keep point ``i``) is pure sampling
    noise of relative size ``sqrt((1 - p) / (n_masks p))``; when ``f`` varies little between masks (a confident
    model) that term dominates the ranking, and because the masks depend only on the seed and the cloud, it
    survives model randomisation (the sanity check fails with rank correlation near 1). The centred estimator
    removes it (under ``removal="delete"`` its scores sum to 0: positive = keeping the point raises ``f``).

    Masks are drawn per point: cloud ``b`` uses a generator seeded from ``seed`` and its geometry
    (:func:`cloud_seeds`) and the draws are assigned in geometric order
    (:func:`~pointlens.attribution.base.canonical_order`), so the method is deterministic for a seed and
    permutation-consistent.

    Removal:

    * ``"delete"`` (default): every mask keeps exactly ``m = round(p_keep N)`` points (the ``m`` smallest of
      ``N`` uniform keys), the others are DELETED: all perturbed clouds have ``m`` points; ``p = m / N``;
    * ``"shift"``: every point is kept with probability ``p_keep`` (keys < ``p_keep``); removed points are
      SHIFTED onto the centre of the whole cloud (fixed size); ``p = p_keep``.

    Args:
        model: any ``nn.Module`` mapping ``(B, N, 3)`` to logits ``(B, C)``.
        n_masks: number of random masks (default 512).
        p_keep: fraction of points kept, in (0, 1] (default 0.5).
        removal: ``"delete"`` or ``"shift"``.
        centre: ``"median"`` or ``"mean"`` (for ``removal="shift"``).
        output: ``"prob"`` (default, as RISE) or ``"logit"``.
        estimator: ``"rise"`` (default, Petsiuk et al.) or ``"centred"`` (mean output subtracted, see above).
        seed: random seed.
        batch_size: perturbed clouds per forward pass (default 128).

    SHAPES:
        ``attribute((B, N, 3), target) -> (B, N)``; ``masks((B, N, 3)) -> (B, n_masks, N)`` bool keep-masks.
    """

    name = "rise"
    default_batch_size = 128

    def __init__(self, model: nn.Module, *, n_masks: int = 512, p_keep: float = 0.5, removal: str = "delete",
                 centre: str = "median", output: str = "prob", estimator: str = "rise", seed: int = 0, **kwargs):
        super().__init__(model, **kwargs)
        self.n_masks = check_int("n_masks", n_masks, minimum=1)
        self.p_keep = check_float("p_keep", p_keep, minimum=0.0, strict_min=True, maximum=1.0)
        self.removal = check_choice("removal", removal, ("delete", "shift"))
        self.centre = check_choice("centre", centre, CENTRES)
        self.output = check_choice("output", output, OUTPUTS)
        self.estimator = check_choice("estimator", estimator, ESTIMATORS)
        self.seed = check_int("seed", seed)

    def kept_count(self, n: int) -> int:
        """Points kept by every mask under ``removal="delete"`` for clouds of ``n`` points."""
        return min(n, max(1, round(self.p_keep * n)))

    def masks(self, points: torch.Tensor) -> torch.Tensor:
        """The keep-masks used for ``points`` ``(B, N, 3)``: ``(B, n_masks, N)`` bool, True = kept."""
        b, n, _ = points.shape
        seeds = cloud_seeds(points, self.seed)
        keys = torch.stack([torch.rand(n, self.n_masks, generator=generator(seeds[i]),
                                       dtype=torch.float64) for i in range(b)])
        keys = per_point_draws(points.detach().cpu(), keys).transpose(1, 2)  # (B, M, N)
        if self.removal == "shift":
            keep = keys < self.p_keep
        else:
            m = self.kept_count(n)
            keep = torch.zeros_like(keys, dtype=torch.bool)
            keep.scatter_(2, keys.topk(m, dim=2, largest=False).indices, True)
        return keep.to(points.device)

    def _attribute(self, x, target):
        t = self._predict(x, target)
        b, n, d = x.shape
        keep = self.masks(x)
        p = self.kept_count(n) / n if self.removal == "delete" else self.p_keep
        scores = torch.zeros(b, n, dtype=x.dtype, device=x.device)
        ar = torch.arange(n, device=x.device)
        with torch.no_grad():
            for j in range(b):
                total = torch.zeros((), dtype=x.dtype, device=x.device)
                centre = cloud_centre(x[j:j + 1], self.centre)
                for s in range(0, self.n_masks, self.batch_size):
                    k = keep[j, s:s + self.batch_size]
                    base = x[j:j + 1].expand(k.shape[0], n, d)
                    if self.removal == "delete":
                        idx = ar.expand(k.shape[0], n)[k].view(k.shape[0], -1)
                        clouds = keep_points(base, idx)
                    else:
                        clouds = shift_to_centre(base, ~k, centre.expand(k.shape[0], 1, d))
                    f = model_output(self._forward(clouds), t[j].expand(k.shape[0]), self.output)
                    scores[j] += (f.unsqueeze(1) * k.to(x.dtype)).sum(0)
                    total += f.sum()
                if self.estimator == "centred":
                    scores[j] -= total / self.n_masks * keep[j].sum(0).to(x.dtype)
        return scores / (self.n_masks * p)
