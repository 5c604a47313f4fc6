"""pointlens.data.formats: parsers of single files, apart from the dataset readers that use them.

* :mod:`~pointlens.data.formats.mesh` — OFF / PLY / OBJ meshes and area-weighted surface sampling;
* :mod:`~pointlens.data.formats.cloud` — one point cloud from text, ``.npy``/``.npz`` or a mesh file;
* :mod:`~pointlens.data.formats.common` — the checks they share (file exists, finite coordinates).

Every parser raises :class:`pointlens.errors.DataError` naming the file and what is wrong.
"""

from pointlens.data.formats.cloud import CLOUD_SUFFIXES, DEFAULT_MESH_POINTS, parse_text_cloud, read_cloud_file
from pointlens.data.formats.common import check_finite, require_file
from pointlens.data.formats.mesh import MESH_SUFFIXES, read_mesh, read_off, sample_surface

__all__ = ["CLOUD_SUFFIXES", "DEFAULT_MESH_POINTS", "MESH_SUFFIXES", "check_finite", "parse_text_cloud",
           "read_cloud_file", "read_mesh", "read_off", "require_file", "sample_surface"]
