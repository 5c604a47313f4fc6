"""Activation flows: per-class statistics of a classifier's intermediate activations (FlowAM, Tan 2024).

An activation flow is, for every class ``c`` and every chosen layer ``l``, the mean ``mu[c, l]`` and standard
deviation ``sd[c, l]`` over real training instances of the class of a GLOBAL descriptor of the layer's output:

* a per-point output ``(B, C, N)`` (PointNet's shared layers, DGCNN's EdgeConvs) is reduced over the points
  by ``reduce`` = ``"max"`` (what a max-pool would see), ``"mean"``, or ``"both"`` (max and mean concatenated,
  the default: the mean gives every point a gradient, the max keeps the pooled pattern) -> ``(B, D)``;
* a vector output ``(B, C)`` (head layers) is used as it is.

:func:`collect_flow` computes them once (eval mode, no gradients); :class:`FlowStats` saves and loads them so
``pointlens maximize`` caches them in its run folder keyed by :func:`flow_key` (model weights + data + layers).
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pointlens.errors import DataError, bad_argument
from pointlens.models.hooks import capture, model_device, preserve_model_state
from pointlens.utils.io import save_torch
from pointlens.utils.validate import as_points, check_choice

__all__ = ["FlowStats", "check_layers", "collect_flow", "default_flow_layers", "flow_key", "layer_descriptor"]

REDUCTIONS = ("both", "max", "mean")


def check_layers(model: nn.Module, layers, name: str = "layers") -> list[str]:
    """Check that every name in ``layers`` is a module of ``model``; unknown names raise one error naming the
    closest existing module names (difflib). Returns the list of names."""
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise bad_argument(name, layers, "at least one module name")
    modules = [n for n, _ in model.named_modules() if n]
    for n in names:
        if n not in modules:
            close = difflib.get_close_matches(str(n), modules, n=3, cutoff=0.4)
            hint = f"did you mean {', '.join(close)}?" if close else f"one of {', '.join(modules[:12])} ..."
            raise bad_argument(name, n, f"a module name of this model; {hint}")
    return names


def default_flow_layers(model: nn.Module) -> list[str]:
    """The layers whose activations FlowAM aligns by default.

    pointlens PointNet (and the imported learning3d PointNet): every shared layer ``features.i`` and every
    hidden head block ``head.i`` (not the logits layer). DGCNN: ``edge_convs.i``, ``embed`` and the hidden head
    blocks. Any other model: every ``Conv1d``/``Conv2d``/``Linear`` except the last registered ``Linear`` (taken
    as the logits layer).
    """
    mods = dict(model.named_modules())
    out: list[str] = []
    for prefix in ("features", "edge_convs"):
        if prefix in mods:
            out += [f"{prefix}.{i}" for i in range(len(mods[prefix]))]
    if "embed" in mods:
        out.append("embed")
    if out and "head" in mods:
        head = mods["head"]
        out += [f"head.{i}" for i in range(len(head) - 1)]
    if out:
        return out
    lin = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)) and n]
    last_linear = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if last_linear:
        lin = [n for n in lin if n != last_linear[-1]]
    if not lin:
        raise bad_argument("model", type(model).__name__, "a model with Conv/Linear layers (or pass layers=...)")
    return lin


def layer_descriptor(act: torch.Tensor, reduce: str = "both") -> torch.Tensor:
    """Global descriptor of one layer's output.

    Args:
        act: ``(B, C, N)`` per-point activations (or ``(B, C, N, K)``, reduced over the last two axes), or
            ``(B, C)``.
        reduce: ``"both"`` (max and mean over points, concatenated), ``"max"`` or ``"mean"``.

    Returns:
        ``(B, D)`` with ``D = 2C`` for ``"both"`` on per-point outputs, else ``C``.
    """
    if act.dim() == 2:
        return act
    flat = act.reshape(act.shape[0], act.shape[1], -1)
    # max(dim) rather than amax: the same value; its backward scatters into the arg-max (one point per channel)
    # instead of comparing the whole activation with its maximum (amax shares the gradient among exact ties)
    if reduce == "max":
        return flat.max(-1).values
    if reduce == "mean":
        return flat.mean(-1)
    return torch.cat([flat.max(-1).values, flat.mean(-1)], 1)


@dataclass
class FlowStats:
    """Per-class activation statistics of named layers.

    Attributes:
        layers: layer names.
        reduce: the descriptor reduction (see :func:`layer_descriptor`).
        mean: ``{layer: (K, D_l)}`` per-class mean descriptors (``K`` classes of the model).
        std: ``{layer: (K, D_l)}`` per-class standard deviations (0 for classes with one instance).
        counts: ``(K,)`` real instances per class (0 = no statistics; maximising that class raises).
        key: cache key (see :func:`flow_key`), ``""`` when unknown.
    """

    layers: list[str]
    reduce: str
    mean: dict
    std: dict
    counts: torch.Tensor
    key: str = ""

    def check_class(self, target: int) -> None:
        """Raise :class:`DataError` when the class has no real instance in the statistics."""
        if not 0 <= int(target) < len(self.counts) or int(self.counts[int(target)]) == 0:
            raise DataError(f"flow statistics: no real instance of class {int(target)}; FlowAM needs some")

    def save(self, path) -> None:
        """Write the statistics (torch file, atomically)."""
        save_torch(path, {"kind": "pointlens-flow", "layers": self.layers, "reduce": self.reduce,
                          "mean": self.mean, "std": self.std, "counts": self.counts, "key": self.key})

    @staticmethod
    def load(path) -> "FlowStats":
        """Read statistics written by :meth:`save`."""
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)   # never unpickles code
        except Exception as e:  # noqa: BLE001 - a corrupt or hostile cache file is one clear error
            raise DataError(f"{path}: not a readable flow-statistics file ({type(e).__name__}); delete it to "
                            "recompute") from None
        if not isinstance(obj, dict) or obj.get("kind") != "pointlens-flow":
            raise DataError(f"{path}: not a pointlens flow-statistics file")
        return FlowStats(obj["layers"], obj["reduce"], obj["mean"], obj["std"], obj["counts"], obj.get("key", ""))


def flow_key(model: nn.Module, data_id: str, layers, reduce: str) -> str:
    """A short hash of the model's weights and buffers, the data identifier, the layers and the reduction."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    h.update(str(data_id).encode())
    h.update(",".join(layers).encode())
    h.update(reduce.encode())
    return h.hexdigest()[:16]


