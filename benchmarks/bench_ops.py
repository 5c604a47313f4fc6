"""Geometry ops: pointlens kNN / farthest point sampling against the naive references and torch.cdist + topk.

``run(quick=False) -> str`` returns a Markdown section (see benchmarks/run_all.py). All variants of one row
run side by side in the same process on the same inputs; times are the best of several repeats after a
warm-up.
Memory is the size of the largest temporary each variant allocates (computed, not measured).
"""

from __future__ import annotations

import time

import torch

from pointlens.ops import farthest_point_sampling, farthest_point_sampling_naive, knn, knn_naive
from pointlens.ops.geometry import DEFAULT_MEMORY_BUDGET, _chunk_rows

NAIVE_LIMIT = 2 * 2**30  # skip knn_naive when its difference tensor would exceed this many bytes


def _best_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def _mib(nbytes: float) -> str:
    return f"{nbytes / 2**20:.0f} MiB" if nbytes >= 2**20 else f"{nbytes / 2**10:.0f} KiB"


def _cdist_topk(q: torch.Tensor, r: torch.Tensor, k: int):
    d = torch.cdist(q, r)
    return d.topk(k, dim=-1, largest=False, sorted=True)


def _knn_rows(b: int, n: int, d: int, k: int, repeats: int) -> list[str]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(b, n, d, generator=g)
    rows = min(n, _chunk_rows(b, n, DEFAULT_MEMORY_BUDGET))
    ours_ms = _best_ms(lambda: knn(x, x, k), repeats)
    ours = knn(x, x, k)
    cd_ms = _best_ms(lambda: _cdist_topk(x, x, k), repeats)
    cd = _cdist_topk(x, x, k)
    agree_cd = float((cd.indices == ours.idx).float().mean())
    naive_bytes = b * n * n * d * 4
    if naive_bytes <= NAIVE_LIMIT:
        naive_ms = _best_ms(lambda: knn_naive(x, x, k), repeats)
        agree_naive = float((knn_naive(x, x, k).idx == ours.idx).float().mean())
        naive_txt = f"{naive_ms:.1f}"
        ratio = f"{naive_ms / ours_ms:.1f}x"
        agree_txt = f"{agree_naive:.4f}"
    else:
        naive_txt, ratio, agree_txt = "skipped (memory)", "—", "—"
    return [
        f"| kNN B={b} N={n} D={d} k={k} | {ours_ms:.1f} | {naive_txt} | {cd_ms:.1f} | {ratio} | "
        f"{cd_ms / ours_ms:.2f}x | {_mib(b * rows * n * 4)} | {_mib(naive_bytes)} | {_mib(b * n * n * 4)} | "
        f"{agree_txt} / {agree_cd:.4f} |"
    ]


def _fps_row(b: int, n: int, m: int, repeats: int) -> str:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(b, n, 3, generator=g)
    ours_ms = _best_ms(lambda: farthest_point_sampling(x, m), repeats)
    naive_ms = _best_ms(lambda: farthest_point_sampling_naive(x, m), max(1, repeats // 2))
    # the naive reference works in float64: compare in float64 (in float32, near-equal distances may tie-break
    # differently, which is a precision effect, not a different algorithm)
    same = torch.equal(farthest_point_sampling(x.double(), m), farthest_point_sampling_naive(x, m))
    return (
        f"| FPS B={b} N={n} -> {m} | {ours_ms:.1f} | {naive_ms:.1f} | — | {naive_ms / ours_ms:.1f}x | — | "
        f"{_mib(b * n * 4)} | {_mib(n * 8)} per cloud | — | {'identical (float64)' if same else 'DIFFERENT'} |"
    )


def run(quick: bool = False) -> str:
    """Time the ops; ``quick`` uses tiny sizes (to check the script runs). Returns a Markdown section."""
    if quick:
        knn_cases, fps_cases, repeats = [(2, 256, 3, 20), (2, 256, 64, 20)], [(2, 256, 64)], 5
    else:
        knn_cases = [(16, 1024, 3, 20), (16, 1024, 64, 20), (8, 4096, 3, 16)]
        fps_cases, repeats = [(16, 1024, 512)], 5
    lines = [
        "## Geometry ops (kNN, farthest point sampling)" + (" — quick sizes" if quick else ""),
        "",
        "pointlens `knn` (chunked matmul ranking under a 256 MiB budget, exact distances recomputed for the "
        "k winners) against `knn_naive` (full (B, N, N, D) difference tensor) and `torch.cdist` + `topk`; "
        "`farthest_point_sampling` (batched torch loop) against `farthest_point_sampling_naive` (numpy loop "
        f"per cloud). CPU, {torch.get_num_threads()} torch thread(s), float32, best of {repeats} after a "
        "warm-up. "
        "Speedup = naive time / pointlens time (and cdist time / pointlens time). Memory = the largest "
        "temporary of each variant, computed from the sizes. Agree = share of neighbour indices equal to "
        "pointlens's (naive / cdist; ties and float round-off make a few differ).",
        "",
        "| case | pointlens ms | naive ms | cdist+topk ms | speedup vs naive | speedup vs cdist | "
        "pointlens block | naive temp | cdist temp | agree |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in knn_cases:
        lines += _knn_rows(*case, repeats)
    for case in fps_cases:
        lines.append(_fps_row(*case, repeats))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    print(run(quick="--quick" in sys.argv))
