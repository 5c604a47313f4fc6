"""Critical points (Qi et al., PointNet): how many pooled channels each point is the arg-max of."""

from __future__ import annotations

import torch
from torch import nn

from pointlens.attribution.base import Attribution
from pointlens.attribution.occlusion import _to_bcn, resolve_layer_options
from pointlens.models.hooks import capture
from pointlens.utils.validate import check_choice


class CriticalPoints(Attribution):
    """Critical-point counts: ``s_i`` = how many channels of the global max-pool have their arg-max at ``i``.

    The per-point features entering the pool are captured with a hook on ``pool_layer``; the counts of every
    cloud sum to the number of pooled channels. A model without a pooling module (``torch.max(x, 2)`` in its
    forward) and without a ``pool_layer`` attribute gets its layer found automatically: the last module with
    per-point output before the pool (:func:`pointlens.models.hooks.find_pool_layer`); ``self.pool`` tells
    which (``self.pool.describe()``). Independent of the target (which is still validated).
    A channel whose maximum is reached by several points (duplicated points, or a dead ReLU channel that is 0
    everywhere) is split equally between them with ``ties="split"`` (default; permutation-equivariant), or
    given to the lowest point index with ``ties="first"`` (``torch.argmax``).

    Args:
        model: any ``nn.Module`` mapping ``(B, N, 3)`` to logits ``(B, C)`` that has a global max-pool layer.
        pool_layer: dotted name of that layer (default ``model.pool_layer``, else found automatically).
        use: read the layer's ``"input"`` (default for a named pooling layer) or ``"output"`` (default for a
            found layer, the module before a functional pool).
        layout: layout of those activations: ``"BCN"`` (default; a found layer's own) or ``"BNC"``.
        ties: ``"split"`` (default) or ``"first"``.
        batch_size: clouds per forward pass.

    SHAPES:
        ``attribute((B, N, 3), target) -> (B, N)`` (float counts in ``[0, channels]``).
    """

    name = "critical"

    def __init__(self, model: nn.Module, *, pool_layer: str | None = None, use: str | None = None,
                 layout: str | None = None, ties: str = "split", **kwargs):
        super().__init__(model, **kwargs)
        self.pool, self.use, self.layout = resolve_layer_options(
            model, pool_layer, use, layout, method="critical", option="pool_layer",
            what="the dotted name of the model's global max-pool layer")
        self.pool_layer = self.pool.name
        self.ties = check_choice("ties", ties, ("split", "first"))

    def _attribute(self, x, target):
        b, n, _ = x.shape
        counts = []
        with torch.no_grad():
            for s in range(0, b, self.batch_size):
                with capture(self.model, self.pool_layer, detach=True) as rec:
                    logits = self._forward(x[s:s + self.batch_size])
                self._resolve(logits, None if target is None else target[s:s + self.batch_size])
                feats = _to_bcn(getattr(rec[self.pool_layer], self.use), self.layout, n, self.pool_layer)
                if self.ties == "split":
                    tied = (feats == feats.amax(dim=2, keepdim=True)).to(x.dtype)
                    counts.append((tied / tied.sum(dim=2, keepdim=True)).sum(dim=1))
                    continue
                arg = feats.argmax(dim=2)
                c = torch.zeros(arg.shape[0], n, dtype=x.dtype, device=x.device)
                counts.append(c.scatter_add_(1, arg, torch.ones_like(arg, dtype=x.dtype)))
        return torch.cat(counts)
