"""What every file parser and dataset reader shares: the one error funnel, checks made BEFORE anything is
allocated, and the dtype/shape rules of points, labels and class names.

The funnel (:func:`reading`, or the :func:`data_reader` decorator) turns ANY failure inside a parser -- a
``MemoryError``, ``IndexError``, ``UnicodeDecodeError``, ``KeyError``, ``OverflowError``, an h5py/numpy/zip
error -- into one :class:`~pointlens.errors.DataError` naming the file and what is wrong, in one line. It also
keeps numpy/h5py warnings and trimesh's log messages off stderr while a file is read (the checks that follow
say what is wrong instead). Every parser wraps its body in it, so no reader lets a raw exception escape.

Validation before allocation: :func:`check_declared_bytes` compares the bytes an array header declares with
the bytes the file can hold (and with :data:`MAX_ARRAY_BYTES`) before numpy/h5py creates the array, so a
header that declares an 11 TiB shape is refused in microseconds instead of raising a ``MemoryError``.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from pointlens.errors import DataError, PointlensError

MAX_CLASSES = 100_000
"""Most classes a dataset may have (labels larger than this are refused, never turned into class names)."""
MAX_ARRAY_BYTES = 32 * 2**30
"""Largest array a reader creates from one header (32 GiB; ModelNet40 with all 2048 points is 0.24 GiB)."""
MAX_COMPRESSION = 1100
"""Deflate cannot compress better than ~1032:1, so a compressed member declaring more is corrupt."""
_MESSAGE_CHARS = 300


def one_line(text, limit: int = _MESSAGE_CHARS) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space, cut to ``limit``."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _describe(e: BaseException) -> str:
    if isinstance(e, MemoryError):
        return "it asks for more memory than this machine has (a corrupt or hostile size in the file?)"
    if isinstance(e, RecursionError):
        return "its structure nests too deeply"
    if isinstance(e, UnicodeDecodeError):
        return f"not UTF-8 text ({e.reason} at byte {e.start})"
    msg = one_line(e)
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


@contextmanager
def reading(source, what: str = "file"):
    """Run a parser's body; any non-pointlens exception becomes one :class:`DataError` naming ``source``.

    ``what`` says what was being read (``"the .npz file"``, ``"the mesh"``) and appears in the message:
    ``<source>: cannot read <what> (<ExceptionType>: <first words of its message>)``. Pointlens errors pass
    through unchanged; ``KeyboardInterrupt`` is not caught. While the body runs, Python warnings are ignored
    (numpy casts, h5py) and the ``trimesh`` logger is silenced, so a refusal stays one line on stderr.
    """
    log = logging.getLogger("trimesh")
    was_disabled = log.disabled
    log.disabled = True
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            yield
    except PointlensError:
        raise
    except Exception as e:  # the one funnel: anything a parser or library raises
        raise DataError(f"{source}: cannot read {what} ({_describe(e)})") from None
    finally:
        log.disabled = was_disabled


def data_reader(what: str):
    """Decorator: run the function inside :func:`reading` with its first argument as the source."""
    def wrap(fn):
        @functools.wraps(fn)
        def inner(path, *args, **kwargs):
            with reading(path, what):
                return fn(path, *args, **kwargs)
        return inner
    return wrap


def require_file(path, layout: str | None = None) -> Path:
    """``path`` as a :class:`Path`; raises :class:`DataError` naming it (and the expected ``layout``) when it is
    not a file."""
    try:
        p = Path(path).expanduser()
        ok = p.is_file()
    except (OSError, ValueError, TypeError) as e:  # e.g. an embedded NUL byte in the name
        raise DataError(f"{path!r}: not a usable path ({one_line(e)})") from None
    if not ok:
        raise DataError(f"{p}: file not found" + (f"; expected {layout}" if layout else ""))
    return p


def check_finite(points: np.ndarray, source) -> None:
    """Raise :class:`DataError` naming ``source`` when ``points (M, N, D)`` has NaN/infinite coordinates."""
    finite = np.isfinite(points)
    if finite.all():
        return
    bad = ~finite.all(axis=-1)
    if bad.ndim == 1:
        bad = bad[None]
    clouds = np.flatnonzero(bad.any(axis=1))
    raise DataError(f"{source}: {int(bad.sum())} point(s) in {len(clouds)} cloud(s) have NaN or infinite "
                    f"coordinates (first bad cloud: index {int(clouds[0])}); repair or drop them")


# ----------------------------------------------------------------------------------------------- text


def decode_text(data: bytes, source) -> str:
    """Decode ``data`` as strict UTF-8 (a BOM is allowed); NUL bytes and undecodable bytes are refused with the
    line number.

    Raises:
        DataError: ``<source>: line K is not UTF-8 text (...)`` or ``<source>: line K contains a NUL byte``.
    """
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise DataError(f"{source}: line {line} contains a NUL byte; expected text (is it a binary file?)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(f"{source}: line {line} is not UTF-8 text ({e.reason} at byte {e.start}); save it as "
                        "UTF-8") from None


def read_text(path) -> str:
    """The whole file ``path`` decoded by :func:`decode_text`."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({one_line(e)})") from None
    return decode_text(data, path)


