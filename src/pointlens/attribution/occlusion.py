"""Occlusion: exact leave-one-out (with a fast path for max-pool models) and k-NN patch occlusion.

Points are removed by DELETING them (:func:`pointlens.ops.removal.delete_points`): every perturbed cloud
of one batch loses the same number of points, so batches stay rectangular. k-NN occlusion also offers
``removal="shift"`` (patch moved onto the cloud's centre, fixed size).
"""

from __future__ import annotations

import torch
from torch import nn

from pointlens.attribution.base import Attribution, select
from pointlens.errors import InvalidArgumentError, bad_argument
from pointlens.models.hooks import capture, get_layer, resolve_pool_layer
from pointlens.ops.geometry import farthest_point_sampling, knn
from pointlens.ops.removal import CENTRES, cloud_centre, delete_points, shift_to_centre
from pointlens.utils.validate import check_choice, check_int

LAYOUTS = ("BCN", "BNC")


def resolve_layer_options(model: nn.Module, layer, use, layout, *, method: str, option: str, what: str):
    """The layer a layer-based method hooks, and how to read it: the one resolution for critical points and
    Grad-CAM.

    Args:
        model: the explained model.
        layer: a dotted layer name, or None to take the model's ``pool_layer`` or detect the layer before its
            global pool (:func:`pointlens.models.hooks.resolve_pool_layer`).
        use: ``"input"`` / ``"output"`` of that layer, or None for what the resolution found.
        layout: ``"BCN"`` / ``"BNC"`` of its per-point features, or None for what the resolution found.
        method: the method's name, ``option``: its option's name, ``what``: what the layer must be (messages).

    Returns:
        ``(pool, use, layout)`` with ``pool`` the resolved :class:`~pointlens.models.hooks.PoolLayer`.

    Raises:
        InvalidArgumentError: a layer that is not a name, or no layer found (one line naming the option).
    """
    if layer is not None and not isinstance(layer, str):
        raise bad_argument(option, layer, what)
    try:
        pool = resolve_pool_layer(model, layer)
    except InvalidArgumentError as e:
        raise InvalidArgumentError(f"{method}: {e} (option {option}=NAME)") from None
    use = check_choice("use", use if use is not None else pool.use, ("input", "output"))
    layout = check_choice("layout", layout if layout is not None else pool.layout, LAYOUTS)
    return pool, use, layout


def _to_bcn(feats: torch.Tensor, layout: str, n: int, layer: str,
            argname: str = "pool_layer") -> torch.Tensor:
    """Per-point activations of ``layer`` in ``layout`` -> ``(B, C, N)``, with clear errors."""
    if not isinstance(feats, torch.Tensor) or feats.dim() != 3:
        shape = tuple(feats.shape) if isinstance(feats, torch.Tensor) else type(feats).__name__
        raise bad_argument(argname, f"layer {layer!r} with activations {shape}",
                           "a layer with per-point activations (B, C, N)")
    if layout == "BNC":
        feats = feats.transpose(1, 2)
    if feats.shape[2] != n:
        if feats.shape[1] == n:
            other = "BNC" if layout == "BCN" else "BCN"
            raise bad_argument("layout", f"{layout!r} but layer {layer!r} has activations "
                               f"{tuple(feats.shape)} for {n} points", f"the layer's real layout ({other!r})")
        raise bad_argument(argname, f"layer {layer!r} with activations {tuple(feats.shape)} for {n} points",
                           "a layer with one activation per input point, (B, C, N) or (B, N, C)")
    return feats


def fpss_start(points: torch.Tensor) -> torch.Tensor:
    """Geometric FPS start: the index of each cloud's point farthest from its mean ``(B, N, 3) -> (B,)``."""
    return (points - points.mean(1, keepdim=True)).norm(dim=-1).argmax(dim=1)


