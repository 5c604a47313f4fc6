"""pointlens.data: the dataset type, readers for files on disk, the one spec loader and transforms.

``load_dataset(spec, split=..., num_points=..., sampling=..., normalize=True, seed=0, limit=None)`` is the one
way to get data; spec forms: ``shapeparts[:key=value,...]``, ``modelnet40-h5:PATH``, ``modelnet40-txt:PATH``,
``meshes:PATH``, ``npz:PATH`` (see docs/data.md). The ShapeParts generator lives in
``pointlens.data.shapeparts`` (imported on demand). Single-file parsers (text, npy/npz, OFF/PLY/OBJ) are in
``pointlens.data.formats``; the dataset layouts that use them in ``pointlens.data.readers``.
"""

from pointlens.data.classes import MODELNET40_CLASSES
from pointlens.data.dataset import PointCloudDataset
from pointlens.data.formats import check_finite, read_cloud_file, read_mesh, read_off, sample_surface
from pointlens.data.images import ImageDataset
from pointlens.data.readers import (
    filter_split,
    read_meshes,
    read_modelnet_h5,
    read_modelnet_txt,
    read_npz,
    save_dataset,
)
from pointlens.data.spec import KINDS, load_dataset, parse_spec
from pointlens.data.transforms import (
    augment,
    jitter,
    normalize_unit_sphere,
    random_scale,
    random_shift,
    rotate_up,
    rotation_matrices,
    sample_indices,
    sample_points,
)

__all__ = [
    "KINDS",
    "MODELNET40_CLASSES",
    "ImageDataset",
    "PointCloudDataset",
    "augment",
    "check_finite",
    "filter_split",
    "jitter",
    "load_dataset",
    "normalize_unit_sphere",
    "parse_spec",
    "random_scale",
    "random_shift",
    "read_cloud_file",
    "read_mesh",
    "read_meshes",
    "read_modelnet_h5",
    "read_modelnet_txt",
    "read_npz",
    "read_off",
    "rotate_up",
    "rotation_matrices",
    "sample_indices",
    "sample_points",
    "sample_surface",
    "save_dataset",
]
