"""Process-level performance settings.

glibc serves every allocation above its mmap threshold (128 KiB, growing dynamically up to 32 MiB) with a fresh
``mmap`` and returns it with ``munmap`` on free. PyTorch's CPU tensors of point-cloud activations are often
larger (a PointNet batch of 32 x 1024 x 1024 floats is 128 MiB), so every training step faults in and zeroes
hundreds of MiB of new pages: on a 2-core machine more than half of the time went to the kernel. Raising the mmap
threshold and the trim threshold keeps freed blocks in the heap for reuse. Measured on the 2-core CPU machine:
PointNet training 46 -> 111 clouds/s (see BENCHMARKS.md, "training throughput").
"""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_TUNED = False


def tune_allocator(threshold: int = 2**30) -> bool:
    """Raise glibc's mmap and trim thresholds to ``threshold`` bytes (Linux/glibc only; idempotent).

    The pointlens CLI calls it at start-up; library users may call it once at the start of their program.
    Freed memory is then kept for reuse instead of being returned to the OS, so the resident size stays near
    its peak.

    Returns:
        True when the settings were applied (now or earlier), False where they are not supported.
    """
    global _TUNED
    if _TUNED:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, int(threshold)) == 1
        ok = libc.mallopt(_M_TRIM_THRESHOLD, int(threshold)) == 1 and ok
    except (OSError, AttributeError):
        return False
    _TUNED = ok
    return ok
