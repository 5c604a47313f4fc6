"""The one data-spec loader: ``load_dataset("modelnet40-h5:/data/modelnet40_ply_hdf5_2048", split="test")``.

Spec forms (see docs/data.md):

* ``shapeparts[:key=value,...]`` — the synthetic ShapeParts generator (options passed to
  ``pointlens.data.shapeparts.generate_from_options``);
* ``modelnet40-h5:PATH`` — the ``modelnet40_ply_hdf5_2048`` folder;
* ``modelnet40-txt:PATH`` — the ``modelnet40_normal_resampled`` folder;
* ``meshes:PATH`` — a folder of OFF/PLY/OBJ meshes, one sub-folder per class;
* ``npz:PATH`` — a generic ``.npz``;
* ``digitscenes[:key=value,...]`` — multi-label image scenes of real handwritten digits with pixel masks
  (``pointlens.data.digitscenes``; an :class:`~pointlens.data.images.ImageDataset`);
* ``voc:PATH[,size=S,masks=0|1]`` — a PASCAL VOC 2007 folder (images, multi-hot labels, segmentation masks;
  an ImageDataset; see :func:`pointlens.data.readers.read_voc`).
"""

from __future__ import annotations

import numpy as np

from pointlens.data import readers
from pointlens.data.dataset import PointCloudDataset
from pointlens.data.images import ImageDataset
from pointlens.data.transforms import SAMPLING_METHODS, normalize_unit_sphere, sample_indices
from pointlens.errors import bad_argument
from pointlens.utils.validate import check_choice, check_int

KINDS = ("shapeparts", "modelnet40-h5", "modelnet40-txt", "meshes", "npz", "digitscenes", "voc")
OPTION_KINDS = ("shapeparts", "digitscenes")
"""Kinds whose rest is ``key=value`` options (the others take a path)."""
IMAGE_KINDS = ("digitscenes", "voc")
VOC_OPTION_KEYS = ("size", "masks")
"""Options a ``voc:PATH`` spec may end with: ``voc:PATH,size=128,masks=0``."""
"""Kinds that give an :class:`~pointlens.data.images.ImageDataset`."""
SPEC_FORMS = ("shapeparts[:key=value,...], modelnet40-h5:PATH, modelnet40-txt:PATH, meshes:PATH, npz:PATH, "
              "digitscenes[:key=value,...] or voc:PATH[,size=S,masks=0|1]")
MESH_FPS_OVERSAMPLE = 4  # meshes with sampling='fps': area-sample this many times num_points, then FPS