def read_lines(path) -> list[str]:
    """Non-empty stripped lines of a small text file (class names, split lists), decoded strictly."""
    return [s.strip() for s in read_text(path).splitlines() if s.strip()]


# ----------------------------------------------------------------------------------- declared sizes


def check_declared_bytes(shape, dtype, available: float, source, name: str) -> int:
    """Refuse a declared array before it is allocated.

    Args:
        shape: the declared shape (from an .npy/.h5 header).
        dtype: its dtype.
        available: the most bytes the file can really hold for it (file size, or a compression bound).
        source: file named in the message.
        name: array named in the message.

    Returns:
        the declared number of bytes.

    Raises:
        DataError: a negative dimension, more than :data:`MAX_ARRAY_BYTES`, or more than ``available``.
    """
    dims = [int(d) for d in shape]
    if any(d < 0 for d in dims):
        raise DataError(f"{source}: '{name}' declares a negative dimension in shape {tuple(dims)}")
    nbytes = math.prod(dims) * int(np.dtype(dtype).itemsize)
    if nbytes > MAX_ARRAY_BYTES:
        raise DataError(f"{source}: '{name}' declares shape {tuple(dims)} ({nbytes / 2**30:.3g} GiB), more than "
                        f"the {MAX_ARRAY_BYTES // 2**30} GiB pointlens reads from one array (corrupt header?)")
    if nbytes > available:
        raise DataError(f"{source}: '{name}' declares shape {tuple(dims)} ({nbytes} bytes) but the file holds "
                        f"at most {int(available)} bytes for it (truncated file or corrupt header)")
    return nbytes


def npy_header(fh, source, name: str, kinds: str = "iuf"):
    """Read an ``.npy`` header from the open binary ``fh``: ``(shape, fortran_order, dtype, header_bytes)``.

    Refuses dtypes whose kind is not in ``kinds`` (default numbers: object, structured, void, string, datetime
    arrays are refused) before any data is read.
    """
    from numpy.lib import format as npformat

    start = fh.tell()
    major, minor = npformat.read_magic(fh)
    if (major, minor) == (1, 0):
        shape, fortran, dtype = npformat.read_array_header_1_0(fh, max_header_size=10000)
    elif major in (2, 3):
        shape, fortran, dtype = npformat.read_array_header_2_0(fh, max_header_size=10000)
    else:
        raise DataError(f"{source}: '{name}' has an unknown .npy format version {major}.{minor}")
    check_numeric_dtype(dtype, source, name, kinds)
    return tuple(shape), fortran, dtype, fh.tell() - start


