"""Readers for the point-cloud formats users have on disk; each returns a :class:`PointCloudDataset`.

* :func:`read_modelnet_h5` — ``modelnet40_ply_hdf5_2048`` (h5 files with ``data``/``label``);
* :func:`read_modelnet_txt` — ``modelnet40_normal_resampled`` (one comma-separated text file per shape);
* :func:`read_meshes` — a folder of OFF/PLY/OBJ meshes, one sub-folder per class, sampled by area;
* :func:`read_npz` — a generic ``.npz`` (also what :func:`save_dataset` writes);
* :func:`read_cloud_file` — one cloud from any supported file.

Readers return the clouds as stored (all their points, or the first ``max_points`` when asked, in file
order, not normalised); :func:`pointlens.data.load_dataset` then samples and normalises. Every failure to find
or parse a file raises :class:`pointlens.errors.DataError` naming the path (and the expected layout).
"""

from __future__ import annotations

import itertools
import json
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np

from pointlens.data.dataset import PointCloudDataset
from pointlens.errors import DataError, PointlensError, bad_argument
from pointlens.utils.io import save_npz, to_json
from pointlens.utils.progress import progress
from pointlens.utils.validate import check_choice, check_int

MODELNET40_CLASSES = [
    "airplane", "bathtub", "bed", "bench", "bookshelf", "bottle", "bowl", "car", "chair", "cone", "cup",
    "curtain", "desk", "door", "dresser", "flower_pot", "glass_box", "guitar", "keyboard", "lamp", "laptop",
    "mantel", "monitor", "night_stand", "person", "piano", "plant", "radio", "range_hood", "sink", "sofa",
    "stairs", "stool", "table", "tent", "toilet", "tv_stand", "vase", "wardrobe", "xbox",
]
MESH_SUFFIXES = (".off", ".ply", ".obj")
CLOUD_SUFFIXES = (".npy", ".npz", ".txt", ".xyz", ".csv", ".ply", ".off", ".obj")
SPLITS = ("train", "test", "all", None)
DEFAULT_MESH_POINTS = 2048

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


def _require_file(path, layout: str | None = None) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
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


def _read_lines(path: Path) -> list[str]:
    return [s.strip() for s in path.read_text().splitlines() if s.strip()]


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
# meshes


def read_off(path) -> tuple[np.ndarray, np.ndarray]:
    """Read an OFF mesh, tolerating ModelNet's merged header (``OFF490 518 0`` on the first line).

    Polygons with more than three vertices are split into a triangle fan. Comments (``#``) and the COFF/NOFF
    variants (extra columns after xyz) are accepted.

    Args:
        path: the ``.off`` file.

    Returns:
        ``(vertices (V, 3) float64, faces (F, 3) int64)``.

    Raises:
        DataError: missing file, not an OFF file, truncated, bad indices, or no faces.
    """
    path = _require_file(path)
    try:
        text = path.read_text(errors="strict")
    except (UnicodeDecodeError, OSError) as e:
        raise DataError(f"{path}: cannot read as a text OFF file ({e})") from None
    lines = [t for t in (s.split("#", 1)[0].strip() for s in text.splitlines()) if t]
    m = re.match(r"^([A-Za-z]*OFF)\s*(.*)$", lines[0]) if lines else None
    if m is None:
        raise DataError(f"{path}: not an OFF file (the first line must start with 'OFF')")
    if m.group(2):
        counts, body = m.group(2), 1
    else:
        counts, body = (lines[1] if len(lines) > 1 else ""), 2
    try:
        nv, nf = (int(x) for x in counts.split()[:2])
    except ValueError:
        raise DataError(f"{path}: bad OFF header counts {counts!r}; expected 'vertices faces edges'") \
            from None
    vlines, flines = lines[body:body + nv], lines[body + nv:body + nv + nf]
    if len(vlines) < nv or len(flines) < nf:
        raise DataError(f"{path}: truncated OFF file: header announces {nv} vertices and {nf} faces, found "
                        f"{len(vlines)} and {max(0, len(flines))}")
    try:
        vertices = np.array([s.split()[:3] for s in vlines], dtype=np.float64).reshape(nv, 3)
    except ValueError:
        raise DataError(f"{path}: malformed vertex lines (expected three numbers per line)") from None
    if nf == 0:
        raise DataError(f"{path}: the OFF file has no faces (a mesh is needed to sample its surface)")
    rows = [s.split() for s in flines]
    try:
        if all(len(r) >= 4 and r[0] == "3" for r in rows):
            faces = np.array([r[1:4] for r in rows], dtype=np.int64)
        else:
            tris = []
            for r in rows:
                k = int(r[0])
                ids = [int(x) for x in r[1:1 + k]]
                if k < 3 or len(ids) < k:
                    raise ValueError
                tris.extend((ids[0], ids[j], ids[j + 1]) for j in range(1, k - 1))
            faces = np.array(tris, dtype=np.int64).reshape(-1, 3)
    except ValueError:
        raise DataError(f"{path}: malformed face lines (expected 'k i1 ... ik' with k >= 3)") from None
    if faces.size and (faces.min() < 0 or faces.max() >= nv):
        raise DataError(f"{path}: face indices outside [0, {nv - 1}]")
    return vertices, faces


