"""Dataset readers: the layouts users have on disk, each returned as a :class:`PointCloudDataset`.

Parsing single files (text, npy/npz, OFF/PLY/OBJ, surface sampling) lives in :mod:`pointlens.data.formats`;
the readers here walk a dataset's layout, parse its files with those parsers and assemble labels and splits.

* :func:`read_modelnet_h5` — ``modelnet40_ply_hdf5_2048`` (h5 files with ``data``/``label``);
* :func:`read_modelnet_txt` — ``modelnet40_normal_resampled`` (one comma-separated text file per shape);
* :func:`read_meshes` — a folder of OFF/PLY/OBJ meshes, one sub-folder per class, sampled by area;
* :func:`read_npz` — a generic ``.npz`` (also what :func:`save_dataset` writes);
* :func:`~pointlens.data.formats.read_cloud_file` — one cloud from any supported file (re-exported here);
* :func:`read_voc` — a PASCAL VOC 2007 folder as an :class:`~pointlens.data.images.ImageDataset` (images,
  multi-hot labels, per-class segmentation masks).

Readers return the clouds as stored (all their points, or the first ``max_points`` when asked, in file
order, not normalised); :func:`pointlens.data.load_dataset` then samples and normalises. Every failure to find
or parse a file raises :class:`pointlens.errors.DataError` naming the path (and the expected layout).
"""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path

import numpy as np

from pointlens.data.classes import MODELNET40_CLASSES
from pointlens.data.dataset import PointCloudDataset
from pointlens.data.formats import (  # noqa: F401  (check_finite, read_cloud_file, read_off: re-exported)
    DEFAULT_MESH_POINTS,
    MESH_SUFFIXES,
    check_finite,
    parse_text_cloud,
    read_cloud_file,
    read_mesh,
    read_off,
    require_file,
    sample_surface,
)
from pointlens.data.formats.common import (
    MAX_CLASSES,
    MAX_COMPRESSION,
    check_class_names,
    check_declared_bytes,
    check_label_range,
    check_numeric_dtype,
    check_point_shape,
    class_names_from_array,
    data_reader,
    labels_from_array,
    numeric_array,
    open_npz,
    read_lines,
    reading,
    strings_from_array,
)
from pointlens.data.images import ImageDataset
from pointlens.errors import DataError, bad_argument
from pointlens.utils.io import save_npz, to_json
from pointlens.utils.progress import progress
from pointlens.utils.validate import check_choice, check_int

SPLITS = ("train", "test", "all", None)

H5_LAYOUT = ("PATH/train_files.txt and PATH/test_files.txt listing ply_data_*.h5 files (found by basename in "
             "PATH), each with 'data' (B, N, 3) and 'label' (B, 1); optional PATH/shape_names.txt")
TXT_LAYOUT = ("PATH/modelnet40_shape_names.txt, PATH/modelnet40_train.txt, PATH/modelnet40_test.txt "
              "(ids such as airplane_0001) and PATH/<class>/<id>.txt with comma-separated x,y,z[,nx,ny,nz] "
              "per line")
MESH_LAYOUT = ("PATH/<class>/[train|test/]<name>.off|.ply|.obj (one sub-folder per class; an optional "
               "train/test sub-folder gives the split)")
NPZ_LAYOUT = ("arrays 'points' (M, N, D>=3, xyz first), 'labels' (M,), optional 'normals', 'parts', 'split', "
              "'shape_names' or 'class_names', 'names'")


# ----------------------------------------------------------------------------------------------------------
# small helpers


def _want_split(split) -> str | None:
    check_choice("split", split, SPLITS)
    return None if split in (None, "all") else split


