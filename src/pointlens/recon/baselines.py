"""Recognition baselines of the reconstruction study: K-means clustering with medoids, voxel-IoU similarity,
classical multidimensional scaling, nearest-neighbour retrieval and the oracle nearest neighbour.

Everything is plain numpy / torch written here (no scikit-learn).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from pointlens.errors import bad_argument
from pointlens.utils.validate import check_int


class KMeansResult(NamedTuple):
    """Result of :func:`kmeans`.

    Attributes:
        centers: ``(K, D)`` float64 cluster centres.
        labels: ``(M,)`` int64 cluster of every row (the nearest centre).
        inertia: sum of squared distances of the rows to their centres.
        history: inertia after every Lloyd iteration (non-increasing).
    """

    centers: np.ndarray
    labels: np.ndarray
    inertia: float
    history: list


class MDSResult(NamedTuple):
    """Result of :func:`classical_mds`.

    Attributes:
        embedding: ``(M, dim)`` float64 coordinates whose Euclidean distances approximate the input distances.
        eigenvalues: ``(M,)`` eigenvalues of the double-centred Gram matrix, descending.
        explained: share of the positive eigenvalue mass kept by the ``dim`` leading ones.
    """

    embedding: np.ndarray
    eigenvalues: np.ndarray
    explained: float


def _as_matrix(x, name: str) -> np.ndarray:
    a = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0:
        raise bad_argument(name, f"shape {a.shape}", "a non-empty 2-D array (M, D)")
    if not np.isfinite(a).all():
        raise bad_argument(name, "non-finite values", "finite numbers")
    return a


def squared_distances(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``(M, K)`` between rows of ``x (M, D)`` and ``centers (K, D)``."""
    d = (x * x).sum(1)[:, None] - 2.0 * x @ centers.T + (centers * centers).sum(1)[None, :]
    return np.maximum(d, 0.0)


def assign(x, centers) -> np.ndarray:
    """Index ``(M,)`` of the nearest centre for every row of ``x (M, D)`` (ties -> lowest index)."""
    return squared_distances(_as_matrix(x, "x"), _as_matrix(centers, "centers")).argmin(1)


def kmeans(
    x, k: int, *, seed: int = 0, n_init: int = 4, max_iter: int = 100, tol: float = 0.0
) -> KMeansResult:
    """K-means (Lloyd's algorithm) with k-means++ seeding, best of ``n_init`` runs; deterministic for a seed.

    An empty cluster is re-seeded with the row farthest from its centre, so all ``k`` clusters stay non-empty
    when ``M >= k`` distinct rows exist.

    Args:
        x: ``(M, D)`` rows to cluster (e.g. flattened voxel grids).
        k: number of clusters, ``1 <= k <= M``.
        seed: random seed of the k-means++ initialisations.
        n_init: independent initialisations; the run with the lowest inertia is returned.
        max_iter: maximum Lloyd iterations per run.
        tol: stop a run when the inertia decreases by less than ``tol`` (relative).

    Returns:
        :class:`KMeansResult` (``centers (K, D)``, ``labels (M,)``, ``inertia``, ``history`` of the best run).
    """
    x = _as_matrix(x, "x")
    k = check_int("k", k, minimum=1, maximum=len(x))
    n_init = check_int("n_init", n_init, minimum=1)
    max_iter = check_int("max_iter", max_iter, minimum=1)
    rng = np.random.default_rng(int(seed))
    best = None
    for _ in range(n_init):
        res = _kmeans_once(x, k, rng, max_iter, float(tol))
        if best is None or res.inertia < best.inertia:
            best = res
    return best


def _kmeans_once(x: np.ndarray, k: int, rng: np.random.Generator, max_iter: int, tol: float) -> KMeansResult:
    m = len(x)
    centers = np.empty((k, x.shape[1]))
    centers[0] = x[rng.integers(m)]
    closest = squared_distances(x, centers[:1])[:, 0]
    for j in range(1, k):
        total = closest.sum()
        i = rng.choice(m, p=closest / total) if total > 0 else rng.integers(m)
        centers[j] = x[i]
        closest = np.minimum(closest, squared_distances(x, centers[j : j + 1])[:, 0])
    history: list[float] = []
    for _ in range(max_iter):
        d = squared_distances(x, centers)
        labels = d.argmin(1)
        inertia = float(d[np.arange(m), labels].sum())
        history.append(inertia)
        counts = np.bincount(labels, minlength=k)
        onehot = np.zeros((k, m))
        onehot[labels, np.arange(m)] = 1.0
        sums = onehot @ x
        new = centers.copy()
        nonempty = counts > 0
        new[nonempty] = sums[nonempty] / counts[nonempty, None]
        if not nonempty.all():
            far = np.argsort(-d[np.arange(m), labels], kind="stable")
            for j, i in zip(np.flatnonzero(~nonempty), far):
                new[j] = x[i]
        converged = np.allclose(new, centers)
        centers = new
        if converged or (len(history) > 1 and history[-2] - history[-1] <= tol * max(history[-2], 1e-300)):
            break
    d = squared_distances(x, centers)
    labels = d.argmin(1)
    inertia = float(d[np.arange(m), labels].sum())
    if inertia < history[-1]:
        history.append(inertia)
    return KMeansResult(centers, labels.astype(np.int64), inertia, history)