class Occlusion(Attribution):
    """Exact leave-one-out: ``s_i = logit_t(x) - logit_t(x without point i)`` (the point is deleted).

    Two ways to compute the same numbers:

    * brute force: the ``N`` clouds of ``N - 1`` points are built and classified in chunks of ``batch_size``;
    * fast path, for models whose points meet only through ONE max-pool (``model.pointwise_until_pool`` is
      True, or ``pool_layer=`` and ``head=`` are given explicitly): the per-point features at the pool's input
      ``(B, C, N)`` are captured with a hook, the top-2 values of every channel are taken, and the head is run
      once per point that is the arg-max of at least one channel, on the pooled vector with those channels
      replaced by their second value (points that are the arg-max of no channel score exactly 0; ties give 0).
      The pooled output is checked to equal the channel maxima and ``head(pooled)`` the logits; otherwise
      ``fast="auto"`` falls back to brute force and ``fast=True`` raises.

    Args:
        model: any ``nn.Module`` mapping ``(B, N, 3)`` to logits ``(B, C)``.
        fast: ``"auto"`` (fast path when available), ``True`` (require it) or ``False`` (brute force).
        pool_layer: dotted name of the global max-pool module (default ``model.pool_layer``).
        head: module (or its dotted name) mapping the pooled feature to logits (default ``model.head``).
        layout: layout of the pool's input, ``"BCN"`` (default) or ``"BNC"``.
        batch_size: perturbed clouds (or head rows) per forward pass (default 128).

    Attributes:
        last_path: ``"fast"`` or ``"brute"``: what the last call used.

    SHAPES:
        ``attribute((B, N, 3), target) -> (B, N)`` with ``N >= 2``.
    """

    name = "occlusion"
    default_batch_size = 128

    def __init__(self, model: nn.Module, *, fast="auto", pool_layer: str | None = None, head=None,
                 layout: str = "BCN", **kwargs):
        super().__init__(model, **kwargs)
        self.fast = check_choice("fast", fast, ("auto", True, False))
        self.layout = check_choice("layout", layout, LAYOUTS)
        explicit = pool_layer is not None and head is not None
        if (pool_layer is None) != (head is None):
            raise bad_argument("pool_layer/head", "only one of them", "both (or neither) for the fast path")
        if explicit:
            self.pool_layer, self.head = pool_layer, head
        elif getattr(model, "pointwise_until_pool", False) is True:
            self.pool_layer, self.head = getattr(model, "pool_layer", None), getattr(model, "head", None)
        else:
            self.pool_layer, self.head = None, None
        if isinstance(self.head, str):
            self.head = get_layer(model, self.head)
        if self.pool_layer is not None:
            get_layer(model, self.pool_layer)
        available = self.pool_layer is not None and isinstance(self.head, nn.Module)
        if self.fast is True and not available:
            raise bad_argument("fast", True, "a model with pointwise_until_pool=True, pool_layer and head, "
                               "or explicit pool_layer= and head= (or fast='auto'/False)")
        self._use_fast = available and self.fast is not False
        self.last_path: str | None = None

    def uses_fast_path(self) -> bool:
        """True when this instance will try the fast max-pool path."""
        return self._use_fast

    def _attribute(self, x, target):
        if x.shape[1] < 2:
            raise bad_argument("points", f"clouds of {x.shape[1]} point", "at least 2 points per cloud")
        if self._use_fast:
            out = self._fast(x, target)
            if out is not None:
                self.last_path = "fast"
                return out
        self.last_path = "brute"
        return self._brute(x, target)

    def _brute(self, x, target):
        logits = self._forward_batched(x)
        t = self._resolve(logits, target)
        ref = select(logits, t)
        b, n, _ = x.shape
        scores = torch.empty(b, n, dtype=x.dtype, device=x.device)
        ar = torch.arange(n, device=x.device)
        with torch.no_grad():
            for j in range(b):
                for s in range(0, n, self.batch_size):
                    idx = ar[s:s + self.batch_size].unsqueeze(1)
                    clouds = delete_points(x[j:j + 1].expand(idx.shape[0], n, x.shape[2]), idx)
                    scores[j, s:s + idx.shape[0]] = ref[j] - self._forward(clouds)[:, t[j]]
        return scores

    def _fast(self, x, target):
        b, n, _ = x.shape
        feats, pooled, logits = [], [], []
        with torch.no_grad():
            for s in range(0, b, self.batch_size):
                with capture(self.model, self.pool_layer, detach=True) as rec:
                    logits.append(self._forward(x[s:s + self.batch_size]))
                rec = rec[self.pool_layer]
                feats.append(_to_bcn(rec.input, self.layout, n, self.pool_layer))
                pooled.append(rec.output)
        feats, logits = torch.cat(feats), torch.cat(logits)
        pooled_shape = pooled[0].shape[1:]
        pooled = torch.cat(pooled).reshape(b, -1)
        t = self._resolve(logits, target)
        c = feats.shape[1]
        top = feats.topk(2, dim=2)
        v1, v2, arg = top.values[..., 0], top.values[..., 1], top.indices[..., 0]
        ok = pooled.shape[1] == c and torch.allclose(pooled, v1)
        if not ok:
            if self.fast is True:
                raise bad_argument("pool_layer", f"{self.pool_layer!r}, whose output is not the channel-wise "
                                   "max of its input", "the global max-pool layer (or fast='auto'/False)")
            return None
        scores = torch.zeros(b, n, dtype=x.dtype, device=x.device)
        tol = 1e-4 * (1.0 + logits.abs().max())
        with torch.no_grad():
            for j in range(b):
                crit = torch.unique(arg[j])
                hit = arg[j].unsqueeze(0) == crit.unsqueeze(1)  # (P, C)
                rows = torch.where(hit, v2[j].unsqueeze(0), v1[j].unsqueeze(0))
                rows = torch.cat([v1[j].unsqueeze(0), rows])  # row 0: the unperturbed pooled vector
                out = torch.cat([self.head(rows[s:s + self.batch_size].reshape(-1, *pooled_shape))
                                 for s in range(0, rows.shape[0], self.batch_size)])
                if out.dim() != 2 or (out[0] - logits[j]).abs().max() > tol:
                    if self.fast is True:
                        raise bad_argument("head", "a module whose output on the pooled feature differs "
                                           "from the model's logits",
                                           "the module mapping the pooled feature to logits")
                    return None
                scores[j, crit] = out[0, t[j]] - out[1:, t[j]]
        return scores