def _require_dir(path, layout: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_dir():
        raise DataError(f"{p}: folder not found; expected {layout}")
    return p


def _read_lines(path: Path) -> list[str]:
    with reading(path, "the text file"):
        return read_lines(path)


def _class_names_file(path: Path) -> list[str]:
    names = _read_lines(path)
    if not names or len(names) > MAX_CLASSES:
        raise DataError(f"{path}: {len(names)} class names; expected 1 to {MAX_CLASSES} (one per line)")
    check_class_names(names, path)
    return names


def filter_split(ds: PointCloudDataset, split, source: str) -> PointCloudDataset:
    """Keep the clouds of ``split`` (``train``/``test``; ``all``/None keep everything).

    Raises:
        InvalidArgumentError: a train/test split was asked but the dataset has no split information.
        DataError: the split is empty.
    """
    want = _want_split(split)
    if want is None:
        return ds
    if ds.split is None:
        raise bad_argument("split", split, f"'all' (or None): {source} has no train/test split information")
    mask = np.asarray(ds.split).astype(str) == want
    if not mask.any():
        raise DataError(f"{source}: no clouds in split '{want}' (splits present: "
                        f"{sorted(set(np.asarray(ds.split).astype(str).tolist()))})")
    return ds.subset(mask)


def _stack_ragged(clouds: list[np.ndarray], num_points: int | None, sampling: str, seed: int, source: str):
    """Stack clouds ``(N_i, D)``; clouds of different sizes are sampled to ``num_points`` per size group.

    Returns ``(stacked (M, N, D), presampled)``.
    """
    sizes = np.array([len(c) for c in clouds])
    if (sizes == sizes[0]).all():
        return np.stack(clouds), False
    if num_points is None:
        raise DataError(f"{source}: clouds have different sizes ({sizes.min()}..{sizes.max()} points); "
                        "give num_points to sample them to one size")
    if sizes.min() < num_points:
        i = int(np.argmin(sizes))
        raise bad_argument("num_points", num_points,
                           f"at most {sizes.min()}: cloud {i} of {source} has {sizes.min()} points; "
                           "ask for fewer points")
    from pointlens.data.transforms import sample_indices

    out = np.empty((len(clouds), num_points, clouds[0].shape[1]), dtype=np.float32)
    for size in np.unique(sizes):
        rows = np.flatnonzero(sizes == size)
        group = np.stack([clouds[i] for i in rows])
        idx = sample_indices(group, num_points, sampling, seed).numpy()
        out[rows] = np.take_along_axis(group, idx[..., None], axis=1)
    return out, True


# ----------------------------------------------------------------------------------------------------------
# ModelNet40 h5


def _h5_file_list(root: Path, split: str) -> list[Path]:
    listing = root / f"{split}_files.txt"
    if listing.is_file():
        files = []
        for entry in _read_lines(listing):
            p = root / Path(entry).name
            if not p.is_file():
                raise DataError(f"{p}: file not found (listed as {entry!r} in {listing}); "
                                f"expected {H5_LAYOUT}")
            files.append(p)
        return files
    files = sorted(root.glob(f"*{split}*.h5"), key=lambda p: [int(t) if t.isdigit() else t
                                                                   for t in re.split(r"(\d+)", p.name)])
    if not files:
        raise DataError(f"{listing}: file not found and no *{split}*.h5 in {root}; expected {H5_LAYOUT}")
    return files


def _h5_array(h, key: str, f: Path, kinds: str = "iuf"):
    """``h[key]`` checked before it is read: a dataset (not a group), numeric dtype, and a declared size the
    file can hold (its stored bytes, times the deflate bound when filters compress it)."""
    import h5py

    if key not in h:
        raise DataError(f"{f}: no '{key}' dataset (datasets: {', '.join(list(h.keys())[:10])}); expected "
                        f"{H5_LAYOUT}")
    ds = h[key]
    if not isinstance(ds, h5py.Dataset):
        raise DataError(f"{f}: '{key}' is a {type(ds).__name__.lower()}, not a dataset; expected {H5_LAYOUT}")
    check_numeric_dtype(ds.dtype, f, key, kinds)
    if ds.shape is None or len(ds.shape) == 0:
        raise DataError(f"{f}: '{key}' is a scalar or empty dataset; expected {H5_LAYOUT}")
    stored = int(ds.id.get_storage_size())
    filtered = ds.id.get_create_plist().get_nfilters() > 0
    available = MAX_COMPRESSION * stored + 4096 if filtered else stored
    check_declared_bytes(ds.shape, ds.dtype, available, f, key)
    return ds


@data_reader("the h5 dataset folder")
def read_modelnet_h5(path, split="train", *, max_points: int | None = None,
                     limit: int | None = None) -> PointCloudDataset:
    """Read the ``modelnet40_ply_hdf5_2048`` folder.

    Args:
        path: the folder holding ``train_files.txt``/``test_files.txt`` (their entries are resolved by
            basename in ``path``; without them ``*train*.h5``/``*test*.h5`` are used), the h5 files and
            ``shape_names.txt`` (ModelNet40's 40 names when absent).
        split: ``train``, ``test``, ``all`` or None (both, train first).
        max_points: read only the first ``max_points`` points of each cloud (None: all).
        limit: stop after this many clouds.

    Returns:
        PointCloudDataset: ``points (M, N, 3)``, ``labels (M,)``, ``normals`` when the files have ``normal``,
        ``names`` ``'<file>:<row>'``, ``split``; ``meta['source_points']`` = points per stored cloud.
    """
    import h5py

    root = _require_dir(path, H5_LAYOUT)
    want = _want_split(split)
    names_file = root / "shape_names.txt"
    class_names = _class_names_file(names_file) if names_file.is_file() else list(MODELNET40_CLASSES)
    pts, lab, nrm, names, splits = [], [], [], [], []
    total, source_points = 0, None
    for sp in ([want] if want else ["train", "test"]):
        for f in _h5_file_list(root, sp):
            if limit is not None and total >= limit:
                break
            with reading(f, "the h5 file (truncated or corrupt?)"), h5py.File(f, "r") as h:
                data = _h5_array(h, "data", f)
                label = _h5_array(h, "label", f, kinds="biuf")
                check_point_shape(data.shape, f, "data", batched=True)
                if data.ndim != 3:
                    raise DataError(f"{f}: 'data' has shape {data.shape}; expected (B, N, 3)")
                if label.shape[0] != data.shape[0] or label.ndim > 2:
                    raise DataError(f"{f}: 'label' has shape {label.shape} for {data.shape[0]} clouds; expected "
                                    f"({data.shape[0]},), ({data.shape[0]}, 1) or one-hot ({data.shape[0]}, C)")
                rows = data.shape[0] if limit is None else min(data.shape[0], limit - total)
                cols = data.shape[1] if max_points is None else min(data.shape[1], max_points)
                source_points = data.shape[1] if source_points is None else min(source_points, data.shape[1])
                p = np.asarray(data[:rows, :cols, :3], dtype=np.float32)
                y = labels_from_array(label[:rows], f, "label")
                n = None
                if "normal" in h:
                    normal = _h5_array(h, "normal", f)
                    if normal.shape[:2] != data.shape[:2] or normal.ndim != 3 or normal.shape[2] < 3:
                        raise DataError(f"{f}: 'normal' has shape {normal.shape} but 'data' {data.shape}; "
                                        "expected one (x, y, z) normal per point")
                    n = np.asarray(normal[:rows, :cols, :3], dtype=np.float32)
                    check_finite(n, f"{f} ('normal')")
            if p.ndim != 3 or p.shape[-1] < 3:
                raise DataError(f"{f}: 'data' has shape {p.shape}; expected (B, N, 3)")
            check_finite(p[..., :3], f)
            pts.append(p[..., :3])
            nrm.append(n)
            lab.append(y)
            names.extend(f"{f.name}:{i}" for i in range(rows))
            splits.extend([sp] * rows)
            total += rows
    if not pts:
        raise DataError(f"{root}: no clouds found; expected {H5_LAYOUT}")
    if len({p.shape[1] for p in pts}) > 1:
        sizes = sorted({p.shape[1] for p in pts})
        raise DataError(f"{root}: h5 files hold clouds of different sizes {sizes}")
    if len({y.ndim for y in lab}) > 1 or len({y.shape[1:] for y in lab}) > 1:
        raise DataError(f"{root}: h5 files mix label forms (class indices and multi-hot rows)")
    labels = np.concatenate(lab)
    check_label_range(labels, len(class_names), root)
    normals = np.concatenate(nrm) if all(n is not None for n in nrm) else None
    return PointCloudDataset(points=np.concatenate(pts), labels=labels, class_names=class_names,
                             normals=normals, names=np.array(names), split=np.array(splits),
                             meta={"reader": "modelnet40-h5", "path": str(root),
                                   "source_points": source_points})


# ----------------------------------------------------------------------------------------------------------
# ModelNet40 txt


def _txt_prefix(root: Path) -> str:
    for prefix in ("modelnet40", "modelnet10"):
        if (root / f"{prefix}_shape_names.txt").is_file():
            return prefix
    raise DataError(f"{root / 'modelnet40_shape_names.txt'}: file not found; expected {TXT_LAYOUT}")


@data_reader("the text dataset folder")
def read_modelnet_txt(path, split="train", *, num_points: int | None = None, sampling: str = "first",
                      seed: int = 0, limit: int | None = None) -> PointCloudDataset:
    """Read the ``modelnet40_normal_resampled`` folder (``modelnet10_*`` lists are used when present instead).

    Args:
        path: the folder (see ``TXT_LAYOUT``).
        split: ``train``, ``test``, ``all`` or None.
        num_points: with ``sampling='first'`` only the first ``num_points`` lines of each file are read; with
            another sampling every line is read, and files of different sizes are sampled to ``num_points``
            here (``meta['presampled']``).
        sampling: ``first``, ``random`` or ``fps`` (see above).
        seed: seed of the sampling of ragged files.
        limit: read only the first ``limit`` shapes of the split.

    Returns:
        PointCloudDataset with ``points``, ``normals`` (when the files have 6 columns), ``labels``, ``names``
        (the ids) and ``split``.
    """
    root = _require_dir(path, TXT_LAYOUT)
    want = _want_split(split)
    prefix = _txt_prefix(root)
    class_names = _class_names_file(root / f"{prefix}_shape_names.txt")
    lookup = {c: i for i, c in enumerate(class_names)}
    ids, splits = [], []
    for sp in ([want] if want else ["train", "test"]):
        listing = require_file(root / f"{prefix}_{sp}.txt", TXT_LAYOUT)
        entries = _read_lines(listing)
        ids.extend(entries)
        splits.extend([sp] * len(entries))
    if limit is not None:
        ids, splits = ids[:limit], splits[:limit]
    if not ids:
        raise DataError(f"{root}: the split lists are empty; expected {TXT_LAYOUT}")
    max_lines = num_points if sampling == "first" else None
    clouds, labels = [], []
    for shape_id in progress(ids, desc="reading txt clouds"):
        cls = shape_id.rsplit("_", 1)[0]
        if cls not in lookup:
            raise DataError(f"{root}: id {shape_id!r} names class {cls!r}, not in {prefix}_shape_names.txt")
        f = require_file(root / cls / f"{shape_id}.txt", TXT_LAYOUT)
        arr = parse_text_cloud(f, max_lines)
        if max_lines is not None and len(arr) < max_lines:
            raise bad_argument("num_points", num_points, f"at most {len(arr)}: {f} has {len(arr)} points "
                               "(ask for fewer points)")
        check_finite(arr[:, :3], f)
        clouds.append(arr)
        labels.append(lookup[cls])
    if len({c.shape[1] for c in clouds}) > 1:
        raise DataError(f"{root}: files have different column counts {sorted({c.shape[1] for c in clouds})}")
    stacked, presampled = _stack_ragged(clouds, num_points, sampling, seed, str(root))
    normals = stacked[..., 3:6] if stacked.shape[-1] >= 6 else None
    meta = {"reader": "modelnet40-txt", "path": str(root), "lists": prefix}
    if presampled:
        meta["presampled"] = True
    return PointCloudDataset(points=stacked[..., :3], labels=np.array(labels, dtype=np.int64),
                             class_names=class_names, normals=normals, names=np.array(ids),
                             split=np.array(splits), meta=meta)


# ----------------------------------------------------------------------------------------------------------
# mesh folders


@data_reader("the mesh folder")
def read_meshes(path, split="train", *, num_points: int = DEFAULT_MESH_POINTS, seed: int = 0,
                limit: int | None = None) -> PointCloudDataset:
    """Read a folder of meshes, one sub-folder per class, and sample each surface by area.

    The class of a mesh is the first sub-folder under ``path``; a ``train`` or ``test`` folder deeper in its
    path gives its split (ModelNet's ``PATH/chair/train/chair_0001.off``). Class names are the sorted
    sub-folder names (ModelNet40's official order). Each mesh is sampled with a seed derived from ``seed`` and
    its relative path, so a mesh gets the same points whatever split or limit is asked.

    Args:
        path: the root folder.
        split: ``train``, ``test``, ``all`` or None (``train``/``test`` need train/test sub-folders).
        num_points: area samples per mesh.
        seed: sampling seed.
        limit: read only the first ``limit`` meshes of the split (sorted by class, split, name).

    Returns:
        PointCloudDataset with ``points (M, num_points, 3)``, ``normals`` (the sampled triangles' normals),
        ``labels``, ``names`` (relative paths without suffix) and ``split`` (None when no mesh is in a
        train/test folder; ``''`` for meshes outside one when others are).
    """
    root = _require_dir(path, MESH_LAYOUT)
    num_points = check_int("num_points", num_points, minimum=1)
    want = _want_split(split)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in MESH_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"{root}: no .off/.ply/.obj mesh found; expected {MESH_LAYOUT}")
    entries = []
    for f in files:
        rel = f.relative_to(root)
        if len(rel.parts) < 2:
            raise DataError(f"{f}: mesh directly in {root}, so its class is unknown; expected {MESH_LAYOUT}")
        sp = next((s.lower() for s in rel.parts[1:-1] if s.lower() in ("train", "test")), "")
        entries.append((rel.parts[0], sp, rel.with_suffix("").as_posix(), f))
    class_names = sorted({e[0] for e in entries})
    has_split = any(e[1] for e in entries)
    entries.sort(key=lambda e: (class_names.index(e[0]), e[1], e[2]))
    if want is not None:
        if not has_split:
            raise bad_argument("split", split, f"'all' (or None): {root} has no train/test sub-folders")
        entries = [e for e in entries if e[1] == want]
        if not entries:
            raise DataError(f"{root}: no mesh in a '{want}' sub-folder; expected {MESH_LAYOUT}")
    if limit is not None:
        entries = entries[:limit]
    pts = np.empty((len(entries), num_points, 3), dtype=np.float32)
    nrm = np.empty_like(pts)
    for i, (_, _, name, f) in enumerate(progress(entries, desc="sampling meshes")):
        v, fc = read_mesh(f)
        pts[i], nrm[i] = sample_surface(v, fc, num_points, [seed, zlib.crc32(name.encode())],
                                        return_normals=True, source=str(f))
    labels = np.array([class_names.index(e[0]) for e in entries], np.int64)
    return PointCloudDataset(points=pts, labels=labels, class_names=class_names, normals=nrm,
                             names=np.array([e[2] for e in entries]),
                             split=np.array([e[1] for e in entries]) if has_split else None,
                             meta={"reader": "meshes", "path": str(root), "mesh_points": num_points,
                                   "presampled": True})