def open_npz(path, source=None):
    """``np.load(path)`` of an ``.npz`` after checking every member's header first: only numeric, boolean and
    string arrays, each declaring no more bytes than the archive stores for it (deflate bound included).

    Returns:
        the open ``NpzFile`` (use it as a context manager).

    Raises:
        DataError: an object/structured/datetime member, a declared shape larger than the archive holds.
        zipfile/zlib/ValueError errors are left to the caller's :func:`reading` funnel.
    """
    import zipfile

    source = source if source is not None else path
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        if len(infos) > 10_000:
            raise DataError(f"{source}: the archive has {len(infos)} members; expected a few arrays")
        for info in infos:
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            with zf.open(info) as fh:
                shape, _, dtype, header = npy_header(fh, source, name, kinds="biufUS")
            available = info.file_size - header
            if info.compress_type != zipfile.ZIP_STORED:
                available = min(available, MAX_COMPRESSION * info.compress_size + 4096)
            check_declared_bytes(shape, dtype, available, source, name)
    return np.load(path, allow_pickle=False)


MAX_CHANNELS = 16
"""Most values per point (xyz, normals, colours, intensity ...); more means the array is channels-first."""


def check_point_shape(shape, source, name: str = "points", batched: bool = True) -> None:
    """Refuse a points array that is not ``(N, D)`` / ``(M, N, D)`` with ``3 <= D <= MAX_CHANNELS``; a
    channels-first array such as ``(3, N)`` is named as such."""
    shape = tuple(int(d) for d in shape)
    ok_ndim = (2, 3) if batched else (2,)
    want = "(M, N, D) or (N, D)" if batched else "(N, D)"
    if len(shape) not in ok_ndim:
        raise DataError(f"{source}: '{name}' has shape {shape}; expected {want} with D = 3..{MAX_CHANNELS} "
                        "values per point (x, y, z first)")
    d, n = shape[-1], shape[-2]
    if d < 3 or d > MAX_CHANNELS:
        hint = (f" (it looks channels-first: {n} values per point; transpose it to (..., {d}, {n}))"
                if 3 <= n <= MAX_CHANNELS < d else "")
        raise DataError(f"{source}: '{name}' has shape {shape}: {d} values per point; expected 3..{MAX_CHANNELS} "
                        f"(x, y, z first){hint}")


# ------------------------------------------------------------------------------------- dtypes/values


def check_numeric_dtype(dtype, source, name: str, kinds: str = "iuf") -> None:
    """Refuse a dtype whose kind is not in ``kinds`` (default: integers and floats) naming ``name``."""
    dtype = np.dtype(dtype)
    if dtype.kind not in kinds or dtype.fields is not None or dtype.subdtype is not None:
        what = {"O": "Python objects", "S": "bytes", "U": "strings", "V": "structured/void records",
                "M": "datetimes", "m": "timedeltas", "c": "complex numbers", "b": "booleans"}.get(dtype.kind, "")
        expected = {"iuf": "numbers", "biuf": "booleans or numbers"}.get(kinds, "numbers or strings")
        raise DataError(f"{source}: '{name}' holds {what or dtype.kind} (dtype {dtype}); expected {expected}")


def numeric_array(arr, source, name: str, kinds: str = "iuf") -> np.ndarray:
    """``arr`` as an ndarray after :func:`check_numeric_dtype`."""
    a = np.asarray(arr)
    check_numeric_dtype(a.dtype, source, name, kinds)
    return a


