"""Metrics of activation-maximisation outputs (Tan, WACV 2023, with FlowAM's set-level FID; methods.md §2a).

All metrics are per class: ``clouds (S, N, 3)`` are the samples synthesised for one target class, ``real
(M, N', 3)`` that class's real training instances.

* :func:`success_rate` — share of samples the explained classifier assigns to the target.
* :func:`chamfer_to_real` — per sample, the mean plain Chamfer distance (pointlens.metrics.shape "plain":
  Euclidean, mean each way, the two directions averaged) to its ``k = 5`` nearest real instances.
* :func:`frechet_distance` / :func:`fid` — SET-level Fréchet distance between Gaussian fits of a separate
  reference classifier's global features of the samples and of the real instances (one number per class; the
  original per-sample FID is degenerate). ``||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})`` with the
  unbiased covariances; the trace of the matrix square root is computed as the sum of the square roots of the
  eigenvalues of ``S_a^{1/2} S_b S_a^{1/2}`` (symmetric PSD, so singular covariances — fewer samples than
  feature dimensions, the usual case here — are exact instead of the complex ``sqrtm`` residue).
* :func:`m_is` — modified inception score (Gurumurthy et al. 2017) within the class:
  ``exp(mean_{i,j} KL(p(y|x_i) || p(y|x_j)))`` over all ordered pairs of samples (``i = j`` included, KL 0).
* :func:`pcams` — ``m-IS + (-ln FID - ln CD) / 2``.
* :func:`diversity` — mean plain Chamfer over the unordered pairs of samples.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pointlens.errors import DataError, bad_argument
from pointlens.metrics.shape import chamfer_distance
from pointlens.models.hooks import capture, get_layer, model_device, preserve_model_state
from pointlens.utils.validate import as_points, check_int

__all__ = [
    "am_class_metrics",
    "chamfer_to_real",
    "diversity",
    "fid",
    "frechet_distance",
    "global_features",
    "m_is",
    "nearest_real",
    "pcams",
    "success_rate",
]


def _predict(model: nn.Module, clouds: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    dev = model_device(model)
    out = []
    with preserve_model_state(model), torch.no_grad():
        model.eval()
        for s in range(0, len(clouds), batch_size):
            out.append(model(clouds[s:s + batch_size].to(dev)).float().cpu())
    return torch.cat(out)


def success_rate(model: nn.Module, clouds, target: int) -> float:
    """Share of ``clouds (S, N, 3)`` that ``model`` (eval mode) classifies as ``target``."""
    pts = as_points(clouds)
    return float((_predict(model, pts).argmax(1) == int(target)).float().mean())


def _pairwise_chamfer(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(S, M)`` plain Chamfer of every sample of ``a (S, N, 3)`` with every cloud of ``b (M, N', 3)``."""
    out = torch.empty(len(a), len(b), dtype=torch.float64)
    for i in range(len(a)):
        out[i] = chamfer_distance(a[i:i + 1].expand(len(b), -1, -1), b, backend="torch").double().cpu()
    return out


