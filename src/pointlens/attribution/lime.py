"""LIME-3D: a weighted linear surrogate over k-means segments of the cloud (Ribeiro et al. 2016)."""

from __future__ import annotations

import torch
from torch import nn

from pointlens.attribution.base import Attribution, cloud_seeds
from pointlens.attribution.occlusion import fpss_start
from pointlens.attribution.rise import OUTPUTS, model_output
from pointlens.ops.geometry import farthest_point_sampling, gather_points, knn
from pointlens.ops.removal import CENTRES, cloud_centre, shift_to_centre
from pointlens.utils.seed import generator
from pointlens.utils.validate import check_choice, check_float, check_int


def kmeans_segments(points: torch.Tensor, n_segments: int, iters: int = 10) -> torch.Tensor:
    """Segment every cloud with k-means (Lloyd) seeded by farthest point sampling.

    FPS starts at the point farthest from the cloud's mean, so segment ``j`` is defined by the geometry (the
    ``j``-th FPS seed), not by the point order. Empty clusters keep their previous centre.

    Args:
        points: ``(B, N, 3)``.
        n_segments: number of segments (capped at ``N``).
        iters: Lloyd iterations.

    Returns:
        ``(B, N)`` long segment labels in ``[0, n_segments)``.
    """
    b, n, d = points.shape
    s = min(n_segments, n)
    centres = gather_points(points, farthest_point_sampling(points, s, start=fpss_start(points)))
    labels = knn(points, centres, 1).idx[..., 0]
    for _ in range(iters):
        total = torch.zeros(b, s, d, dtype=points.dtype, device=points.device)
        total.scatter_add_(1, labels.unsqueeze(-1).expand(-1, -1, d), points)
        count = torch.zeros(b, s, dtype=points.dtype, device=points.device)
        count.scatter_add_(1, labels, torch.ones_like(labels, dtype=points.dtype))
        centres = torch.where(count.unsqueeze(-1) > 0, total / count.clamp_min(1).unsqueeze(-1), centres)
        new = knn(points, centres, 1).idx[..., 0]
        if torch.equal(new, labels):
            break
        labels = new
    return labels


def weighted_ridge(z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, ridge: float):
    """Solve ``min_{a,b} sum_k w_k (y_k - b - z_k . a)^2 + ridge ||a||^2`` (intercept not penalised).

    Args:
        z: ``(K, S)`` design matrix; y: ``(K,)`` targets; w: ``(K,)`` non-negative sample weights.
        ridge: L2 penalty ``>= 0``.

    Returns:
        ``(coef (S,), intercept ())`` in float64.
    """
    z, y, w = z.double(), y.double(), w.double()
    sw = w.sum()
    zm = (w.unsqueeze(1) * z).sum(0) / sw
    ym = (w * y).sum() / sw
    zc, yc = z - zm, y - ym
    a = zc.T @ (w.unsqueeze(1) * zc) + ridge * torch.eye(z.shape[1], dtype=z.dtype, device=z.device)
    coef = torch.linalg.lstsq(a, zc.T @ (w * yc)).solution if ridge == 0 else torch.linalg.solve(
        a, zc.T @ (w * yc))
    return coef, ym - zm @ coef