def read_mesh(path) -> tuple[np.ndarray, np.ndarray]:
    """Read a triangle mesh from ``.off`` (own parser), ``.ply`` or ``.obj`` (trimesh).

    Returns:
        ``(vertices (V, 3) float64, faces (F, 3) int64)``.

    Raises:
        DataError: missing/unreadable file or a file without faces.
    """
    path = _require_file(path)
    suffix = path.suffix.lower()
    if suffix == ".off":
        vertices, faces = read_off(path)
    elif suffix in (".ply", ".obj"):
        import trimesh

        try:
            mesh = trimesh.load(str(path), force="mesh", process=False)
            vertices = np.asarray(mesh.vertices, dtype=np.float64).reshape(-1, 3)
            faces = np.asarray(mesh.faces, dtype=np.int64).reshape(-1, 3)
        except Exception as e:  # trimesh raises many types on corrupt files
            raise DataError(f"{path}: cannot read the mesh ({type(e).__name__}: {e})") from None
        if len(faces) == 0:
            raise DataError(f"{path}: the mesh has no faces (a mesh is needed to sample its surface)")
    else:
        raise bad_argument("path", str(path), "a mesh file ending in " + ", ".join(MESH_SUFFIXES))
    if not np.isfinite(vertices).all():
        bad = int((~np.isfinite(vertices)).any(-1).sum())
        raise DataError(f"{path}: {bad} vertex(es) with NaN or infinite coordinates")
    return vertices, faces


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng([int(s) % 2**32 for s in np.atleast_1d(seed)])


def sample_surface(vertices, faces, n: int, seed=0, *, return_normals: bool = False, source: str = "mesh"):
    """Sample ``n`` points uniformly by area on a triangle mesh.

    Each point picks a triangle with probability proportional to its area, then uniform barycentric
    coordinates (``sqrt`` trick), so the expected number of points in any region is ``n * area / total``.

    Args:
        vertices: ``(V, 3)``.
        faces: ``(F, 3)`` vertex indices.
        n: number of points (>= 1).
        seed: int, sequence of ints, or a ``numpy.random.Generator``; the same seed gives the same points.
        return_normals: also return the unit normal of each point's triangle.
        source: name used in error messages.

    Returns:
        ``(n, 3)`` float32 points, and ``(n, 3)`` float32 normals with ``return_normals``.

    Raises:
        DataError: the mesh has zero total area or non-finite vertices.
    """
    n = check_int("n", n, minimum=1)
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    tri = v[f]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area2 = np.linalg.norm(cross, axis=1)
    cdf = np.cumsum(area2)
    if len(cdf) == 0 or not np.isfinite(cdf[-1]) or cdf[-1] <= 0:
        raise DataError(f"{source}: the mesh has zero surface area; cannot sample points on it")
    rng = _rng(seed)
    face = np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right"), len(cdf) - 1)
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    a, b, c = tri[face, 0], tri[face, 1], tri[face, 2]
    pts = ((1 - s)[:, None] * a + (s * (1 - r2))[:, None] * b + (s * r2)[:, None] * c).astype(np.float32)
    if not return_normals:
        return pts
    normals = (cross[face] / area2[face, None]).astype(np.float32)
    return pts, normals


