"""Property-based fuzzing of every reader and checkpoint kind (issue 15), shared by the short profile
(``tests/test_hostile_fuzz.py``, part of ``make test``) and the long one (``benchmarks/bench_fuzz.py``).

For each KIND, hypothesis draws hostile files -- byte-level mutations of a valid seed (truncation, bit flips,
spliced random bytes, huge or negative numbers written over the header's numbers, wrong text encodings, NUL
bytes, NaN/Inf tokens) and structurally wrong files (arrays of random dtypes and shapes, NaN/Inf values,
out-of-range indices, configs outside their range) -- and the property is: reading the file gives a correct
dataset (finite float32 points ``(M, N, 3)``, labels inside the class range) or a model whose logits are finite,
or it raises a :class:`pointlens.errors.PointlensError` whose message is one line; nothing else, within
``SECONDS_PER_FILE``. Run as a script (``python tests/fuzz_hostile.py worker KIND COUNT SEED``) it fuzzes one kind
in a fresh process and prints one JSON summary (counts, slowest file, peak RSS of the process), so the peak memory
of every file is bounded by that process's peak.
"""

from __future__ import annotations

import io
import json
import os
import re
import resource
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

SECONDS_PER_FILE = 10.0
KINDS = ("npy", "text", "npz", "h5", "modelnet-txt", "off", "ply", "obj", "ckpt-pointlens", "ckpt-learning3d")
RNG = np.random.default_rng(0)


class Hang(BaseException):
    """Raised by the per-file alarm; a BaseException so no reader's funnel can swallow it."""


# ------------------------------------------------------------------------------------------- seeds


def _cloud(n=40) -> np.ndarray:
    return RNG.normal(size=(n, 3)).astype(np.float32)


def _npy_bytes(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _h5_bytes(**arrays) -> bytes:
    import h5py

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.h5"
        with h5py.File(p, "w") as h:
            for k, v in arrays.items():
                if isinstance(v, dict):
                    g = h.create_group(k)
                    for kk, vv in v.items():
                        g[kk] = vv
                else:
                    h[k] = v
        return p.read_bytes()


_TRI = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]])
_TET = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float64)


def _off_text(v=_TET, f=_TRI) -> str:
    return "OFF\n%d %d 0\n" % (len(v), len(f)) + "".join("%g %g %g\n" % tuple(x) for x in v) + \
        "".join("3 %d %d %d\n" % tuple(x) for x in f)


def _ply_text(v=_TET, f=_TRI) -> str:
    return ("ply\nformat ascii 1.0\nelement vertex %d\nproperty float x\nproperty float y\nproperty float z\n"
            "element face %d\nproperty list uchar int vertex_indices\nend_header\n" % (len(v), len(f)) +
            "".join("%g %g %g\n" % tuple(x) for x in v) + "".join("3 %d %d %d\n" % tuple(x) for x in f))


def _ply_binary(v=_TET, f=_TRI) -> bytes:
    head = ("ply\nformat binary_little_endian 1.0\nelement vertex %d\nproperty float x\nproperty float y\n"
            "property float z\nelement face %d\nproperty list uchar int vertex_indices\nend_header\n"
            % (len(v), len(f))).encode()
    body = np.asarray(v, "<f4").tobytes()
    for tri in f:
        body += bytes([3]) + np.asarray(tri, "<i4").tobytes()
    return head + body


def _obj_text(v=_TET, f=_TRI) -> str:
    return "".join("v %g %g %g\n" % tuple(x) for x in v) + "".join("f %d %d %d\n" % tuple(x + 1) for x in f)


def _text_cloud(arr) -> str:
    return "".join(",".join("%.6f" % x for x in row) + "\n" for row in arr)


def _ckpt_pointlens_bytes(edit=None) -> bytes:
    import torch

    from pointlens.models import create_model, save_checkpoint

    torch.manual_seed(0)
    model = create_model("pointnet", 3, channels=(8, 16), head=(8,))
    with tempfile.TemporaryDirectory() as d:
        p = save_checkpoint(Path(d) / "c.pt", model, class_names=["a", "b", "c"])
        if edit is None:
            return p.read_bytes()
        raw = torch.load(p, weights_only=True)
        edit(raw)
        buf = io.BytesIO()
        torch.save(raw, buf)
        return buf.getvalue()


