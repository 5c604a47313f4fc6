"""ShapeParts benchmark: generation speed, discriminative-part shares, and is the evidence where we say.

1. Generation time of ``n`` clouds x 1,024 points (single objects and scenes) and the time to load the same
   set back from its ``.npz`` cache (the target: 2,000 clouds in under 10 s).
2. Share of each class's points on its discriminative parts (target: roughly 10-30%).
3. Learnability: a small PointNet (shared MLP 3-64-128-256, max-pool, MLP 256-128-C; pointwise up to the
   pool) trained on the train split, then on the test split: accuracy, twin accuracy (argmax restricted to
   the true class's twin pair), twin accuracy after DELETING the discriminative parts (target: near 0.5,
   chance) and after deleting the same number of random body points (target: unchanged). For a model that
   is pointwise up to a max-pool, deleting points equals overwriting them with copies of a kept point, which
   keeps the batch rectangular; the script uses that identity.

``run(quick=True)`` uses 200 clouds for the timing and a tiny training run, only to check that the script
works.
"""

from __future__ import annotations

import tempfile
import time

import numpy as np
import torch
from torch import nn

from pointlens.data import shapeparts as sp


class _TinyPointNet(nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
        self.feat = nn.Sequential(nn.Conv1d(3, 64, 1), nn.BatchNorm1d(64), nn.ReLU(),
                                  nn.Conv1d(64, 128, 1), nn.BatchNorm1d(128), nn.ReLU(),
                                  nn.Conv1d(128, 256, 1), nn.BatchNorm1d(256), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(256, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(0.3),
                                  nn.Linear(128, num_classes))

    def forward(self, x):  # (B, N, 3) -> (B, C)
        return self.head(self.feat(x.transpose(1, 2)).max(dim=2).values)


def _timing(n: int) -> list[tuple[str, float]]:
    rows = []
    t0 = time.perf_counter()
    sp.generate(n=n, points=1024, seed=0)
    rows.append((f"generate {n} objects x 1024 points", time.perf_counter() - t0))
    t0 = time.perf_counter()
    sp.generate(n=n, points=1024, seed=0, scene=True)
    rows.append((f"generate {n} scenes x 1024 points", time.perf_counter() - t0))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        sp.generate(n=n, points=1024, seed=0, cache=tmp)
        rows.append((f"generate {n} objects + write cache", time.perf_counter() - t0))
        t0 = time.perf_counter()
        sp.generate(n=n, points=1024, seed=0, cache=tmp)
        rows.append((f"load {n} objects from cache", time.perf_counter() - t0))
    return rows


def _shares(ds) -> list[tuple[str, float, float, float]]:
    out = []
    for c, name in enumerate(ds.class_names):
        s = ds.gt_mask[ds.labels == c].mean(1)
        out.append((name, float(s.mean()), float(s.min()), float(s.max())))
    return out


def _twin_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    twin = torch.tensor([sp.CLASS_NAMES.index(sp.twin_of(c)) for c in sp.CLASS_NAMES])
    own = logits.gather(1, labels[:, None])[:, 0]
    other = logits.gather(1, twin[labels][:, None])[:, 0]
    return float((own > other).float().mean())


def _delete_as_duplicates(points: np.ndarray, remove: np.ndarray) -> np.ndarray:
    """Overwrite each cloud's removed points with its first kept point (== deletion for max-pool nets)."""
    out = points.copy()
    for i in range(len(points)):
        keep = np.flatnonzero(~remove[i])
        out[i, remove[i]] = points[i, keep[0]]
    return out


def _learnability(n: int, points: int, epochs: int, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    ds = sp.generate(n=n, points=points, seed=seed)
    tr, te = ds.split == "train", ds.split == "test"
    x_tr, y_tr = torch.from_numpy(ds.points[tr]), torch.from_numpy(ds.labels[tr])
    model = _TinyPointNet(ds.num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(epochs, 1))
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x_tr), generator=g).split(32):
            if len(idx) < 2:
                continue
            xb = x_tr[idx] + 0.005 * torch.randn(x_tr[idx].shape, generator=g)
            loss = nn.functional.cross_entropy(model(xb), y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    train_s = time.perf_counter() - t0
    model.eval()

    def logits(p):
        with torch.no_grad():
            return torch.cat([model(torch.from_numpy(b)) for b in np.array_split(p, max(1, len(p) // 128))])

    pts, y, gt = ds.points[te], torch.from_numpy(ds.labels[te]), ds.gt_mask[te]
    rng = np.random.default_rng(seed)
    rand = np.zeros_like(gt)
    for i in range(len(gt)):  # as many random body points as the cloud has discriminative points
        rand[i, rng.choice(np.flatnonzero(~gt[i]), int(gt[i].sum()), replace=False)] = True
    clean = logits(pts)
    no_disc = logits(_delete_as_duplicates(pts, gt))
    no_rand = logits(_delete_as_duplicates(pts, rand))
    return {
        "train clouds": int(tr.sum()), "test clouds": int(te.sum()), "points": points, "epochs": epochs,
        "train seconds": train_s,
        "test accuracy": float((clean.argmax(1) == y).float().mean()),
        "twin accuracy": _twin_accuracy(clean, y),
        "twin accuracy, discriminative parts deleted": _twin_accuracy(no_disc, y),
        "twin accuracy, as many random body points deleted": _twin_accuracy(no_rand, y),
        "accuracy, discriminative parts deleted": float((no_disc.argmax(1) == y).float().mean()),
    }


def run(quick: bool = False) -> str:
    """Measure ShapeParts and return the Markdown section (quick: 200 clouds and a tiny training run)."""
    n = 200 if quick else 2000
    lines = ["## ShapeParts generator", "",
             "Generation speed (numpy, vectorised over all clouds), share of points on the discriminative "
             "parts, and a learnability check with a small PointNet (`benchmarks/bench_shapeparts.py`).", "",
             "| step | seconds |", "|---|---|"]
    lines += [f"| {name} | {sec:.2f} |" for name, sec in _timing(n)]
    lines += ["", "| class | discriminative share (mean) | min | max |", "|---|---|---|---|"]
    ds = sp.generate(n=n, points=1024, seed=0)
    lines += [f"| {c} | {m:.3f} | {lo:.3f} | {hi:.3f} |" for c, m, lo, hi in _shares(ds)]
    if quick:
        res = _learnability(n=280, points=256, epochs=2)
    else:
        res = _learnability(n=2000, points=1024, epochs=12)
    lines += ["", "| learnability (test split) | value |", "|---|---|"]
    lines += [f"| {k} | {v:.3f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in res.items()]
    lines += ["", "Twin accuracy: the true class's logit beats its twin's. Chance is 0.5."]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(run(quick="--quick" in sys.argv))