# ----------------------------------------------------------------------------------------------------------
# single files


def _parse_text_cloud(path: Path, max_lines: int | None = None) -> np.ndarray:
    """Rows of >= 3 numbers separated by commas and/or whitespace; leading header lines are skipped.

    Reads only the first ``max_lines`` point lines when given (fast path: one numpy conversion of the block).
    """
    try:
        with open(path) as fh:
            lines = list(fh) if max_lines is None else list(itertools.islice(fh, max_lines))
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read as text ({e})") from None
    if lines:
        first = lines[0].replace(",", " ").split()
        try:
            flat = np.array(" ".join(lines).replace(",", " ").split(), dtype=np.float32)
            if len(first) >= 3 and flat.size == len(first) * len(lines):
                return flat.reshape(len(lines), len(first))
        except ValueError:
            pass
    return _parse_text_slow(path, max_lines)


def _parse_text_slow(path: Path, max_lines: int | None) -> np.ndarray:
    rows, started = [], False
    try:
        with open(path) as fh:
            for k, line in enumerate(fh):
                toks = line.split("#", 1)[0].replace(",", " ").split()
                if not toks:
                    continue
                try:
                    vals = [float(t) for t in toks]
                except ValueError:
                    if started:
                        raise DataError(f"{path}: line {k + 1} is not numeric: {line.strip()[:60]!r}") \
                            from None
                    continue  # a header line
                if len(vals) < 3:
                    if started:
                        raise DataError(f"{path}: line {k + 1} has {len(vals)} value(s); expected x, y, z")
                    continue  # e.g. the point count of an .xyz header
                if started and len(vals) != len(rows[0]):
                    raise DataError(f"{path}: line {k + 1} has {len(vals)} values, earlier lines "
                                    f"{len(rows[0])}")
                rows.append(vals)
                started = True
                if max_lines is not None and len(rows) >= max_lines:
                    break
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read as text ({e})") from None
    if not rows:
        raise DataError(f"{path}: no point found (expected lines of x, y, z separated by commas or spaces)")
    return np.asarray(rows, dtype=np.float32)


