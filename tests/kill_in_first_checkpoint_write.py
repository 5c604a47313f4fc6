"""Run the pointlens CLI with its arguments, but SIGKILL the process inside the first write of ``checkpoint.pt``
after half a file is written (used by tests/test_hostile_runs.py and benchmarks/bench_kill_resume.py)."""

import os
import signal
import sys
import tempfile

_real_mkstemp = tempfile.mkstemp


def _mkstemp(*args, **kwargs):
    fd, name = _real_mkstemp(*args, **kwargs)
    if os.path.basename(name).startswith(".checkpoint.pt."):
        os.write(fd, b"PK\x03\x04 half a checkpoint")
        os.kill(os.getpid(), signal.SIGKILL)
    return fd, name


tempfile.mkstemp = _mkstemp

if __name__ == "__main__":
    from pointlens.cli.main import main

    sys.exit(main(sys.argv[1:]))
