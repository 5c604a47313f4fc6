"""Single files of a PASCAL VOC dataset: the annotation XML, the palette segmentation PNG and an RGB image.

Every parser runs inside the error funnel (:func:`~pointlens.data.formats.common.reading`): any failure is one
:class:`~pointlens.errors.DataError` naming the file. Images are decoded with Pillow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pointlens.data.classes import VOC_CLASSES
from pointlens.data.formats.common import read_text, reading, require_file
from pointlens.errors import DataError

VOID = 255
"""The SegmentationClass value of object borders and unlabelled pixels (belongs to no class)."""


def parse_voc_annotation(path, class_names=VOC_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """The objects of one ``Annotations/<id>.xml``.

    Args:
        path: the XML file.
        class_names: the accepted object names, in label order.

    Returns:
        ``(labels (C,) float32 multi-hot over class_names, difficult (C,) bool)``: a class is labelled when ANY
        of its objects is in the file, difficult ones included; ``difficult`` marks the classes whose objects
        are ALL flagged ``<difficult>1</difficult>``.

    Raises:
        DataError: missing file, text that is not well-formed XML, a root that is not ``<annotation>``, an
            object without ``<name>``, or a name not in ``class_names``.
    """
    import xml.etree.ElementTree as ET

    p = require_file(path, "a VOC annotation XML (Annotations/<id>.xml)")
    with reading(p, "the VOC annotation XML"):
        try:
            root = ET.fromstring(read_text(p))
        except ET.ParseError as e:
            raise DataError(f"{p}: not well-formed XML ({e}); expected a VOC annotation (<annotation> with "
                            "<object><name>...</name></object> entries)") from None
        if root.tag != "annotation":
            raise DataError(f"{p}: the root element is <{root.tag}>; expected a VOC <annotation>")
        index = {c: i for i, c in enumerate(class_names)}
        labels = np.zeros(len(class_names), dtype=np.float32)
        easy = np.zeros(len(class_names), dtype=bool)
        for k, obj in enumerate(root.findall("object")):
            name = (obj.findtext("name") or "").strip()
            if not name:
                raise DataError(f"{p}: object {k} has no <name>; expected one of the VOC class names")
            if name not in index:
                raise DataError(f"{p}: object {k} is a {name[:40]!r}, not a VOC class; expected one of "
                                + ", ".join(class_names))
            c = index[name]
            labels[c] = 1.0
            if (obj.findtext("difficult") or "0").strip() != "1":
                easy[c] = True
        return labels, (labels > 0) & ~easy


def read_voc_segmentation(path, num_classes: int = len(VOC_CLASSES), size: int | None = None) -> np.ndarray:
    """Per-class masks from one ``SegmentationClass/<id>.png`` (a palette PNG whose pixel INDEX is the class).

    Args:
        path: the PNG file.
        num_classes: ``C``; index ``c + 1`` is class ``c``, 0 background, :data:`VOID` (255) belongs to none.
        size: resize to ``size x size`` first (nearest neighbour, so no index is blended), or keep the size.

    Returns:
        ``(C, H, W)`` bool masks.

    Raises:
        DataError: missing or undecodable file, a PNG not in palette ('P') mode (a colour-coded RGB mask:
            save it with the VOC palette, index = class), or an index other than 0..C and 255.
    """
    from PIL import Image

    p = require_file(path, "a VOC segmentation PNG (SegmentationClass/<id>.png)")
    with reading(p, "the VOC segmentation PNG"):
        with Image.open(p) as im:
            if im.mode != "P":
                raise DataError(f"{p}: a {im.mode}-mode image; expected a palette ('P' mode) PNG as in VOC's "
                                "SegmentationClass, whose pixel index is the class (0 background, 1-20 the "
                                "classes, 255 void)")
            if size is not None:
                im = im.resize((size, size), Image.NEAREST)
            idx = np.asarray(im, dtype=np.uint8)
        bad = (idx > num_classes) & (idx != VOID)
        if bad.any():
            raise DataError(f"{p}: pixel index {int(idx[bad][0])} is no class; expected 0 (background), 1-"
                            f"{num_classes} (the classes) or {VOID} (void)")
        return idx[None] == np.arange(1, num_classes + 1, dtype=np.uint8)[:, None, None]


def read_rgb_image(path, size: int | None = None) -> np.ndarray:
    """One image file decoded with Pillow as RGB, optionally resized (bilinear) to ``size x size``.

    Returns:
        ``(3, H, W)`` float32 in ``[0, 1]``.

    Raises:
        DataError: missing file or one Pillow cannot decode (naming it).
    """
    from PIL import Image

    p = require_file(path, "an image (JPEGImages/<id>.jpg)")
    with reading(p, "the image (not a JPEG/PNG Pillow can decode?)"):
        with Image.open(p) as im:
            im = im.convert("RGB")
            if size is not None:
                im = im.resize((size, size), Image.BILINEAR)
            a = np.asarray(im, dtype=np.float32) / 255.0
        return np.ascontiguousarray(a.transpose(2, 0, 1))


def voc_split_file(root: Path, folder: str, name: str) -> Path | None:
    """``root/ImageSets/<folder>/<name>.txt`` if it exists, else None."""
    p = root / "ImageSets" / folder / f"{name}.txt"
    return p if p.is_file() else None
