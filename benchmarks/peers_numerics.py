"""Hand-written numerics vs scikit-learn / scipy, measured on the inputs pointlens gives them (used by
``bench_peers``; ``python benchmarks/peers_numerics.py [--quick]`` runs it alone).

* K-means of the reconstruction study (``recon.baselines.kmeans``, Lloyd + k-means++, best of 4) vs
  ``sklearn.cluster.KMeans`` (Lloyd, greedy k-means++, best of 4): inertia and time on the study's own descriptors
  (ShapeParts training shapes voxelised at 16^3, K = 50).
* Classical MDS (``recon.baselines.classical_mds``) vs ``sklearn.manifold.ClassicalMDS`` (and why not
  ``sklearn.manifold.MDS``, which is SMACOF metric MDS) on the study's voxel-IoU distances (16 dimensions).
* AUROC (``metrics.localisation.auroc``, batched over clouds) vs ``sklearn.metrics.roc_auc_score`` per cloud.
* The percentile bootstrap (``stats.bootstrap_mean_ci``) vs ``scipy.stats.bootstrap`` (percentile and BCa):
  endpoints on benchmark-like samples, time, and the coverage of the mean over 400 simulated samples of 32
  skewed values.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np
import torch


def _median_time(fn, repeats: int) -> float:
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def _descriptors(quick: bool):
    from pointlens.data import load_dataset
    from pointlens.metrics.shape import voxelize_points
    from pointlens.recon.study import CUBE_BOUNDS

    ds = load_dataset("shapeparts:n=200" if quick else "shapeparts", split="train", num_points=1024)
    pts = torch.as_tensor(ds.points)
    # the study works in the unit cube; normalise each cloud into it
    lo, hi = pts.amin(1, keepdim=True), pts.amax(1, keepdim=True)
    pts = (pts - lo) / (hi - lo).amax(-1, keepdim=True).clamp_min(1e-9) - 0.5
    vox16 = voxelize_points(pts, 8 if quick else 16, CUBE_BOUNDS)
    vox32 = voxelize_points(pts, 16 if quick else 32, CUBE_BOUNDS)
    return vox16.reshape(len(pts), -1).numpy().astype(np.float64), vox32, len(pts)


def run(quick: bool = False) -> list[str]:
    from scipy import stats
    from sklearn.cluster import KMeans
    from sklearn.manifold import ClassicalMDS
    from sklearn.metrics import roc_auc_score
    from threadpoolctl import threadpool_limits

    from pointlens.metrics.localisation import auroc
    from pointlens.recon.baselines import classical_mds, kmeans, pairwise_voxel_iou
    from pointlens.stats import bootstrap_mean_ci

    lines = ["### Hand-written numerics vs scikit-learn / scipy", ""]
    reps = 1 if quick else 3
    with threadpool_limits(1):
        desc, vox, m = _descriptors(quick)
        k = 4 if quick else 50
        seeds = range(2 if quick else 3)
        ours, t_ours, sk, t_sk = [], [], [], []
        for s in seeds:                       # fits alternate, so both see the same machine load
            t0 = time.perf_counter()
            ours.append(kmeans(desc, k, seed=s).inertia)
            t_ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            sk.append(KMeans(k, init="k-means++", n_init=4, algorithm="lloyd", random_state=s).fit(desc).inertia_)
            t_sk.append(time.perf_counter() - t0)
        lines += [
            f"K-means on the study's kind of descriptors ({m} ShapeParts training shapes voxelised at "
            f"{round(desc.shape[1] ** (1 / 3))}^3 = {desc.shape[1]} voxels, K = {k}, best of 4 initialisations, one "
            f"thread, seeds {list(seeds)}):", "",
            "| implementation | inertia (min / median / max over seeds) | seconds per fit (median) |", "|---|---|---|",
            f"| pointlens `kmeans` | {min(ours):.1f} / {statistics.median(ours):.1f} / {max(ours):.1f} | "
            f"{statistics.median(t_ours):.2f} |",
            f"| `sklearn.cluster.KMeans(algorithm='lloyd')` | {min(sk):.1f} / {statistics.median(sk):.1f} / "
            f"{max(sk):.1f} | {statistics.median(t_sk):.2f} |",
            "",
        ]
        dist = 1.0 - pairwise_voxel_iou(vox).double().numpy()
        dist = (dist + dist.T) / 2
        np.fill_diagonal(dist, 0.0)
        dim = 4 if quick else 16
        mine = classical_mds(dist, dim)
        skm = ClassicalMDS(n_components=dim, metric="precomputed").fit(dist)
        t_mine = _median_time(lambda: classical_mds(dist, dim), reps)
        t_skm = _median_time(lambda: ClassicalMDS(n_components=dim, metric="precomputed").fit(dist), reps)
        n_neg = int((mine.eigenvalues < 0).sum())
        lines += [
            f"Classical MDS of the study's voxel-IoU distances ({m} shapes, {dim} dimensions): max |pointlens - "
            f"sklearn `ClassicalMDS`| over the embedding = {np.abs(mine.embedding - skm.embedding_).max():.1e} "
            f"(same double centring, `eigh`, sign convention); {t_mine:.2f} s vs {t_skm:.2f} s per fit. "
            f"The matrix has {n_neg} negative eigenvalues of {m} (IoU distance is not Euclidean).", "",
        ]
        g = torch.Generator().manual_seed(0)
        b, n = (8, 256) if quick else (200, 1024)
        s = torch.randn(b, n, generator=g, dtype=torch.float64)
        s[:, : n // 4] = torch.round(s[:, : n // 4])          # ties, as random/occlusion scores have
        msk = torch.rand(b, n, generator=g) < 0.2
        mine_auc = auroc(s, msk).numpy()
        sk_auc = np.array([roc_auc_score(msk[i].numpy(), s[i].numpy()) for i in range(b)])
        t_a = _median_time(lambda: auroc(s, msk), reps * 3)
        t_s = _median_time(lambda: [roc_auc_score(msk[i].numpy(), s[i].numpy()) for i in range(b)], reps)
        lines += [
            f"AUROC, {b} clouds of {n} points with tied scores: max |pointlens - `roc_auc_score`| = "
            f"{np.abs(mine_auc - sk_auc).max():.1e}; batched pointlens {t_a * 1e3:.1f} ms vs {t_s * 1e3:.0f} ms "
            f"for the per-cloud loop ({t_s / t_a:.0f}x).", "",
        ]
        rng = np.random.default_rng(0)
        sample = rng.normal(0.05, 0.1, 32)
        ours_ci = bootstrap_mean_ci(sample, n_boot=2000, seed=0)
        sp = stats.bootstrap((sample,), np.mean, n_resamples=2000, method="percentile", random_state=0)
        bca = stats.bootstrap((sample,), np.mean, n_resamples=2000, method="BCa", random_state=0)
        t_o = _median_time(lambda: bootstrap_mean_ci(sample, n_boot=2000, seed=0), reps * 3)
        t_p = _median_time(lambda: stats.bootstrap((sample,), np.mean, n_resamples=2000, method="percentile",
                                                   random_state=0), reps * 3)
        t_b = _median_time(lambda: stats.bootstrap((sample,), np.mean, n_resamples=2000, method="BCa",
                                                   random_state=0), reps * 3)
        n_sim = 40 if quick else 400
        cover = {"pointlens percentile": 0, "scipy percentile": 0, "scipy BCa": 0}
        true_mean = float(np.exp(0.5))                        # lognormal(0, 1): skewed like per-cloud differences
        for i in range(n_sim):
            x = np.random.default_rng(100 + i).lognormal(0.0, 1.0, 32)
            _, lo, hi, _ = bootstrap_mean_ci(x, n_boot=1000, seed=i)
            cover["pointlens percentile"] += lo <= true_mean <= hi
            for meth, key in (("percentile", "scipy percentile"), ("BCa", "scipy BCa")):
                ci = stats.bootstrap((x,), np.mean, n_resamples=1000, method=meth, random_state=i).confidence_interval
                cover[key] += ci.low <= true_mean <= ci.high
        lines += [
            "Bootstrap interval of a mean (32 values, 2000 resamples):", "",
            "| implementation | interval on one sample | ms per call | coverage of 95 % intervals, "
            f"{n_sim} lognormal samples of 32 |", "|---|---|---|---|",
            f"| pointlens `bootstrap_mean_ci` (percentile) | [{ours_ci[1]:.4f}, {ours_ci[2]:.4f}] | {t_o * 1e3:.2f} | "
            f"{cover['pointlens percentile'] / n_sim:.3f} |",
            f"| `scipy.stats.bootstrap(method='percentile')` | [{sp.confidence_interval.low:.4f}, "
            f"{sp.confidence_interval.high:.4f}] | {t_p * 1e3:.2f} | {cover['scipy percentile'] / n_sim:.3f} |",
            f"| `scipy.stats.bootstrap(method='BCa')` (scipy's default) | [{bca.confidence_interval.low:.4f}, "
            f"{bca.confidence_interval.high:.4f}] | {t_b * 1e3:.2f} | {cover['scipy BCa'] / n_sim:.3f} |",
        ]
    return lines


if __name__ == "__main__":
    print("\n".join(run(quick="--quick" in sys.argv[1:])))