class KNNOcclusion(Attribution):
    """k-NN patch occlusion: delete a point's ``k`` nearest neighbours (itself included) and measure the drop.

    For a patch ``P_j`` (the ``k`` nearest neighbours of centre ``j``):
    ``D_j = logit_t(x) - logit_t(x without P_j)``.

    * ``centres="all"``: one patch centred at every point, and ``s_i = D_i`` (the patch centred at ``i``);
      with ``k=1`` this is exact leave-one-out;
    * ``centres="fps"``: ``n_centres`` patches centred at farthest-point samples (FPS started at the point
      farthest from the cloud's mean, so it does not depend on the point order); scores are spread back to the
      patches' points: ``s_i`` = mean of ``D_j`` over the patches containing ``i``; a point in no patch takes
      the ``D_j`` of its nearest centre.

    Args:
        model: any ``nn.Module`` mapping ``(B, N, 3)`` to logits ``(B, C)``.
        k: patch size, ``1 <= k < N`` (default 16).
        centres: ``"all"`` (default) or ``"fps"``.
        n_centres: number of FPS centres (default 64, capped at ``N``).
        removal: ``"delete"`` (default; the cloud shrinks to ``N - k``) or ``"shift"`` (the patch is moved
            onto the cloud's centre, fixed size).
        centre: ``"median"`` or ``"mean"``: the centre used by ``removal="shift"``.
        batch_size: perturbed clouds per forward pass (default 128).

    SHAPES:
        ``attribute((B, N, 3), target) -> (B, N)``.
    """

    name = "occlusion-knn"
    default_batch_size = 128

    def __init__(self, model: nn.Module, *, k: int = 16, centres: str = "all", n_centres: int = 64,
                 removal: str = "delete", centre: str = "median", **kwargs):
        super().__init__(model, **kwargs)
        self.k = check_int("k", k, minimum=1)
        self.centres = check_choice("centres", centres, ("all", "fps"))
        self.n_centres = check_int("n_centres", n_centres, minimum=1)
        self.removal = check_choice("removal", removal, ("delete", "shift"))
        self.centre = check_choice("centre", centre, CENTRES)

    def patches(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Patch centres ``(B, M)`` and members ``(B, M, k)``: indices into the clouds ``x`` ``(B, N, 3)``."""
        b, n, _ = x.shape
        if self.k >= n:
            raise bad_argument("k", self.k,
                               f"an integer in [1, {n - 1}] (fewer than the {n} points per cloud)")
        if self.centres == "all":
            cidx = torch.arange(n, device=x.device).expand(b, n)
        else:
            cidx = farthest_point_sampling(x, min(self.n_centres, n), start=fpss_start(x))
        q = torch.gather(x, 1, cidx.unsqueeze(-1).expand(-1, -1, x.shape[2]))
        return cidx, knn(q, x, self.k).idx

    def _attribute(self, x, target):
        logits = self._forward_batched(x)
        t = self._resolve(logits, target)
        ref = select(logits, t)
        b, n, d = x.shape
        cidx, members = self.patches(x)
        m = members.shape[1]
        drops = torch.empty(b, m, dtype=x.dtype, device=x.device)
        with torch.no_grad():
            for j in range(b):
                centre = cloud_centre(x[j:j + 1], self.centre)
                for s in range(0, m, self.batch_size):
                    idx = members[j, s:s + self.batch_size]
                    base = x[j:j + 1].expand(idx.shape[0], n, d)
                    if self.removal == "delete":
                        clouds = delete_points(base, idx)
                    else:
                        mask = torch.zeros(idx.shape[0], n, dtype=torch.bool, device=x.device)
                        mask.scatter_(1, idx, True)
                        clouds = shift_to_centre(base, mask, centre.expand(idx.shape[0], 1, d))
                    drops[j, s:s + idx.shape[0]] = ref[j] - self._forward(clouds)[:, t[j]]
        if self.centres == "all":
            return drops
        total = torch.zeros(b, n, dtype=x.dtype, device=x.device)
        count = torch.zeros(b, n, dtype=x.dtype, device=x.device)
        flat = members.reshape(b, -1)
        total.scatter_add_(1, flat, drops.unsqueeze(-1).expand(-1, -1, self.k).reshape(b, -1))
        count.scatter_add_(1, flat, torch.ones_like(flat, dtype=x.dtype))
        q = torch.gather(x, 1, cidx.unsqueeze(-1).expand(-1, -1, d))
        nearest = knn(x, q, 1).idx[..., 0]  # (B, N) index of the nearest centre
        fallback = torch.gather(drops, 1, nearest)
        return torch.where(count > 0, total / count.clamp_min(1), fallback)