def _learning3d_state(channels=(8, 16), hidden=(8,), classes=3) -> dict:
    import torch

    g = torch.Generator().manual_seed(0)
    sd, prev = {}, 3
    for i, c in enumerate(channels, 1):
        sd[f"feature_model.conv{i}.weight"] = torch.randn(c, prev, 1, generator=g)
        sd[f"feature_model.conv{i}.bias"] = torch.randn(c, generator=g)
        for k, v in (("weight", torch.ones(c)), ("bias", torch.zeros(c)), ("running_mean", torch.zeros(c)),
                     ("running_var", torch.ones(c)), ("num_batches_tracked", torch.tensor(0))):
            sd[f"feature_model.bn{i}.{k}"] = v
        prev = c
    for j, h in enumerate([*hidden, classes], 1):
        sd[f"linear{j}.weight"] = torch.randn(h, prev, generator=g)
        sd[f"linear{j}.bias"] = torch.randn(h, generator=g)
        if j <= len(hidden):
            for k, v in (("weight", torch.ones(h)), ("bias", torch.zeros(h)), ("running_mean", torch.zeros(h)),
                         ("running_var", torch.ones(h)), ("num_batches_tracked", torch.tensor(0))):
                sd[f"bn{j}.{k}"] = v
        prev = h
    return sd


def _torch_bytes(obj) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


# --------------------------------------------------------------------------------- byte mutations

NUMBERS = (0, -1, -7, 2**31, 2**32 + 5, 2**62, 10**12, 10**30, 3)


def mutations():
    """Hypothesis strategy of byte-level mutations (applied by :func:`mutate`)."""
    pos = st.floats(0, 1, allow_nan=False)
    return st.one_of(
        st.tuples(st.just("truncate"), pos),
        st.tuples(st.just("flip"), st.lists(st.tuples(pos, st.integers(0, 7)), min_size=1, max_size=16)),
        st.tuples(st.just("splice"), pos, st.binary(min_size=1, max_size=64)),
        st.tuples(st.just("insert"), pos, st.binary(min_size=1, max_size=32)),
        st.tuples(st.just("empty")),
        st.tuples(st.just("number"), st.integers(0, 40), st.sampled_from(NUMBERS)),
        st.tuples(st.just("token"), st.integers(0, 200), st.sampled_from([b"nan", b"inf", b"-inf", b"1e400", b"", b",",
                                                                            b"x", b"1,,2", b"\x00", b"\xff"])),
        st.tuples(st.just("encode"), st.sampled_from(["utf-16", "latin-1", "nul", "cp1252-bytes"])),
    )


def mutate(data: bytes, m) -> bytes:
    """Apply one mutation from :func:`mutations` to ``data``."""
    kind = m[0]
    n = len(data)
    if kind == "truncate":
        return data[: int(m[1] * n)]
    if kind == "flip":
        b = bytearray(data)
        for p, bit in m[1]:
            if b:
                b[min(int(p * len(b)), len(b) - 1)] ^= 1 << bit
        return bytes(b)
    if kind == "splice":
        i = int(m[1] * n)
        return data[:i] + m[2] + data[i + len(m[2]):]
    if kind == "insert":
        i = int(m[1] * n)
        return data[:i] + m[2] + data[i:]
    if kind == "empty":
        return b""
    if kind == "number":  # overwrite the k-th decimal number (a count, a shape, an index) with a hostile one
        found = list(re.finditer(rb"-?\d+", data[:4096]))
        if not found:
            return data
        g = found[m[1] % len(found)]
        return data[: g.start()] + str(m[2]).encode() + data[g.end():]
    if kind == "token":  # replace the k-th whitespace/comma separated token of a text file
        found = list(re.finditer(rb"[^\s,]+", data[:20000]))
        if not found:
            return data
        g = found[m[1] % len(found)]
        return data[: g.start()] + m[2] + data[g.end():]
    text = data.decode("utf-8", "replace")
    if m[1] == "utf-16":
        return text.encode("utf-16")
    if m[1] == "latin-1":
        return (text + "é").encode("latin-1", "replace")
    if m[1] == "nul":
        return data.replace(b"\n", b"\n\x00", 1)
    return data.replace(b"0", b"\x93", 1)