def _first_cloud(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.ndim == 3:
        arr = arr[0]
    if arr.ndim != 2 or arr.shape[-1] < 3:
        raise DataError(f"{path}: points of shape {arr.shape}; expected (N, D>=3) or (M, N, D>=3)")
    return arr


def read_cloud_file(path, num_points: int | None = None, seed: int = 0) -> np.ndarray:
    """Read one point cloud from a file.

    Formats: ``.npy`` (``(N, D)`` or ``(M, N, D)``: first cloud), ``.npz`` (key ``points``, first cloud if
    batched), ``.txt``/``.xyz``/``.csv`` (x, y, z[, ...] per line separated by commas or spaces), ``.ply`` (a
    point-cloud PLY gives its vertices; a mesh PLY is sampled), ``.off``/``.obj`` meshes (sampled by area).

    Args:
        path: the file.
        num_points: for clouds, keep the first ``num_points`` points (None: all); for meshes, the number of
            area samples (None: 2048).
        seed: seed of the mesh sampling.

    Returns:
        ``(N, 3)`` float32 xyz (extra channels dropped).

    Raises:
        DataError: missing, unreadable, truncated or NaN-containing file; a mesh without faces.
        InvalidArgumentError: unknown extension, or more points asked than the cloud has.
    """
    path = _require_file(path)
    if num_points is not None:
        num_points = check_int("num_points", num_points, minimum=1)
    suffix = path.suffix.lower()
    check_choice("path suffix", suffix, CLOUD_SUFFIXES)
    if suffix in (".off", ".obj") or suffix == ".ply" and _ply_has_faces(path):
        v, f = read_mesh(path)
        return sample_surface(v, f, num_points or DEFAULT_MESH_POINTS, seed, source=str(path))
    if suffix == ".npy":
        try:
            arr = _first_cloud(np.load(path, allow_pickle=False), path)
        except (OSError, ValueError, EOFError) as e:
            raise DataError(f"{path}: cannot read the .npy file ({e})") from None
    elif suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                if "points" not in z.files:
                    raise DataError(f"{path}: no 'points' array (arrays: {', '.join(z.files)})")
                arr = _first_cloud(z["points"], path)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
            raise DataError(f"{path}: cannot read the .npz file ({type(e).__name__}: {e})") from None
    elif suffix == ".ply":
        import trimesh

        try:
            arr = np.asarray(trimesh.load(str(path), process=False).vertices)
        except Exception as e:
            raise DataError(f"{path}: cannot read the PLY file ({type(e).__name__}: {e})") from None
    else:
        arr = _parse_text_cloud(path, num_points)
    arr = np.asarray(arr[:, :3], dtype=np.float32)
    if num_points is not None:
        if len(arr) < num_points:
            raise bad_argument("num_points", num_points, f"at most {len(arr)} (the points in {path})")
        arr = arr[:num_points]
    check_finite(arr, path)
    return np.ascontiguousarray(arr)


def _ply_has_faces(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    header = head.split(b"end_header", 1)[0]
    m = re.search(rb"element\s+face\s+(\d+)", header)
    return bool(m and int(m.group(1)) > 0)


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
    class_names = _read_lines(names_file) if names_file.is_file() else list(MODELNET40_CLASSES)
    pts, lab, nrm, names, splits = [], [], [], [], []
    total, source_points = 0, None
    for sp in ([want] if want else ["train", "test"]):
        for f in _h5_file_list(root, sp):
            if limit is not None and total >= limit:
                break
            try:
                with h5py.File(f, "r") as h:
                    for key in ("data", "label"):
                        if key not in h:
                            raise DataError(f"{f}: no '{key}' dataset (datasets: {', '.join(h.keys())}); "
                                            f"expected {H5_LAYOUT}")
                    rows = h["data"].shape[0] if limit is None else min(h["data"].shape[0], limit - total)
                    cols = h["data"].shape[1] if max_points is None else min(h["data"].shape[1], max_points)
                    source_points = h["data"].shape[1] if source_points is None else min(source_points,
                                                                                        h["data"].shape[1])
                    p = np.asarray(h["data"][:rows, :cols], dtype=np.float32)
                    y = np.asarray(h["label"][:rows]).reshape(rows, -1)[:, 0].astype(np.int64)
                    n = None
                    if "normal" in h and h["normal"].shape[:2] == h["data"].shape[:2]:
                        n = np.asarray(h["normal"][:rows, :cols], dtype=np.float32)
            except PointlensError:
                raise
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise DataError(f"{f}: cannot read the h5 file (truncated or corrupt?): {e}") from None
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
    labels = np.concatenate(lab)
    if labels.min() < 0 or labels.max() >= len(class_names):
        raise DataError(f"{root}: labels in [{labels.min()}, {labels.max()}] but {len(class_names)} "
                        "class names")
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
    class_names = _read_lines(root / f"{prefix}_shape_names.txt")
    lookup = {c: i for i, c in enumerate(class_names)}
    ids, splits = [], []
    for sp in ([want] if want else ["train", "test"]):
        listing = _require_file(root / f"{prefix}_{sp}.txt", TXT_LAYOUT)
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
        f = _require_file(root / cls / f"{shape_id}.txt", TXT_LAYOUT)
        arr = _parse_text_cloud(f, max_lines)
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


def _strings(arr) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype.kind == "S":
        a = np.char.decode(a, "utf-8")
    return a.astype(str)


def read_npz(path, split="train", *, limit: int | None = None) -> PointCloudDataset:
    """Read a generic ``.npz`` dataset (see ``NPZ_LAYOUT``; :func:`save_dataset` writes this format).

    Points are converted to float32 (float16 files are fine); channels 3..5 become ``normals`` when there is
    no ``normals`` array. Optional arrays ``parts``, ``part_names``, ``gt_mask``, ``instance``,
    ``instance_class``, ``names``, ``split`` and ``meta_json`` are read when present.

    Args:
        path: the ``.npz`` file.
        split: ``train``, ``test``, ``all`` or None (``train``/``test`` need a ``split`` array).
        limit: keep only the first ``limit`` clouds of the split.

    Returns:
        PointCloudDataset.

    Raises:
        DataError: missing, truncated or corrupt file, missing ``points``/``labels``, NaN coordinates.
    """
    path = _require_file(path, NPZ_LAYOUT)
    want = _want_split(split)
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            for key in ("points", "labels"):
                if key not in keys:
                    raise DataError(f"{path}: no '{key}' array (arrays: {', '.join(sorted(keys))}); "
                                    f"expected {NPZ_LAYOUT}")
            split_arr = _strings(z["split"]) if "split" in keys else None
            if want is None:
                rows = slice(None)
            else:
                if split_arr is None:
                    raise bad_argument("split", split, f"'all' (or None): {path} has no 'split' array")
                rows = np.flatnonzero(split_arr == want)
                if len(rows) == 0:
                    raise DataError(f"{path}: no clouds in split '{want}' (splits present: "
                                    f"{sorted(set(split_arr.tolist()))})")
            if limit is not None:
                rows = np.arange(len(z["labels"]))[rows][:limit]
            raw = z["points"]
            if raw.ndim == 2:
                raw = raw[None]
            if raw.ndim != 3 or raw.shape[-1] < 3:
                raise DataError(f"{path}: 'points' has shape {raw.shape}; expected (M, N, D>=3)")
            raw = raw[rows]
            points = np.asarray(raw[..., :3], dtype=np.float32)
            out = {"labels": np.asarray(z["labels"])[rows]}
            if "normals" in keys:
                out["normals"] = np.asarray(z["normals"], dtype=np.float32)[rows]
            elif raw.shape[-1] >= 6:
                out["normals"] = np.asarray(raw[..., 3:6], dtype=np.float32)
            for key in ("parts", "gt_mask", "instance", "instance_class"):
                if key in keys:
                    out[key] = np.asarray(z[key])[rows]
            if "names" in keys:
                out["names"] = _strings(z["names"])[rows]
            if split_arr is not None:
                out["split"] = split_arr[rows]
            if "part_names" in keys:
                out["part_names"] = _strings(z["part_names"]).tolist()
            name_key = next((k for k in ("class_names", "shape_names") if k in keys), None)
            class_names = _strings(z[name_key]).tolist() if name_key else None
            cached = json.loads(str(z["meta_json"])) if "meta_json" in keys else None
    except PointlensError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        raise DataError(f"{path}: cannot read the .npz file (truncated or corrupt?): "
                        f"{type(e).__name__}: {e}") from None
    check_finite(points, path)
    labels = out.pop("labels")
    if labels.ndim == 1:
        labels = labels.astype(np.int64)
    if class_names is None:
        count = labels.shape[1] if labels.ndim == 2 else int(labels.max()) + 1 if labels.size else 0
        class_names = [f"class_{i}" for i in range(count)]
    if labels.ndim == 1 and labels.size and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise DataError(f"{path}: labels in [{labels.min()}, {labels.max()}] but {len(class_names)} "
                        "class names")
    if "gt_mask" in out:
        out["gt_mask"] = out["gt_mask"].astype(bool)
    meta = {"reader": "npz", "path": str(path), "source_points": int(points.shape[1])}
    if cached is not None:
        meta["cached_meta"] = cached
    try:
        return PointCloudDataset(points=points, labels=labels, class_names=class_names, meta=meta, **out)
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
