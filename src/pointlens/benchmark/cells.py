"""Work units of the benchmark: fixed chunks of clouds aligned to global indices, the seeds drawn per chunk,
the fingerprint and keys that make finished cells reusable, and the run folder's state file."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
from torch import nn

from pointlens.benchmark.config import BenchmarkConfig
from pointlens.errors import InvalidArgumentError
from pointlens.training import distributed as D
from pointlens.utils.io import load_json, save_json
from pointlens.utils.validate import check_int

STATE_FILE = "benchmark_state.json"


def chunk_ranges(n: int, size: int) -> list[range]:
    """Fixed chunks of global indices ``[0, size), [size, 2 size), ...`` covering ``range(n)``.

    Args:
        n: number of items.
        size: chunk size (>= 1).

    Returns:
        list of ``range``; the last may be shorter.
    """
    size = check_int("chunk_size", size, minimum=1)
    return [range(s, min(s + size, n)) for s in range(0, n, size)]


def chunk_seed(seed: int, start: int, salt: int) -> int:
    """Seed of a metric's random draws for the chunk starting at global index ``start``.

    Depends only on the run's seed, the chunk and the metric (``salt``), never on the rank.
    """
    return (int(seed) * 1_000_003 + int(start) * 7919 + int(salt) * 104_729) % (2**62)


def explain_fn(method: str, options: dict, seed_base: int):
    """``explain(model, points, target) -> (B, N)`` for ``method``; stochastic methods get ``seed_base``."""
    from pointlens.attribution import create_attribution, is_stochastic

    opts = dict(options)
    if is_stochastic(method):
        opts["seed"] = int(opts.get("seed", 0)) + int(seed_base)

    def explain(model, pts, target):
        return create_attribution(method, model, **opts).attribute(pts, target)

    return explain


def _hash_arrays(h, *arrays) -> None:
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())


def run_fingerprint(model: nn.Module, dataset, alt_points, config: BenchmarkConfig) -> str:
    h = hashlib.sha256()
    for name, v in sorted(model.state_dict().items()):
        h.update(name.encode())
        _hash_arrays(h, v.detach().cpu().numpy())
    _hash_arrays(h, dataset.points, np.asarray(dataset.labels), dataset.gt_mask, alt_points)
    h.update(json.dumps(config.metric_settings(), sort_keys=True).encode())
    return h.hexdigest()


def cell_key(fingerprint: str, *parts) -> str:
    return hashlib.sha256(json.dumps([fingerprint, *parts], sort_keys=True, default=str).encode()).hexdigest()


def check_state(out: Path, fingerprint: str, restart: bool) -> None:
    state = out / STATE_FILE
    D.barrier()  # every rank reads the state before rank 0 may rewrite it
    if restart:
        D.barrier()
        if D.is_main():
            for sub in ("cells", "scores"):
                shutil.rmtree(out / sub, ignore_errors=True)
            state.unlink(missing_ok=True)
        D.barrier()
    elif state.is_file():
        old = load_json(state).get("fingerprint")
        if old != fingerprint:
            raise InvalidArgumentError(
                f"--out: {out} holds a benchmark run with different settings (model weights, data, seed or "
                "metric settings differ; fingerprint "
                f"{str(old)[:12]} vs {fingerprint[:12]}); expected the "
                "same arguments to resume: rerun with them, use a new --out, or pass --restart"
            )
    D.barrier()
    if D.is_main():
        save_json(state, {"fingerprint": fingerprint})
    D.barrier()