# ----------------------------------------------------------------------------------------------------------
# generic npz


def _per_point(arr, name: str, m: int, n: int, path: Path, kinds: str, trailing: tuple = ()) -> np.ndarray:
    """A per-cloud array of the full file checked to be ``(m, n, *trailing)`` with a dtype of ``kinds``."""
    a = numeric_array(arr, path, name, kinds)
    want = (m, n, *trailing)
    if a.shape != want:
        raise DataError(f"{path}: '{name}' has shape {a.shape}; expected {want} (one value per point of "
                        "'points')")
    return a


def _integral(a: np.ndarray, path: Path, name: str, minimum: int = -1) -> np.ndarray:
    if a.dtype.kind == "f" and (not np.isfinite(a).all() or (a != np.round(a)).any()):
        raise DataError(f"{path}: '{name}' has non-integral or non-finite values; expected integers")
    if a.size and a.min() < minimum:
        raise DataError(f"{path}: '{name}' has the value {int(a.min())}; expected integers >= {minimum}")
    return a.astype(np.int64)


@data_reader("the .npz file (truncated or corrupt?)")
def read_npz(path, split="train", *, limit: int | None = None) -> PointCloudDataset:
    """Read a generic ``.npz`` dataset (see ``NPZ_LAYOUT``; :func:`save_dataset` writes this format).

    Every member's header is checked before it is read (dtype; declared size against the archive). Points must
    be numeric ``(M, N, D)`` or ``(N, D)`` with ``3 <= D <= 16`` and are converted to float32 (float16 files
    are fine); channels 3..5 become ``normals`` when there is no ``normals`` array. Labels are integers (or
    exactly integral floats), or one-hot rows (converted to indices), or multi-hot rows (kept as targets).
    The class count comes from ``class_names``/``shape_names`` or else from the labels of the WHOLE file (never
    from the ``limit``-ed subset). Optional arrays ``parts``, ``part_names``, ``gt_mask``, ``instance``,
    ``instance_class``, ``names``, ``split`` and ``meta_json`` are checked for shape and dtype.

    Args:
        path: the ``.npz`` file.
        split: ``train``, ``test``, ``all`` or None (``train``/``test`` need a ``split`` array).
        limit: keep only the first ``limit`` clouds of the split.

    Returns:
        PointCloudDataset.

    Raises:
        DataError: missing, truncated or corrupt file, missing ``points``/``labels``, wrong dtypes or shapes,
            NaN coordinates (always one line naming the file).
    """
    path = require_file(path, NPZ_LAYOUT)
    want = _want_split(split)
    with open_npz(path) as z:
        keys = set(z.files)
        for key in ("points", "labels"):
            if key not in keys:
                raise DataError(f"{path}: no '{key}' array (arrays: {', '.join(sorted(keys))}); "
                                f"expected {NPZ_LAYOUT}")
        raw = numeric_array(z["points"], path, "points")
        check_point_shape(raw.shape, path)
        if raw.ndim == 2:
            raw = raw[None]
        m, n = raw.shape[:2]
        all_labels = labels_from_array(z["labels"], path)
        if len(all_labels) != m:
            raise DataError(f"{path}: {len(all_labels)} labels for {m} clouds; expected one label per cloud")
        name_key = next((k for k in ("class_names", "shape_names") if k in keys), None)
        if name_key:
            class_names = class_names_from_array(z[name_key], path, name_key)
        elif all_labels.ndim == 2:
            class_names = [f"class_{i}" for i in range(all_labels.shape[1])]
        else:  # from the labels of the whole file, never from a limited subset
            class_names = [f"class_{i}" for i in range(int(all_labels.max()) + 1 if all_labels.size else 0)]
        check_label_range(all_labels, len(class_names), path)
        split_arr = None
        if "split" in keys:
            split_arr = np.array(strings_from_array(z["split"], path, "split"), dtype=str)
            if len(split_arr) != m:
                raise DataError(f"{path}: 'split' has {len(split_arr)} entries for {m} clouds")
        if want is None:
            rows = np.arange(m)
        else:
            if split_arr is None:
                raise bad_argument("split", split, f"'all' (or None): {path} has no 'split' array")
            rows = np.flatnonzero(split_arr == want)
            if len(rows) == 0:
                raise DataError(f"{path}: no clouds in split '{want}' (splits present: "
                                f"{sorted(set(split_arr.tolist()))})")
        if limit is not None:
            rows = rows[:limit]
        raw = raw[rows]
        points = np.asarray(raw[..., :3], dtype=np.float32)
        out = {"labels": all_labels[rows]}
        if "normals" in keys:
            out["normals"] = _per_point(z["normals"], "normals", m, n, path, "iuf", (3,))[rows].astype(np.float32)
        elif raw.shape[-1] >= 6:
            out["normals"] = np.asarray(raw[..., 3:6], dtype=np.float32)
        if "normals" in out:
            check_finite(out["normals"], f"{path} ('normals')")
        if "parts" in keys:
            out["parts"] = _integral(_per_point(z["parts"], "parts", m, n, path, "iuf")[rows], path, "parts")
        if "gt_mask" in keys:
            mask = _per_point(z["gt_mask"], "gt_mask", m, n, path, "biuf")[rows]
            if not np.isin(mask, (0, 1)).all():
                raise DataError(f"{path}: 'gt_mask' has values other than 0/1 (or NaN); expected a boolean mask")
            out["gt_mask"] = mask.astype(bool)
        if "instance" in keys:
            out["instance"] = _integral(_per_point(z["instance"], "instance", m, n, path, "iuf")[rows], path,
                                        "instance")
        if "instance_class" in keys:
            ic = numeric_array(z["instance_class"], path, "instance_class")
            if ic.ndim != 2 or len(ic) != m:
                raise DataError(f"{path}: 'instance_class' has shape {ic.shape}; expected ({m}, K)")
            out["instance_class"] = _integral(ic[rows], path, "instance_class")
        if "names" in keys:
            names = np.array(strings_from_array(z["names"], path, "names"), dtype=str)
            if len(names) != m:
                raise DataError(f"{path}: 'names' has {len(names)} entries for {m} clouds")
            out["names"] = names[rows]
        if split_arr is not None:
            out["split"] = split_arr[rows]
        if "part_names" in keys:
            out["part_names"] = strings_from_array(z["part_names"], path, "part_names")
        cached = None
        if "meta_json" in keys:
            mj = z["meta_json"]
            if mj.dtype.kind not in "US" or mj.ndim != 0:
                raise DataError(f"{path}: 'meta_json' is not one JSON string")
            cached = json.loads(str(mj))
    check_finite(points, path)
    meta = {"reader": "npz", "path": str(path), "source_points": int(n)}
    if cached is not None:
        meta["cached_meta"] = cached
    try:
        return PointCloudDataset(points=points, labels=out.pop("labels"), class_names=class_names, meta=meta,
                                 **out)
    except ValueError as e:
        raise DataError(f"{path}: inconsistent arrays: {e}") from None