def parse_spec(spec: str) -> tuple[str, str | None, dict[str, str]]:
    """Split a data spec into its kind, path and options.

    Args:
        spec: ``kind[:rest]``; for ``shapeparts`` and ``digitscenes`` the rest is ``key=value`` pairs separated
            by commas, for the other kinds it is a path (which may itself contain ``:``). The kind is case-insensitive.

    Returns:
        ``(kind, path, options)``: ``path`` is None for the option kinds; ``options`` is empty for path kinds.

    Raises:
        InvalidArgumentError: not a string, unknown kind (the message lists the valid forms), a path kind
            without a path, or an option without ``=``.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise bad_argument("spec", spec, SPEC_FORMS)
    head, sep, rest = spec.strip().partition(":")
    kind = head.strip().lower()
    if kind not in KINDS:
        raise bad_argument("spec", spec, f"one of the forms {SPEC_FORMS} (unknown kind {kind!r})")
    if kind in OPTION_KINDS:
        options: dict[str, str] = {}
        for item in rest.split(","):
            item = item.strip()
            if not item:
                continue
            key, eq, value = item.partition("=")
            if not eq or not key.strip():
                example = "shapeparts:n=500,noise=0.01" if kind == "shapeparts" else "digitscenes:n=600,size=48"
                raise bad_argument("spec", spec, f"{kind} options as key=value pairs separated by commas, "
                                   f"e.g. {example}")
            options[key.strip()] = value.strip()
        return kind, None, options
    if not rest.strip():
        raise bad_argument("spec", spec, f"{kind}:PATH (a path after the colon)")
    if kind == "voc":
        return kind, *_trailing_options(rest.strip(), VOC_OPTION_KEYS)
    return kind, rest.strip(), {}


def _trailing_options(rest: str, keys: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """``PATH,key=value,...`` -> ``(PATH, {key: value})``: trailing items whose key is in ``keys`` are options
    (the path itself may contain commas)."""
    options: dict[str, str] = {}
    while True:
        head, sep, item = rest.rpartition(",")
        key, eq, value = item.partition("=")
        if not sep or not eq or key.strip() not in keys or not head.strip():
            return rest, dict(reversed(list(options.items())))
        options[key.strip()] = value.strip()
        rest = head


def _load_shapeparts(options: dict[str, str]) -> PointCloudDataset:
    from pointlens.data.shapeparts import generate_from_options

    return generate_from_options(dict(options))


def _voc_options(options: dict[str, str]) -> dict:
    out: dict = {}
    for key, value in options.items():
        if key == "size":
            try:
                out["size"] = int(value)
            except ValueError:
                raise bad_argument("voc option 'size'", value, "an integer (pixels)") from None
        elif value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            out["masks"] = value.lower() in ("1", "true", "yes", "on")
        else:
            raise bad_argument(f"voc option '{key}'", value, "1 or 0 (true/false)")
    return out


def _load_image_dataset(kind: str, path: str | None, options: dict[str, str], spec: str, split,
                        limit: int | None) -> ImageDataset:
    """``digitscenes`` / ``voc`` specs: the split, then the first ``limit`` images."""
    if kind == "digitscenes":
        from pointlens.data.digitscenes import generate_from_options

        ds = readers.filter_split(generate_from_options(dict(options)), split, spec)
        if limit is not None:
            ds = ds.subset(slice(0, limit))
    else:
        ds = readers.read_voc(path, split, limit=limit, **_voc_options(options))
    ds.meta = {**ds.meta, "spec": spec, "kind": kind, "path": path, "options": options, "split": split,
               "limit": limit, "image_size": list(ds.image_size)}
    return ds


def load_dataset(spec: str, *, split: str | None = "train", num_points: int = 1024, sampling: str = "first",
                 normalize: bool = True, seed: int = 0,
                 limit: int | None = None) -> PointCloudDataset | ImageDataset:
    """Load a dataset from a spec, take ``num_points`` points per cloud and normalise them.

    Steps: read the ``split`` (the first ``limit`` clouds of it), sample ``num_points`` per cloud with
    ``sampling`` (every per-point array — normals, parts, gt_mask, instance — follows the kept points), then
    (``normalize``) centre each cloud on the mean of its sampled points and scale it to the unit sphere
    (max norm 1). Sampling happens BEFORE normalisation. Meshes are sampled by area (``num_points`` samples;
    ``4 * num_points`` followed by FPS when ``sampling='fps'``). For ``shapeparts`` without a ``points``
    option the generator is asked for ``num_points`` points; ShapeParts clouds are NOT re-normalised per cloud
    (the generator scales both twins of a pair with the same transform, within the unit sphere; a per-cloud
    re-normalisation would leak the class into the shared body).

    Image specs (``digitscenes``, ``voc``) return an :class:`~pointlens.data.images.ImageDataset`: only
    ``split`` and ``limit`` apply; ``num_points``, ``sampling``, ``normalize`` and ``seed`` concern point clouds
    and are ignored (a digitscenes spec takes its own ``seed=`` option).

    Args:
        spec: see :func:`parse_spec` and docs/data.md.
        split: ``train``, ``test``, ``all`` or None (= all).
        num_points: points per cloud (>= 1, at most what the clouds have).
        sampling: ``first`` (file order), ``random`` (seeded subset) or ``fps`` (farthest point sampling).
        normalize: centre + unit-sphere scaling (on by default; the convention of the pretrained models).
        seed: seed of random sampling and mesh area sampling.
        limit: keep only the first ``limit`` clouds of the split.

    Returns:
        PointCloudDataset with ``points (M, num_points, 3)``; ``meta`` records spec, kind, path, split,
        num_points, sampling, seed, limit, normalization (``'unit_sphere'``, ``'shapeparts-generator'`` or
        ``'none'``) and source_points.

    Raises:
        InvalidArgumentError: bad spec or argument; more points than the clouds have (the message gives the
            largest possible value).
        DataError: missing, truncated or corrupt files, NaN coordinates (naming the file).
    """
    kind, path, options = parse_spec(spec)
    check_choice("split", split, readers.SPLITS)
    num_points = check_int("num_points", num_points, minimum=1)
    sampling = check_choice("sampling", sampling, SAMPLING_METHODS)
    seed = check_int("seed", seed)
    if limit is not None:
        limit = check_int("limit", limit, minimum=1)
    if kind in IMAGE_KINDS:
        return _load_image_dataset(kind, path, options, spec, split, limit)
    if kind == "shapeparts":
        options = {**options, "points": options.get("points", str(num_points))}
        ds = readers.filter_split(_load_shapeparts(options), split, spec)
        if limit is not None:
            ds = ds.subset(slice(0, limit))
    elif kind == "modelnet40-h5":
        ds = readers.read_modelnet_h5(path, split, max_points=num_points if sampling == "first" else None,
                                      limit=limit)
    elif kind == "modelnet40-txt":
        ds = readers.read_modelnet_txt(path, split, num_points=num_points, sampling=sampling, seed=seed,
                                       limit=limit)
    elif kind == "meshes":
        area_points = num_points * (MESH_FPS_OVERSAMPLE if sampling == "fps" else 1)
        ds = readers.read_meshes(path, split, num_points=area_points, seed=seed, limit=limit)
        ds.meta["presampled"] = sampling != "fps"
    else:
        ds = readers.read_npz(path, split, limit=limit)
    meta = dict(ds.meta)
    presampled = bool(meta.pop("presampled", False))
    source_points = int(meta.get("source_points") or ds.num_points)
    if not presampled:
        if ds.num_points < num_points:
            have = ds.num_points
            raise bad_argument("num_points", num_points,
                               f"at most {have}: the clouds of {spec} have {have} points (sampling cannot "
                               f"add points); pass num_points <= {have} (CLI: --points {have})")
        if not (sampling == "first" and ds.num_points == num_points):
            idx = sample_indices(ds.points, num_points, sampling, seed).numpy()
            ds = ds.select_points(idx)
    # ShapeParts clouds are already centred and scaled by the generator with one transform shared by both twins;
    # re-normalising each cloud by its own centroid and radius would move the shared body differently per twin
    # and leak the class into the body points, so they are left as generated.
    normalization = "none"
    if normalize and kind == "shapeparts":
        normalization = "shapeparts-generator"
    elif normalize:
        ds.points = np.ascontiguousarray(normalize_unit_sphere(ds.points), dtype=np.float32)
        normalization = "unit_sphere"
    meta.update({"spec": spec, "kind": kind, "path": path, "options": options, "split": split,
                 "num_points": num_points, "sampling": sampling, "seed": seed, "limit": limit,
                 "normalization": normalization, "source_points": source_points})
    ds.meta = meta
    return ds