def labels_from_array(arr, source, name: str = "labels") -> np.ndarray:
    """Class labels from a stored array, converted without truncation.

    * ``(M,)`` or ``(M, 1)`` integers, or floats that are exactly integral -> ``(M,)`` int64 class indices;
    * ``(M, C)`` with ``C > 1`` of 0/1 values (bool, int or float): one-hot rows (exactly one 1 each) ->
      ``(M,)`` int64 indices; otherwise multi-hot -> ``(M, C)`` float32 targets.

    Raises:
        DataError: a non-numeric dtype, NaN/Inf, non-integral floats, negative or huge (> MAX_CLASSES) class
            indices, values other than 0/1 in a one-/multi-hot array, or another shape.
    """
    a = numeric_array(arr, source, name, kinds="biuf")
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim == 1:
        if a.dtype.kind == "f":
            if not np.isfinite(a).all():
                raise DataError(f"{source}: '{name}' has NaN or infinite values; expected class indices")
            if not (a == np.round(a)).all():
                bad = a[a != np.round(a)][0]
                raise DataError(f"{source}: '{name}' has the non-integral value {float(bad)!r}; expected integer "
                                "class indices (or one-hot rows)")
        if a.size and (a.min() < 0 or a.max() >= MAX_CLASSES):
            bad = a.min() if a.min() < 0 else a.max()
            raise DataError(f"{source}: '{name}' has the class index {int(bad) if np.isfinite(bad) else bad}; "
                            f"expected 0 <= label < {MAX_CLASSES}")
        return a.astype(np.int64)
    if a.ndim == 2:
        if a.shape[1] > MAX_CLASSES:
            raise DataError(f"{source}: '{name}' has {a.shape[1]} columns; at most {MAX_CLASSES} classes")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise DataError(f"{source}: '{name}' (one-/multi-hot, shape {a.shape}) has NaN or infinite values")
        if not np.isin(a, (0, 1)).all():
            raise DataError(f"{source}: '{name}' has shape {a.shape} with values other than 0 and 1; expected "
                            "(M,) class indices or (M, C) one-/multi-hot rows")
        hot = a.astype(bool)
        if a.shape[0] and (hot.sum(axis=1) == 1).all():
            return hot.argmax(axis=1).astype(np.int64)  # one-hot rows: the class index of each
        return hot.astype(np.float32)
    raise DataError(f"{source}: '{name}' has shape {a.shape}; expected (M,) class indices or (M, C) one-hot rows")


def check_label_range(labels: np.ndarray, num_classes: int, source, name: str = "labels") -> None:
    """Refuse class indices outside ``[0, num_classes)`` (or a multi-hot width other than ``num_classes``)."""
    if labels.ndim == 2:
        if labels.shape[1] != num_classes:
            raise DataError(f"{source}: '{name}' has {labels.shape[1]} columns but there are {num_classes} "
                            "class names")
        return
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"{source}: '{name}' in [{labels.min()}, {labels.max()}] but there are {num_classes} "
                        f"class names (expected 0 <= label < {num_classes})")


def strings_from_array(arr, source, name: str) -> list[str]:
    """A 1-D array of strings (str or UTF-8 bytes) as a list of str.

    Raises:
        DataError: not 1-D (e.g. one string ``"abc"`` or an integer), not strings, or bytes that are not UTF-8.
    """
    a = np.asarray(arr)
    if a.dtype.kind not in "US":
        raise DataError(f"{source}: '{name}' holds {a.dtype} values; expected a list of names (strings)")
    if a.ndim != 1:
        raise DataError(f"{source}: '{name}' has shape {a.shape}; expected a 1-D list of names (e.g. "
                        "np.array(['chair', 'table']))")
    if a.dtype.kind == "S":
        out = []
        for i, b in enumerate(a.tolist()):
            try:
                out.append(b.decode("utf-8"))
            except UnicodeDecodeError:
                raise DataError(f"{source}: '{name}' entry {i} is not UTF-8 text") from None
        return out
    return [str(s) for s in a.tolist()]


def class_names_from_array(arr, source, name: str = "class_names") -> list[str]:
    """:func:`strings_from_array` for class names, which must also be at most :data:`MAX_CLASSES`, non-empty
    and unique."""
    names = strings_from_array(arr, source, name)
    if not names or len(names) > MAX_CLASSES:
        raise DataError(f"{source}: '{name}' has {len(names)} names; expected 1 to {MAX_CLASSES}")
    check_class_names(names, source, name)
    return names


def check_class_names(names: list[str], source, name: str = "class names") -> None:
    """Refuse empty, multi-line or repeated class names (one would hide another in every table)."""
    for i, s in enumerate(names):
        if not s.strip() or re.search(r"[\x00-\x1f]", s):
            raise DataError(f"{source}: {name} entry {i} ({s[:40]!r}) is empty or holds control characters")
    if len(set(names)) != len(names):
        seen: set[str] = set()
        dup = next(s for s in names if s in seen or seen.add(s))
        raise DataError(f"{source}: {name} repeat {dup!r}; expected one distinct name per class")