def nearest_real(clouds, real, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` real instances nearest (plain Chamfer) to each sample.

    Args:
        clouds: ``(S, N, 3)`` samples.
        real: ``(M, N', 3)`` real instances of the class, ``M >= k``.
        k: neighbours.

    Returns:
        ``(distances (S, k) float64 ascending, indices (S, k) long into real)``.

    Raises:
        DataError: fewer than ``k`` real instances.
    """
    a = as_points(clouds, "clouds")
    b = as_points(real, "real")
    k = check_int("k", k, minimum=1)
    if len(b) < k:
        raise DataError(f"the class has {len(b)} real instance(s) but k={k} nearest are needed; "
                        f"use a smaller --k (at most {len(b)}) or data with more instances of the class")
    d = _pairwise_chamfer(a, b)
    v, i = d.topk(k, dim=1, largest=False)
    return v, i


def chamfer_to_real(clouds, real, k: int = 5) -> torch.Tensor:
    """``(S,)`` mean plain Chamfer of each sample to its ``k`` nearest real instances (lower = more realistic)."""
    return nearest_real(clouds, real, k)[0].mean(1)


def frechet_distance(feat_a, feat_b) -> float:
    """Fréchet distance between the Gaussian fits of two feature sets.

    Args:
        feat_a: ``(n_a, D)`` features, ``n_a >= 2``.
        feat_b: ``(n_b, D)`` features, ``n_b >= 2``.

    Returns:
        ``||mu_a - mu_b||^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^{1/2})`` (float64; >= 0 up to rounding),
        unbiased covariances; exact for singular covariances (see the module docstring).
    """
    a = np.asarray(feat_a.detach().cpu() if isinstance(feat_a, torch.Tensor) else feat_a, dtype=np.float64)
    b = np.asarray(feat_b.detach().cpu() if isinstance(feat_b, torch.Tensor) else feat_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise bad_argument("features", f"shapes {a.shape} and {b.shape}", "(n_a, D) and (n_b, D) with the same D")
    if len(a) < 2 or len(b) < 2:
        raise bad_argument("features", f"{len(a)} and {len(b)} rows", "at least 2 rows each (a covariance)")
    mu = a.mean(0) - b.mean(0)
    sa = np.atleast_2d(np.cov(a, rowvar=False))
    sb = np.atleast_2d(np.cov(b, rowvar=False))
    w, v = np.linalg.eigh(sa)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root_a @ sb @ root_a
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    tr_sqrt = float(np.sqrt(np.clip(ev, 0, None)).sum())
    return float(mu @ mu + np.trace(sa) + np.trace(sb) - 2.0 * tr_sqrt)


def _feature_layer(model: nn.Module, layer: str | None) -> str:
    if layer is not None:
        get_layer(model, layer)
        return layer
    names = dict(model.named_modules())
    if "pool" in names:
        return "pool"
    lin = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not lin:
        raise bad_argument("layer", None, "the name of the reference classifier's global-feature layer")
    return lin[-1]


def global_features(model: nn.Module, clouds, *, layer: str | None = None, batch_size: int = 64) -> torch.Tensor:
    """Global features of a (reference) classifier: the output of ``layer`` (default ``"pool"``, pointlens
    models' global max-pool; otherwise the INPUT of the last ``Linear``). ``(S, N, 3) -> (S, D)`` float64."""
    pts = as_points(clouds)
    name = _feature_layer(model, layer)
    use_input = layer is None and name != "pool"
    dev = model_device(model)
    out = []
    with preserve_model_state(model), torch.no_grad():
        model.eval()
        for s in range(0, len(pts), batch_size):
            with capture(model, name, detach=True) as acts:
                model(pts[s:s + batch_size].to(dev))
            f = acts[name].input if use_input else acts[name].output
            out.append(f.reshape(f.shape[0], -1).double().cpu())
    return torch.cat(out)


def fid(reference: nn.Module, clouds, real, *, layer: str | None = None) -> float:
    """Set-level FID of the samples ``(S, N, 3)`` against the real instances ``(M, N', 3)`` of one class in the
    reference classifier's global-feature space (:func:`global_features`)."""
    return frechet_distance(global_features(reference, clouds, layer=layer),
                            global_features(reference, real, layer=layer))


def m_is(probs) -> float:
    """Modified inception score of one class's samples.

    Args:
        probs: ``(S, K)`` class probabilities (rows sum to 1) of the samples.

    Returns:
        ``exp(mean_{i,j} KL(p_i || p_j))`` over all ``S^2`` ordered pairs (>= 1; 1 when all rows are equal).
    """
    p = torch.as_tensor(probs, dtype=torch.float64)
    if p.dim() != 2 or len(p) < 1:
        raise bad_argument("probs", tuple(p.shape), "(S, K) probabilities")
    lp = p.clamp_min(1e-30).log()
    # KL(p_i || p_j) = sum_k p_ik (log p_ik - log p_jk)
    kl = (p * lp).sum(1)[:, None] - p @ lp.T
    return float(torch.exp(kl.mean()))


def pcams(m_is_value: float, fid_value: float, chamfer_value: float) -> float:
    """PCAMS = m-IS + (-ln FID - ln CD) / 2 (higher is better); NaN when FID or CD is not positive."""
    if not (fid_value > 0 and chamfer_value > 0):
        return float("nan")
    return float(m_is_value + (-np.log(fid_value) - np.log(chamfer_value)) / 2.0)


def diversity(clouds) -> float:
    """Mean plain Chamfer distance over the unordered pairs of samples ``(S, N, 3)``; NaN for one sample."""
    pts = as_points(clouds)
    s = len(pts)
    if s < 2:
        return float("nan")
    d = _pairwise_chamfer(pts, pts)
    iu = torch.triu_indices(s, s, 1)
    return float(d[iu[0], iu[1]].mean())


def am_class_metrics(model: nn.Module, clouds, target: int, real, *, reference: nn.Module | None = None,
                     k: int = 5, feature_layer: str | None = None) -> dict:
    """Every AM metric of one class's samples.

    Args:
        model: the explained classifier (success rate).
        clouds: ``(S, N, 3)`` samples for ``target``.
        target: class index.
        real: ``(M, N', 3)`` real training instances of the class (``M >= k``).
        reference: a DIFFERENT classifier for FID and m-IS (None: those, and PCAMS, are NaN).
        k: nearest real instances for the Chamfer.
        feature_layer: the reference's global-feature layer (see :func:`global_features`).

    Returns:
        ``{"success", "chamfer", "fid", "m_is", "pcams", "diversity"}`` floats, plus ``"chamfer_per_sample"``.
    """
    pts = as_points(clouds)
    cd = chamfer_to_real(pts, real, k)
    out = {"success": success_rate(model, pts, target), "chamfer": float(cd.mean())}
    if reference is not None and len(pts) >= 2:
        out["fid"] = fid(reference, pts, real, layer=feature_layer)
        out["m_is"] = m_is(_predict(reference, pts).softmax(1))
        out["pcams"] = pcams(out["m_is"], out["fid"], out["chamfer"])
    else:
        out.update(fid=float("nan"), m_is=float("nan"), pcams=float("nan"))
    out["diversity"] = diversity(pts)
    out["chamfer_per_sample"] = [float(v) for v in cd]
    return out