def save_dataset(dataset: PointCloudDataset, path) -> Path:
    """Write ``dataset`` to a compressed ``.npz`` that :func:`read_npz` (spec ``npz:PATH``) reads back.

    Arrays: ``points``, ``labels``, ``class_names`` and, when set, ``normals``, ``parts``, ``part_names``,
    ``gt_mask``, ``instance``, ``instance_class``, ``names``, ``split``; ``meta_json`` holds ``meta`` as JSON.
    The write is atomic.

    Returns:
        The path written.
    """
    arrays = {"points": dataset.points, "labels": dataset.labels,
              "class_names": np.array(dataset.class_names, dtype=str)}
    for key in ("normals", "parts", "gt_mask", "instance", "instance_class"):
        v = getattr(dataset, key)
        if v is not None:
            arrays[key] = v
    for key in ("names", "split"):
        v = getattr(dataset, key)
        if v is not None:
            arrays[key] = np.asarray(v).astype(str)
    if dataset.part_names is not None:
        arrays["part_names"] = np.array(dataset.part_names, dtype=str)
    arrays["meta_json"] = np.array(to_json(dataset.meta, indent=None))
    return save_npz(path, **arrays)


# ----------------------------------------------------------------------------------------------------------
# PASCAL VOC (images)

VOC_LAYOUT = ("PATH = VOCdevkit/VOC2007 (or VOCdevkit holding VOC2007) with JPEGImages/<id>.jpg, "
              "Annotations/<id>.xml, SegmentationClass/<id>.png (palette) and ImageSets/Segmentation/"
              "{train,val,test}.txt (ImageSets/Main/... when masks are not read)")