class LIME(Attribution):
    """LIME-3D: fit a weighted ridge model of the target output on which segments are kept.

    The cloud is cut into ``n_segments`` k-means segments (:func:`kmeans_segments`). Sample ``k`` keeps every
    segment with probability ``p_keep`` (sample 0 keeps all of them); removed segments are SHIFTED onto the
    cloud's centre (the kept fraction differs between samples, so deleting would give clouds of different
    sizes). The surrogate ``y ~ b + z . a`` is fitted with weights ``exp(-(1 - kept_fraction)^2 /
    kernel_width^2)`` and L2 penalty ``ridge``; every point gets its segment's coefficient ``a``.
    Segment draws come from a generator seeded from ``seed`` and the cloud's geometry
    (:func:`cloud_seeds`) and are indexed by the
    geometric segment order: deterministic for a seed and permutation-consistent.

    Args:
        model: any ``nn.Module`` mapping ``(B, N, 3)`` to logits ``(B, C)``.
        n_segments: number of segments (default 32, capped at ``N``).
        n_samples: number of perturbed clouds (default 256).
        p_keep: probability of keeping a segment (default 0.5).
        kernel_width: width of the exponential kernel on the removed fraction (default 0.25).
        ridge: L2 penalty of the surrogate (default 1.0).
        kmeans_iters: Lloyd iterations (default 10).
        centre: ``"median"`` or ``"mean"``: where removed points go.
        output: ``"prob"`` (default) or ``"logit"``.
        seed: random seed.
        batch_size: perturbed clouds per forward pass (default 128).

    SHAPES:
        ``attribute((B, N, 3), target) -> (B, N)``; ``surrogate(...)`` returns ``coef (B, S)``,
        ``intercept (B,)``, ``segments (B, N)``.
    """

    name = "lime"
    default_batch_size = 128

    def __init__(self, model: nn.Module, *, n_segments: int = 32, n_samples: int = 256, p_keep: float = 0.5,
                 kernel_width: float = 0.25, ridge: float = 1.0, kmeans_iters: int = 10,
                 centre: str = "median", output: str = "prob", seed: int = 0, **kwargs):
        super().__init__(model, **kwargs)
        self.n_segments = check_int("n_segments", n_segments, minimum=1)
        self.n_samples = check_int("n_samples", n_samples, minimum=2)
        self.p_keep = check_float("p_keep", p_keep, minimum=0.0, maximum=1.0)
        self.kernel_width = check_float("kernel_width", kernel_width, minimum=0.0, strict_min=True)
        self.ridge = check_float("ridge", ridge, minimum=0.0)
        self.kmeans_iters = check_int("kmeans_iters", kmeans_iters, minimum=0)
        self.centre = check_choice("centre", centre, CENTRES)
        self.output = check_choice("output", output, OUTPUTS)
        self.seed = check_int("seed", seed)

    def samples(self, points: torch.Tensor, s: int, device=None) -> torch.Tensor:
        """Segment keep-indicators ``(B, n_samples, S)`` bool for ``points (B, N, 3)`` (row 0 keeps all segments)."""
        seeds = cloud_seeds(points, self.seed)
        z = torch.stack([torch.rand(self.n_samples, s, generator=generator(sd),
                                    dtype=torch.float64) for sd in seeds]) < self.p_keep
        z[:, 0] = True
        return z.to(device)

    def surrogate(self, points, target=None):
        """Fit the surrogate for every cloud.

        Args:
            points: ``(B, N, 3)``; target: None, an int or ``B`` ints.

        Returns:
            ``(coef (B, S) float64, intercept (B,) float64, segments (B, N) long)``.
        """
        return self._run(points, target, self._fit)

    def _fit(self, x, target):
        t = self._predict(x, target)
        b, n, d = x.shape
        seg = kmeans_segments(x, self.n_segments, self.kmeans_iters)
        s = min(self.n_segments, n)
        z = self.samples(x, s, x.device)
        coefs, inters = [], []
        with torch.no_grad():
            for j in range(b):
                centre = cloud_centre(x[j:j + 1], self.centre)
                ys = []
                for st in range(0, self.n_samples, self.batch_size):
                    zk = z[j, st:st + self.batch_size]
                    removed = ~zk[:, seg[j]]  # (K, N)
                    clouds = shift_to_centre(x[j:j + 1].expand(zk.shape[0], n, d), removed,
                                             centre.expand(zk.shape[0], 1, d))
                    ys.append(model_output(self._forward(clouds), t[j].expand(zk.shape[0]), self.output))
                y = torch.cat(ys)
                dist = 1.0 - z[j].double().mean(1)
                w = torch.exp(-(dist ** 2) / self.kernel_width ** 2)
                coef, inter = weighted_ridge(z[j].double(), y, w, self.ridge)
                coefs.append(coef)
                inters.append(inter)
        return torch.stack(coefs), torch.stack(inters), seg

    def _attribute(self, x, target):
        coef, _, seg = self._fit(x, target)
        return torch.gather(coef.to(x.dtype), 1, seg)