def collect_flow(model: nn.Module, points, labels, *, num_classes: int, layers=None, reduce: str = "both",
                 batch_size: int = 64, key: str = "") -> FlowStats:
    """Collect the activation flow of every class from real instances (eval mode, no gradients).

    Args:
        model: classifier ``(B, N, 3) -> (B, K)``; not modified.
        points: ``(M, N, 3)`` real training instances.
        labels: ``(M,)`` class indices.
        num_classes: ``K``.
        layers: layer names (default :func:`default_flow_layers`).
        reduce: descriptor reduction.
        batch_size: clouds per forward pass.
        key: cache key stored with the statistics.

    Returns:
        :class:`FlowStats` with ``(K, D_l)`` mean and standard deviation per layer.
    """
    check_choice("reduce", reduce, REDUCTIONS)
    pts = as_points(points)
    lab = torch.as_tensor(np.asarray(labels), dtype=torch.long).reshape(-1)
    if len(lab) != len(pts):
        raise bad_argument("labels", f"{len(lab)} labels", f"{len(pts)} (one per cloud)")
    layers = default_flow_layers(model) if layers is None else check_layers(model, layers)
    dev = model_device(model)
    feats: dict[str, list] = {n: [] for n in layers}
    with preserve_model_state(model), torch.no_grad():
        model.eval()
        for s in range(0, len(pts), batch_size):
            with capture(model, layers, detach=True) as acts:
                model(pts[s:s + batch_size].to(dev))
            for n in layers:
                feats[n].append(layer_descriptor(acts[n].output, reduce).double().cpu())
    counts = torch.bincount(lab, minlength=num_classes)[:num_classes]
    mean, std = {}, {}
    for n in layers:
        f = torch.cat(feats[n])
        d = f.shape[1]
        mu = torch.zeros(num_classes, d, dtype=torch.float64)
        sd = torch.zeros(num_classes, d, dtype=torch.float64)
        for c in range(num_classes):
            fc = f[lab == c]
            if len(fc):
                mu[c] = fc.mean(0)
                sd[c] = fc.std(0, unbiased=False)
        mean[n], std[n] = mu.float(), sd.float()
    return FlowStats(list(layers), reduce, mean, std, counts, key)