def _voc_root(path) -> Path:
    root = _require_dir(path, VOC_LAYOUT)
    if not (root / "JPEGImages").is_dir() and (root / "VOC2007" / "JPEGImages").is_dir():
        root = root / "VOC2007"
    for sub in ("JPEGImages", "Annotations"):
        if not (root / sub).is_dir():
            raise DataError(f"{root / sub}: folder not found; expected {VOC_LAYOUT}")
    return root


def _voc_ids(listing: Path) -> list[str]:
    ids = []
    for k, line in enumerate(_read_lines(listing)):
        name = line.split()[0]
        if "/" in name or "\\" in name or name in (".", ".."):
            raise DataError(f"{listing}: line {k + 1} ({name[:40]!r}) is not an image id; expected one id such "
                            "as 000032 per line")
        ids.append(name)
    return ids


def read_voc(path, split="train", *, size: int = 224, masks: bool = True,
             limit: int | None = None) -> ImageDataset:
    """Read a PASCAL VOC 2007 folder as an :class:`~pointlens.data.images.ImageDataset`.

    Labels: multi-hot over the 20 :data:`~pointlens.data.classes.VOC_CLASSES` from the objects of
    ``Annotations/<id>.xml``; objects flagged ``difficult`` COUNT (they are in the image and in its
    segmentation); ``meta['difficult']`` lists, per image, the classes all of whose objects are difficult.
    Masks (``masks=True``): ``SegmentationClass/<id>.png`` palette indices -> ``(20, size, size)`` bool per
    class (255 void pixels belong to no class). With masks only the images of the segmentation subset are read
    (``ImageSets/Segmentation``: 209 train, 213 val, 210 test images in VOC 2007); without them
    ``ImageSets/Main`` (5,011 trainval images) and ``masks`` is None.

    Splits: ``train`` = the ``train.txt`` list; ``test`` = ``test.txt`` when present (the VOC 2007 test
    release), else ``val.txt``; ``all``/None = both (``split`` says which). Images are resized to
    ``size x size`` (bilinear; the aspect ratio is not kept), masks with nearest neighbour.

    Args:
        path: ``VOCdevkit/VOC2007`` (or the ``VOCdevkit`` folder holding it).
        split: ``train``, ``test``, ``all`` or None.
        size: output side in pixels (>= 8).
        masks: read the segmentation masks (and keep only the segmented images).
        limit: read only the first ``limit`` images of the split.

    Returns:
        ImageDataset with ``images (M, 3, size, size)``, ``labels (M, 20)``, ``masks (M, 20, size, size)``
        (or None), ``names`` (image ids), ``split`` and ``meta`` (root, split files used, size).

    Raises:
        DataError: a missing folder, split file or per-image file, broken XML, an unknown class name, a mask
            that is not a palette PNG or has an index outside 0-20/255 (each naming the file and the fix).
    """
    from pointlens.data.classes import VOC_CLASSES
    from pointlens.data.formats import voc as fmt

    want = _want_split(split)
    size = check_int("size", size, minimum=8, maximum=4096)
    if limit is not None:
        limit = check_int("limit", limit, minimum=1)
    root = _voc_root(path)
    folder = "Segmentation" if masks else "Main"
    if masks and not (root / "SegmentationClass").is_dir():
        raise DataError(f"{root / 'SegmentationClass'}: folder not found; expected {VOC_LAYOUT} (or read without "
                        "masks: voc:PATH,masks=0)")
    files = {"train": fmt.voc_split_file(root, folder, "train"),
             "test": fmt.voc_split_file(root, folder, "test") or fmt.voc_split_file(root, folder, "val")}
    wanted = [want] if want else [s for s in ("train", "test") if files[s] is not None]
    if not wanted:
        raise DataError(f"{root / 'ImageSets' / folder}: no train.txt, val.txt or test.txt; expected {VOC_LAYOUT}")
    for s in wanted:
        if files[s] is None:
            names = "train.txt" if s == "train" else "test.txt or val.txt"
            raise DataError(f"{root / 'ImageSets' / folder}: no {names} for split '{s}'; expected {VOC_LAYOUT}")
    ids, splits = [], []
    for s in wanted:
        got = _voc_ids(files[s])
        ids += got
        splits += [s] * len(got)
    if limit is not None:
        ids, splits = ids[:limit], splits[:limit]
    if not ids:
        raise DataError(f"{files[wanted[0]]}: lists no images; expected one image id per line")
    c = len(VOC_CLASSES)
    images = np.empty((len(ids), 3, size, size), dtype=np.float32)
    labels = np.zeros((len(ids), c), dtype=np.float32)
    mask_arr = np.zeros((len(ids), c, size, size), dtype=bool) if masks else None
    difficult = []
    for i, name in enumerate(progress(ids, desc="read VOC")):
        images[i] = fmt.read_rgb_image(root / "JPEGImages" / f"{name}.jpg", size)
        labels[i], diff = fmt.parse_voc_annotation(root / "Annotations" / f"{name}.xml")
        difficult.append([VOC_CLASSES[k] for k in np.flatnonzero(diff)])
        if masks:
            mask_arr[i] = fmt.read_voc_segmentation(root / "SegmentationClass" / f"{name}.png", c, size)
    meta = {"source": "voc", "root": str(root), "size": size, "masks": bool(masks),
            "split_files": {s: str(files[s]) for s in wanted}, "difficult": difficult}
    return ImageDataset(images=images, labels=labels, class_names=list(VOC_CLASSES), masks=mask_arr,
                        names=np.array(ids), split=np.array(splits), meta=meta)
