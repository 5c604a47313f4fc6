"""torchrun support: detect the process group, shard work, gather results on rank 0.

Scale-out goes through ``torchrun`` (DDP for training, sharded work for explanation and benchmarks). Under plain
``python`` everything here degrades to a single process (rank 0 of 1).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` outside torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_env(device: str = "cpu") -> tuple[int, int]:
    """Initialise the default process group when launched by torchrun (``WORLD_SIZE > 1``).

    Uses the gloo backend on CPU and nccl on CUDA. Returns ``(rank, world_size)``.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and dist.is_available() and not dist.is_initialized():
        backend = "nccl" if str(device).startswith("cuda") and torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return world()


def is_main() -> bool:
    """True on rank 0 (and in a single process)."""
    return world()[0] == 0


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if world()[1] > 1:
        dist.barrier()


def shard(n: int) -> range:
    """The contiguous slice ``range(start, stop)`` of ``n`` items this rank owns (balanced, in order)."""
    rank, size = world()
    per, extra = divmod(n, size)
    start = rank * per + min(rank, extra)
    return range(start, start + per + (1 if rank < extra else 0))


def all_gather_object(obj):
    """List of ``obj`` from every rank (rank order); ``[obj]`` in a single process."""
    rank, size = world()
    if size == 1:
        return [obj]
    out = [None] * size
    dist.all_gather_object(out, obj)
    return out