def cluster_medoids(x, labels, k: int) -> np.ndarray:
    """The medoid of every cluster: the member with the smallest sum of Euclidean distances to its cluster.

    Args:
        x: ``(M, D)`` rows.
        labels: ``(M,)`` cluster indices in ``[0, k)``.
        k: number of clusters.

    Returns:
        ``(k,)`` int64 row indices into ``x`` (-1 for an empty cluster).
    """
    x = _as_matrix(x, "x")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (len(x),):
        raise bad_argument("labels", f"shape {labels.shape}", f"({len(x)},)")
    out = np.full(k, -1, dtype=np.int64)
    for j in range(k):
        members = np.flatnonzero(labels == j)
        if len(members):
            d = np.sqrt(squared_distances(x[members], x[members]))
            out[j] = members[d.sum(1).argmin()]
    return out


def pairwise_voxel_iou(a, b=None, *, chunk: int = 512) -> torch.Tensor:
    """Intersection over union of every pair of occupancy grids, by matrix products.

    Args:
        a: ``(A, ...)`` bool occupancy grids (any trailing shape, flattened).
        b: ``(B, ...)`` bool grids with the same trailing shape, or None for ``b = a``.
        chunk: rows of ``a`` per matrix product (bounds memory).

    Returns:
        ``(A, B)`` float32 IoU in ``[0, 1]``; two empty grids have IoU 1.
    """
    a = torch.as_tensor(a)
    b = a if b is None else torch.as_tensor(b)
    if a.dim() < 2 or b.dim() < 2 or a.shape[1:] != b.shape[1:]:
        raise bad_argument(
            "a/b",
            f"shapes {tuple(a.shape)} and {tuple(b.shape)}",
            "grids (A, ...) and (B, ...) of the same grid shape",
        )
    af, bf = a.reshape(len(a), -1).float(), b.reshape(len(b), -1).float()
    na, nb = af.sum(1), bf.sum(1)
    rows = []
    for i in range(0, len(af), chunk):
        inter = af[i : i + chunk] @ bf.T
        union = na[i : i + chunk, None] + nb[None, :] - inter
        rows.append(torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(inter)))
    return torch.cat(rows) if rows else torch.zeros(0, len(bf))


def classical_mds(distances, dim: int) -> MDSResult:
    """Classical (Torgerson) multidimensional scaling.

    ``G = -1/2 J D^2 J`` with ``J = I - 11^T / M``; the embedding is ``V_k sqrt(max(L_k, 0))`` for the ``dim``
    largest eigenpairs ``(L, V)`` of ``G`` (``numpy.linalg.eigh``). For Euclidean distances of a
    configuration of rank ``<= dim`` it recovers the configuration up to a rigid motion.

    Args:
        distances: ``(M, M)`` symmetric non-negative distances with a zero diagonal.
        dim: embedding dimension, ``1 <= dim <= M``.

    Returns:
        :class:`MDSResult` with ``embedding (M, dim)``.
    """
    d = _as_matrix(distances, "distances")
    m = len(d)
    if d.shape != (m, m):
        raise bad_argument("distances", f"shape {d.shape}", "a square (M, M) matrix")
    if not np.allclose(d, d.T, atol=1e-8) or (d < 0).any():
        raise bad_argument(
            "distances", "a non-symmetric or negative matrix", "symmetric non-negative distances"
        )
    dim = check_int("dim", dim, minimum=1, maximum=m)
    sq = d**2
    g = -0.5 * (sq - sq.mean(0, keepdims=True) - sq.mean(1, keepdims=True) + sq.mean())
    vals, vecs = np.linalg.eigh((g + g.T) / 2)
    order = np.argsort(-vals, kind="stable")
    vals, vecs = vals[order], vecs[:, order]
    # fix each eigenvector's sign (largest |entry| positive) so the embedding is deterministic
    signs = np.sign(vecs[np.abs(vecs).argmax(0), np.arange(m)])
    vecs = vecs * np.where(signs == 0, 1.0, signs)
    kept = np.maximum(vals[:dim], 0.0)
    positive = np.maximum(vals, 0.0).sum()
    explained = float(kept.sum() / positive) if positive > 0 else 0.0
    return MDSResult(vecs[:, :dim] * np.sqrt(kept), vals, explained)


def nearest_rows(queries, reference) -> np.ndarray:
    """Index ``(Q,)`` of the nearest (Euclidean) row of ``reference (M, D)`` for each row of
    ``queries (Q, D)``."""
    return assign(queries, reference)


def oracle_nearest(test_voxels, train_voxels, *, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Oracle nearest neighbour: for every test grid, the training grid with the highest voxel IoU.

    Args:
        test_voxels: ``(T, ...)`` bool ground-truth grids.
        train_voxels: ``(M, ...)`` bool training grids.
        chunk: test rows per matrix product.

    Returns:
        ``(index (T,) int64, iou (T,) float32)``: the best training shape (lowest index on ties) and its IoU.
    """
    iou = pairwise_voxel_iou(test_voxels, train_voxels, chunk=chunk).numpy()
    idx = iou.argmax(1).astype(np.int64)
    return idx, iou[np.arange(len(iou)), idx]
