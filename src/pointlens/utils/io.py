"""Atomic writes and run folders.

Every result file is written to a temporary file in the same folder and renamed over the target, so no command
ever leaves a half-written result behind. The temporary file is named ``.<target>.<pid>.<random>.tmp`` (hidden,
never matching a result's name or suffix); one left by a process killed mid-write (SIGKILL, power loss) is removed
by the next write of the same target and by every :class:`RunFolder` opened on the folder
(:func:`remove_stale_tmp`), once the process that wrote it is gone.
"""

from __future__ import annotations

import io
import json
import os
import platform
import re
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from pointlens.errors import DataError

_TMP_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)\.[^.]+\.tmp$")
STALE_TMP_SECONDS = 24 * 3600
"""A temporary file this old is stale even when its pid now belongs to another live process."""


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else
    return True


def remove_stale_tmp(folder, target: str | None = None) -> list[Path]:
    """Delete temporary files of interrupted atomic writes in ``folder`` (only those of ``target`` when given).

    A file ``.<name>.<pid>.<random>.tmp`` is stale when process ``pid`` no longer exists (or the file is older
    than :data:`STALE_TMP_SECONDS`); files of live writers are left alone. Files of the older naming without
    a pid (``.<name>.<random>.tmp``) are stale after 10 minutes.

    Returns:
        the paths removed.
    """
    folder = Path(folder)
    pattern = f".{glob_escape(target)}.*.tmp" if target else ".*.tmp"
    removed = []
    now = time.time()
    try:
        candidates = list(folder.glob(pattern))
    except OSError:
        return removed
    for p in candidates:
        try:
            age = now - p.stat().st_mtime
        except OSError:
            continue
        m = _TMP_NAME.match(p.name)
        if m is not None and (target is None or m["target"] == target):
            stale = not _pid_alive(int(m["pid"])) or age > STALE_TMP_SECONDS
        else:
            stale = age > 600
        if stale:
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


def glob_escape(name: str) -> str:
    """``name`` with glob metacharacters escaped."""
    return re.sub(r"([*?\[])", r"[\1]", name)


@contextmanager
def atomic_open(path, mode: str = "wb"):
    """Open a temporary file beside ``path``; on success rename it over ``path``, on error delete it.

    Stale temporary files of earlier interrupted writes of ``path`` are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, torch.Tensor):
        return _jsonable(obj.detach().cpu().tolist())
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def to_json(obj, indent: int | None = 2) -> str:
    """Serialise ``obj`` (dicts, lists, numpy/torch scalars and arrays, paths) to JSON text."""
    return json.dumps(_jsonable(obj), indent=indent, sort_keys=False)


def save_json(path, obj) -> Path:
    """Write ``obj`` as JSON atomically; returns the path."""
    with atomic_open(path, "w") as f:
        f.write(to_json(obj))
        f.write("\n")
    return Path(path)


def load_json(path):
    """Read a JSON file, raising :class:`DataError` with the path on failure."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None


def save_npz(path, **arrays) -> Path:
    """Write arrays (numpy or torch) to a compressed ``.npz`` atomically; returns the path."""
    clean = {k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)) for k, v in arrays.items()}
    buf = io.BytesIO()
    np.savez_compressed(buf, **clean)
    with atomic_open(path, "wb") as f:
        f.write(buf.getvalue())
    return Path(path)


def save_torch(path, obj) -> Path:
    """``torch.save`` atomically; returns the path."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    with atomic_open(path, "wb") as f:
        f.write(buf.getvalue())
    return Path(path)


def save_text(path, text: str) -> Path:
    """Write text atomically; returns the path."""
    with atomic_open(path, "w") as f:
        f.write(text)
    return Path(path)


def environment_info() -> dict:
    """Versions that make a run reproducible: python, torch, numpy, pointlens, platform."""
    import pointlens

    return {
        "pointlens": pointlens.__version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "threads": torch.get_num_threads(),
    }


class RunFolder:
    """A command's output folder: ``config.json``, ``metrics.json``, arrays, figures, report.

    Args:
        path: the folder (created if needed).
        command: the command name recorded in ``config.json``.
        config: every argument of the run (made JSON-safe).
        seed: the run's seed.
    """

    def __init__(self, path, command: str, config: dict | None = None, seed: int | None = None):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.removed_tmp = remove_stale_tmp(self.path)  # left by an interrupted earlier run; never results
        self.command = command
        self.config = dict(config or {})
        self.seed = seed

    def file(self, name: str) -> Path:
        """Path of ``name`` inside the run folder."""
        return self.path / name

    def write_config(self) -> Path:
        """Write ``config.json`` (arguments, seed, versions, UTC time)."""
        return save_json(self.file("config.json"), {
            "command": self.command,
            "arguments": self.config,
            "seed": self.seed,
            "environment": environment_info(),
            "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        })

    def write_metrics(self, metrics: dict) -> Path:
        """Write ``metrics.json``."""
        return save_json(self.file("metrics.json"), metrics)