# ------------------------------------------------------------------------------ structural draws

DTYPES = ("<f4", "<f8", "<f2", "<i4", "|u1", "|b1", "<c8", "<M8[D]", "|S5", "<U3", "object", "struct")


def _array(draw, shape, dtype, nan=False):
    if dtype == "struct":
        return np.zeros(shape, dtype=[("x", "f4"), ("y", "f4")])
    if dtype == "object":
        a = np.empty(shape, dtype=object)
        a.fill(1.0)
        return a
    base = np.random.default_rng(draw(st.integers(0, 2**16))).normal(size=shape) * 3
    if dtype.startswith("<M8"):
        return base.astype("i8").astype(dtype)
    if dtype[1] in "SU":
        return base.astype(int).astype(dtype)
    a = base.astype(dtype) if dtype[1] not in "iub" else np.abs(base).astype(dtype)
    if nan and a.dtype.kind == "f" and a.size:
        a.flat[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return a


def _dtype(draw, good="<f4"):
    return draw(st.one_of(st.just(good), st.sampled_from(DTYPES)))


def _shape(draw, good):
    return draw(st.one_of(st.just(good), st.just(good), st.lists(st.integers(0, 9), min_size=0, max_size=4).map(tuple),
                          st.just(tuple(reversed(good)))))


@st.composite
def npz_structures(draw):
    """A dict of arrays for a dataset ``.npz`` with random dtypes, shapes, NaN and optional members."""
    m, n = draw(st.integers(1, 5)), draw(st.integers(1, 12))
    out = {"points": _array(draw, _shape(draw, (m, n, 3)), _dtype(draw), draw(st.integers(0, 3)) == 0)}
    lab = draw(st.sampled_from(["int", "float", "onehot", "multihot", "huge", "neg", "dtype"]))
    if lab == "int":
        out["labels"] = np.arange(m) % 3
    elif lab == "float":
        out["labels"] = np.arange(m) * draw(st.sampled_from([1.0, 0.5, np.nan]))
    elif lab in ("onehot", "multihot"):
        hot = np.eye(3)[np.arange(m) % 3]
        if lab == "multihot":
            hot[0, :] = draw(st.sampled_from([1.0, np.nan, 2.0]))
        out["labels"] = hot
    elif lab == "huge":
        out["labels"] = np.full(m, draw(st.sampled_from([2**62, 10**6, 2**31])), dtype=np.int64)
    elif lab == "neg":
        out["labels"] = -np.ones(m, int)
    else:
        out["labels"] = _array(draw, _shape(draw, (m,)), draw(st.sampled_from(DTYPES)))
    for key, shape, kinds in (("normals", (m, n, 3), "<f4"), ("parts", (m, n), "<i4"), ("gt_mask", (m, n), "|b1"),
                              ("instance", (m, n), "<i4"), ("instance_class", (m, 2), "<i4")):
        if draw(st.integers(0, 4)) == 0:
            out[key] = _array(draw, _shape(draw, shape), _dtype(draw, kinds), draw(st.integers(0, 3)) == 0)
    if draw(st.booleans()):
        out["class_names"] = draw(st.sampled_from([np.array(["a", "b", "c"]), np.array("abc"), np.array(5),
                                                   np.array([b"a", b"\xff", b"c"]), np.array(["a", "a", "b"]),
                                                   np.array(["x"] * 4), np.array([], dtype=str)]))
    if draw(st.integers(0, 3)) == 0:
        out["split"] = draw(st.sampled_from([np.array(["train"] * m), np.array(["test"] * m), np.array(3),
                                             np.array(["train"] * (m + 1))]))
    return out


# ---------------------------------------------------------------------------- writers and oracles


def _write_case(kind: str, case, folder: Path):
    """Write the hostile input of ``case`` under ``folder``; returns what :func:`_read` takes."""
    source, payload = case
    if kind == "npy":
        data = payload if source == "bytes" else _npy_bytes(payload)
        (folder / "c.npy").write_bytes(data)
        return folder / "c.npy"
    if kind == "text":
        (folder / "c.xyz").write_bytes(payload)
        return folder / "c.xyz"
    if kind == "npz":
        (folder / "d.npz").write_bytes(payload if source == "bytes" else _npz_bytes(**payload))
        return folder / "d.npz"
    if kind == "h5":
        h5, names = payload
        (folder / "ply_data_train0.h5").write_bytes(h5)
        (folder / "train_files.txt").write_text("ply_data_train0.h5\n")
        (folder / "shape_names.txt").write_bytes(names)
        return folder
    if kind == "modelnet-txt":
        names, cloud = payload
        (folder / "cube").mkdir(exist_ok=True)
        (folder / "modelnet40_shape_names.txt").write_bytes(names)
        (folder / "modelnet40_train.txt").write_text("cube_0001\ncube_0002\n")
        (folder / "modelnet40_test.txt").write_text("cube_0002\n")
        (folder / "cube" / "cube_0001.txt").write_bytes(cloud)
        (folder / "cube" / "cube_0002.txt").write_text(_text_cloud(_cloud(40)))
        return folder
    if kind in ("off", "ply", "obj"):
        (folder / "tet").mkdir(exist_ok=True)
        (folder / "tet" / f"m.{kind}").write_bytes(payload)
        return folder
    (folder / "c.pt").write_bytes(payload)
    return folder / "c.pt"


def _read(kind: str, target: Path):
    """Read ``target`` as ``kind`` and check the result is correct; returns ``"ok"`` or raises."""
    from pointlens.data import load_dataset, read_cloud_file

    if kind in ("npy", "text"):
        arr = read_cloud_file(target, None)
        assert arr.dtype == np.float32 and arr.ndim == 2 and arr.shape[1] == 3 and len(arr) > 0
        assert np.isfinite(arr).all()
        return "ok"
    if kind.startswith("ckpt"):
        import torch

        from pointlens.models import load_checkpoint

        loaded = load_checkpoint(target, format="pointlens" if kind == "ckpt-pointlens" else "learning3d")
        with torch.no_grad():
            out = loaded.model(torch.zeros(1, 16, 3).normal_(generator=torch.Generator().manual_seed(0)))
        assert out.shape == (1, len(loaded.class_names)) and torch.isfinite(out).all()
        return "ok"
    spec = {"npz": "npz", "h5": "modelnet40-h5", "modelnet-txt": "modelnet40-txt"}.get(kind, "meshes")
    ds = load_dataset(f"{spec}:{target}", split="all" if kind in ("npz", "off", "ply", "obj") else "train",
                      num_points=8, sampling="first")
    assert ds.points.dtype == np.float32 and ds.points.ndim == 3 and ds.points.shape[1:] == (8, 3)
    assert np.isfinite(ds.points).all() and len(ds) == len(ds.labels)
    if ds.labels.ndim == 1:
        assert ds.labels.dtype == np.int64 and ds.labels.min() >= 0 and ds.labels.max() < ds.num_classes
    else:
        assert ds.labels.shape[1] == ds.num_classes and np.isin(ds.labels, (0, 1)).all()
    assert all(isinstance(c, str) for c in ds.class_names) and len(set(ds.class_names)) == ds.num_classes
    for key in ("normals", "parts", "gt_mask", "instance"):
        v = getattr(ds, key)
        assert v is None or v.shape[:2] == ds.points.shape[:2]
    return "ok"


def cases(kind: str):
    """Hypothesis strategy of ``(source, payload)`` hostile inputs of ``kind``."""
    if kind == "npy":
        seed = _npy_bytes(_cloud())

        @st.composite
        def structural(draw):
            return "array", _array(draw, _shape(draw, (40, 3)), _dtype(draw), draw(st.integers(0, 3)) == 0)

        return st.one_of(mutations().map(lambda m: ("bytes", mutate(seed, m))), structural())
    if kind == "text":
        seed = _text_cloud(_cloud()).encode()
        return mutations().map(lambda m: ("bytes", mutate(seed, m)))
    if kind == "npz":
        seed = _npz_bytes(points=_cloud(48).reshape(4, 12, 3), labels=np.arange(4) % 3,
                          class_names=np.array(["a", "b", "c"]), normals=_cloud(48).reshape(4, 12, 3),
                          split=np.array(["train", "test"] * 2))
        return st.one_of(mutations().map(lambda m: ("bytes", mutate(seed, m))),
                         npz_structures().map(lambda a: ("arrays", a)))
    if kind == "h5":
        seed = _h5_bytes(data=_cloud(48).reshape(4, 12, 3), label=(np.arange(4) % 3)[:, None].astype(np.uint8),
                         normal=_cloud(48).reshape(4, 12, 3))
        names = b"a\nb\nc\n"

        @st.composite
        def structural(draw):
            arrays = npz_structures().map(lambda a: {"data": a["points"], "label": a["labels"],
                                                     **({"normal": a["normals"]} if "normals" in a else {})})
            a = draw(arrays)
            if draw(st.integers(0, 5)) == 0:
                a["data"] = {"x": np.zeros(3)}  # a group where a dataset belongs
            try:
                data = _h5_bytes(**a)
            except (TypeError, ValueError):  # h5py cannot store that dtype: store its bytes instead
                data = _h5_bytes(data=np.zeros((1, 8, 3)), label=np.frombuffer(b"\xff" * 8, "S8"))
            return ("h5", (data, names))

        return st.one_of(mutations().map(lambda m: ("h5", (mutate(seed, m), names))),
                         mutations().map(lambda m: ("h5", (seed, mutate(names, m)))), structural())
    if kind == "modelnet-txt":
        cloud, names = _text_cloud(_cloud(40)).encode(), b"cube\n"
        return st.one_of(mutations().map(lambda m: ("txt", (names, mutate(cloud, m)))),
                         mutations().map(lambda m: ("txt", (mutate(names, m), cloud))))
    if kind in ("off", "ply", "obj"):
        seeds = {"off": [_off_text().encode()], "ply": [_ply_text().encode(), _ply_binary()],
                 "obj": [_obj_text().encode()]}[kind]
        writer = {"off": _off_text, "ply": _ply_text, "obj": _obj_text}[kind]
        faces = st.lists(st.tuples(*[st.integers(-6, 9)] * 3), min_size=0, max_size=5).map(
            lambda f: writer(_TET, np.array(f, dtype=int).reshape(-1, 3)).encode())
        return st.one_of(*[mutations().map(lambda m, s=s: ("bytes", mutate(s, m))) for s in seeds],
                         faces.map(lambda b: ("bytes", b)))
    if kind == "ckpt-pointlens":
        seed = _ckpt_pointlens_bytes()
        edits = st.sampled_from([
            lambda r: r["model"].update(num_classes=10**12), lambda r: r["model"].update(kwargs=[1]),
            lambda r: r["model"].update(kwargs={"channels": [8, 2**40]}), lambda r: r.update(class_names=7),
            lambda r: r.update(class_names="abc"), lambda r: r.update(extra=[1]), lambda r: r.update(model=5),
            lambda r: r["state_dict"].update({k: v * np.nan for k, v in list(r["state_dict"].items())[:1]}),
            lambda r: r["state_dict"].update({k: v[:1] for k, v in list(r["state_dict"].items())[:1]}),
            lambda r: r.pop("weights_sha256"), lambda r: r.update(weights_sha256="0" * 64),
            lambda r: r.update(version="1"), lambda r: r.update(normalization=3),
            lambda r: r["model"].update(name="nope"), lambda r: r["model"].update(num_classes=True),
        ])
        return st.one_of(mutations().map(lambda m: ("bytes", mutate(seed, m))),
                         edits.map(lambda e: ("bytes", _ckpt_pointlens_bytes(e))))
    seed_sd = _learning3d_state()
    seed = _torch_bytes(seed_sd)

    def edited(e):
        sd = dict(seed_sd)
        e(sd)
        return _torch_bytes({"model": sd} if len(sd) % 2 else sd)

    import torch

    edits = st.sampled_from([
        lambda sd: sd.update({"linear2.weight": torch.full((3, 8), float("nan"))}),
        lambda sd: sd.update({"linear2.weight": torch.zeros(10**3, 8)}), lambda sd: sd.pop("linear1.weight"),
        lambda sd: sd.update({"feature_model.conv1.weight": torch.zeros(8, 3)}),
        lambda sd: sd.update({"feature_model.conv1.weight": 5}), lambda sd: sd.update({"linear9.weight": 1}),
        lambda sd: sd.update({"feature_model.conv2.weight": torch.zeros(16, 8, 1, dtype=torch.int64)}),
    ])
    return st.one_of(mutations().map(lambda m: ("bytes", mutate(seed, m))),
                     edits.map(lambda e: ("bytes", edited(e))))


def _alarm(signum, frame):
    raise Hang()


def run_kind(kind: str, count: int, seed: int = 0, folder: Path | None = None) -> dict:
    """Fuzz ``kind`` with ``count`` hypothesis examples; returns the summary (never raises on a finding)."""
    from pointlens.errors import PointlensError

    summary = {"kind": kind, "files": 0, "ok": 0, "refused": 0, "other": 0, "multi_line": 0, "hangs": 0,
               "memory_refusals": 0, "max_seconds": 0.0, "examples": []}
    base = Path(folder or tempfile.mkdtemp(prefix=f"fuzz_{kind}_"))
    old = signal.signal(signal.SIGALRM, _alarm)

    @hypothesis_seed(seed)
    @settings(max_examples=count, phases=[Phase.generate], database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(case=cases(kind))
    def one(case):
        k = summary["files"]
        summary["files"] += 1
        d = base / f"{k:05d}"
        d.mkdir(parents=True, exist_ok=True)
        target = _write_case(kind, case, d)
        t0 = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, SECONDS_PER_FILE)
        try:
            summary[_read(kind, target)] += 1
        except PointlensError as e:
            summary["refused"] += 1
            if len(str(e).splitlines()) != 1:
                summary["multi_line"] += 1
                summary["examples"].append(f"multi-line: {str(e)[:300]!r}")
            if "more memory than this machine" in str(e):
                summary["memory_refusals"] += 1
        except Hang:
            summary["hangs"] += 1
            summary["examples"].append(f"hang > {SECONDS_PER_FILE} s ({d})")
        except BaseException as e:  # noqa: BLE001 - the finding the fuzzer exists for
            summary["other"] += 1
            tb = traceback.format_exception(type(e), e, e.__traceback__)[-3:]
            summary["examples"].append(f"{type(e).__name__}: {str(e)[:200]} at {''.join(tb)[-400:]} ({d})")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        summary["max_seconds"] = max(summary["max_seconds"], time.perf_counter() - t0)
        if not summary["examples"] or not summary["examples"][-1].endswith(f"({d})"):
            for p in sorted(d.rglob("*"), reverse=True):  # keep only the files of findings
                p.unlink() if p.is_file() else p.rmdir()
            d.rmdir()

    np.random.seed(seed)
    try:
        one()
    finally:
        signal.signal(signal.SIGALRM, old)
    summary["examples"] = summary["examples"][:10]
    summary["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    summary["folder"] = str(base)
    return summary


if __name__ == "__main__":  # python tests/fuzz_hostile.py worker KIND COUNT SEED
    import warnings

    warnings.simplefilter("ignore")
    os.environ.setdefault("POINTLENS_PROGRESS", "0")
    _, _, kind_arg, count_arg, seed_arg = sys.argv
    import h5py  # noqa: F401  (imported before the timed files, like trimesh)
    import torch
    import trimesh  # noqa: F401

    torch.set_num_threads(1)
    result = run_kind(kind_arg, int(count_arg), int(seed_arg))
    print(json.dumps(result))
