"""DGCNN's EdgeConv in eval mode: the fused path vs the materialised edge tensor, side by side in one run.

Three arms on the same DGCNN (default size: k = 20, EdgeConv widths 64-64-128-256, embedding 1024; random
weights with non-trivial batch-norm statistics, eval mode) and the same ShapeParts clouds, timed in
alternation so they share the machine's load:

* ``before``: the code before the fused path: edge features ``(B, 2 C, N, k)`` -> 1x1 conv -> BN -> LeakyReLU
  -> max, neighbours from :func:`pointlens.ops.knn` (exact distances, sorted);
* ``edges``: the same with the unordered neighbour sets of :func:`pointlens.ops.knn_indices`;
* ``fused``: :class:`pointlens.models.dgcnn.EdgeConv`'s fused path (conv on the points, max of
  ``sign(a) W1 x_j`` over the neighbours).

Measured: classification throughput without gradient (batch 16 and 128), forward + backward throughput (one
gradient attribution per cloud, batch 16), and exact leave-one-out occlusion (brute force: N forward passes
per cloud) on 512-point clouds, with the largest difference between the fused and the ``before`` outputs.
In float64 the arms agree to round-off (``tests/test_models.py``); in float32 a different order of operations
can flip a near-tied k-th neighbour in feature space or a near-tied maximum, which moves gradients and
occlusion scores by more than round-off. The last column measures that floor: ``before`` against itself on
the input moved by 1e-6 (Gaussian, seeded).

Usage: ``python benchmarks/run_all.py dgcnn_fused [--quick]``.
"""

from __future__ import annotations

import contextlib
import time

import torch
from torch import nn


def _model(num_classes: int):
    from pointlens.models import create_model

    model = create_model("dgcnn", num_classes)
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(n, generator=g))  # both signs, as after training
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return model.eval()


@contextlib.contextmanager
def _arm(model: nn.Module, arm: str):
    import pointlens.models.dgcnn as dg
    from pointlens.ops import knn

    convs = [m for m in model.modules() if isinstance(m, dg.EdgeConv)]
    saved = dg.feature_knn
    for m in convs:
        m.fused = arm == "fused"
    if arm == "before":
        def sorted_knn(x, k):
            with torch.no_grad():
                d = x.detach().transpose(1, 2)
                return knn(d, d, k).idx

        dg.feature_knn = sorted_knn
    try:
        yield
    finally:
        dg.feature_knn = saved
        for m in convs:
            m.fused = True


def _rel(a: torch.Tensor, ref: torch.Tensor) -> float:
    """Largest absolute difference relative to the largest absolute reference value."""
    return float((a - ref).abs().max() / ref.abs().max())


def _jitter(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return x + eps * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))


def _forward_step(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


def _grad_step(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    xi = x.clone().requires_grad_(True)
    model(xi).max(dim=1).values.sum().backward()
    return xi.grad


def _rate(fn, clouds: int, seconds: float) -> float:
    fn()  # warm-up
    t0, done = time.perf_counter(), 0
    while True:
        fn()
        done += clouds
        took = time.perf_counter() - t0
        if took >= seconds:
            return done / took


def run(quick: bool = False) -> str:
    from pointlens.attribution import create_attribution
    from pointlens.data import load_dataset

    arms = ("before", "edges", "fused")
    seconds = 0.5 if quick else 8.0
    sizes = (256,) if quick else (512, 1024)
    occ_points, occ_clouds = (64, 1) if quick else (512, 2)
    model = _model(8)
    lines = ["## DGCNN: fused EdgeConv in eval mode vs the materialised edge tensor", "",
             "Default DGCNN (k = 20, widths 64-64-128-256, embedding 1024), random weights with batch-norm scales of "
             "both signs, eval mode, ShapeParts test clouds; the three arms run in alternation in one process "
             f"({torch.get_num_threads()} threads). `before` = the code before this change (edge tensor, sorted "
             "exact kNN), `edges` = edge tensor with unordered kNN sets, `fused` = conv on the points and the max "
             "moved inside. Throughput in clouds per second. `fused vs before`: the largest difference of the outputs "
             "(logits, input gradients, occlusion scores) relative to the largest value; `float32 floor`: the same "
             "for `before` against itself on the input moved by 1e-6 (near-tied neighbours and maxima flip in "
             "float32; in float64 the arms agree to 1e-12, tests/test_models.py).", "",
             "| points | measurement | before | edges | fused | fused / before | fused vs before | float32 floor |",
             "|---|---|---|---|---|---|---|---|"]
    for n in sizes:
        x = torch.as_tensor(load_dataset("shapeparts", split="test", num_points=n, limit=16).points).float()
        cases = [("forward, batch 16", 16, False)]
        if not quick:
            cases += [("forward, batch 128", 128, False)]
        cases += [("forward + backward, batch 16", 16, True)]
        for label, bs, grad in cases:
            xb = x[torch.arange(bs) % x.shape[0]]
            step = _grad_step if grad else _forward_step
            rates, outs = {}, {}
            for arm in arms:
                with _arm(model, arm):
                    outs[arm] = step(model, xb)
                    rates[arm] = _rate(lambda s=step, b=xb: s(model, b), bs, seconds)
            with _arm(model, "before"):
                floor = _rel(step(model, _jitter(xb)), outs["before"])
            lines.append(f"| {n} | {label} | {rates['before']:.1f} | {rates['edges']:.1f} | {rates['fused']:.1f} | "
                         f"{rates['fused'] / rates['before']:.2f}x | {_rel(outs['fused'], outs['before']):.1e} | "
                         f"{floor:.1e} |")
    x = torch.as_tensor(load_dataset("shapeparts", split="test", num_points=occ_points,
                                     limit=occ_clouds).points).float()
    took, scores = {}, {}
    for arm in arms:
        with _arm(model, arm):
            method = create_attribution("occlusion", model, fast=False, batch_size=32)
            t0 = time.perf_counter()
            scores[arm] = method.attribute(x)
            took[arm] = time.perf_counter() - t0
    with _arm(model, "before"):
        floor = _rel(create_attribution("occlusion", model, fast=False, batch_size=32).attribute(_jitter(x)),
                     scores["before"])
    lines.append(f"| {occ_points} | exact occlusion, {occ_clouds} clouds (seconds per cloud) | "
                 f"{took['before'] / occ_clouds:.1f} s | {took['edges'] / occ_clouds:.1f} s | "
                 f"{took['fused'] / occ_clouds:.1f} s | {took['before'] / took['fused']:.2f}x | "
                 f"{_rel(scores['fused'], scores['before']):.1e} | {floor:.1e} |")
    return "\n".join(lines)
