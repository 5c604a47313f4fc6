"""ShapeParts: a procedural benchmark of man-made objects with ground-truth parts and known class evidence.

Fourteen classes in seven *twin pairs* (``TWINS``). The two twins of a pair share their body (same part names,
proportions drawn from the same distribution) and differ ONLY by their discriminative parts
(``DISCRIMINATIVE_PARTS``), so a classifier that separates twins must look at those parts, and ``gt_mask``
(the points on them) is a ground truth for explanation methods. Different pairs differ by their bodies.

The package: :mod:`~pointlens.data.shapeparts.generator` (assembly, sampling, caching),
:mod:`~pointlens.data.shapeparts.classes` (the seven pairs), :mod:`~pointlens.data.shapeparts.geometry`
(parametric primitives).

Objects are assembled from parametric surface primitives (boxes, cylinders, cones, sphere zones, tori; see
:mod:`pointlens.data.shapeparts.geometry`) and sampled AREA-WEIGHTED: every primitive gets a number of points
proportional to its surface area (largest-remainder rounding) and points uniform on its surface. ``+z`` is up.

Normalisation is twin-independent: each object is centred on the bounding box of its body AND both twins'
discriminative parts (the other twin's parts are drawn but get no points) and scaled so that this bound fits
in the unit sphere, then shrunk by a random factor in [0.85, 1]. Re-normalising a cloud by its own centroid
and radius would move and scale the body differently for the two twins and leak the class into the body.

Use :func:`generate` (or the data spec ``shapeparts:n=500,points=512,seed=3,...`` through
:func:`generate_from_options`).
"""

from pointlens.data.shapeparts.generator import (
    BODY_PARTS,
    CLASS_NAMES,
    DISCRIMINATIVE_PARTS,
    OPTION_KEYS,
    PART_NAMES,
    TWINS,
    VERSION,
    generate,
    generate_from_options,
    twin_of,
)

__all__ = [
    "CLASS_NAMES", "TWINS", "DISCRIMINATIVE_PARTS", "BODY_PARTS", "PART_NAMES", "OPTION_KEYS", "VERSION",
    "generate", "generate_from_options", "twin_of",
]
