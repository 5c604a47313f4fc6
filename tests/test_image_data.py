"""Image data: DigitScenes (real digit scans pasted on textures, exact masks, scan-disjoint splits) and the
PASCAL VOC 2007 reader on tiny fixtures in the VOC layout written here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pointlens.data import ImageDataset, load_dataset
from pointlens.data.classes import VOC_CLASSES
from pointlens.data.digitscenes import generate, load_digit_scans, resize_bilinear_matrix, split_scans
from pointlens.data.readers import read_voc
from pointlens.data.spec import parse_spec
from pointlens.errors import DataError, InvalidArgumentError

SMALL = dict(n=40, size=48, seed=3)


@pytest.fixture(scope="module")
def scenes() -> ImageDataset:
    return generate(**SMALL)


def test_digitscenes_is_deterministic_and_seed_dependent(scenes):
    again = generate(**SMALL)
    for name in ("images", "labels", "masks", "groups"):
        assert np.array_equal(getattr(scenes, name), getattr(again, name)), name
    other = generate(**{**SMALL, "seed": 4})
    assert not np.array_equal(scenes.images, other.images)
    assert scenes.images.shape == (40, 3, 48, 48) and scenes.images.dtype == np.float32
    assert 0.0 <= scenes.images.min() and scenes.images.max() <= 1.0
    assert list(scenes.split).count("test") == 8 and list(scenes.split[:32]) == ["train"] * 32


def test_labels_are_the_classes_with_ink_and_masks_never_overlap(scenes):
    scans, digits = load_digit_scans()
    assert np.array_equal(scenes.labels > 0, scenes.masks.any(axis=(2, 3)))
    assert scenes.masks.sum(axis=1).max() <= 1  # one class per pixel at most: the boxes are disjoint
    n_digits = (scenes.groups >= 0).sum(1)
    assert np.array_equal(n_digits, scenes.labels.sum(1).astype(int))  # every pasted digit shows (1-3 of them)
    assert n_digits.min() >= 1 and n_digits.max() <= 3
    for row, lab in zip(scenes.groups, scenes.labels):  # the pasted scans are of the labelled digits
        assert sorted(digits[row[row >= 0]].tolist()) == np.flatnonzero(lab).tolist()


def test_masks_are_the_thresholded_upsampled_scans_and_full_ink_has_the_ink_colour(scenes):
    """Recover every digit's side and position from its mask alone, then check the mask is exactly the scan
    upsampled and thresholded there, and that fully inked pixels (scan value 16) of all digits of a scene
    share one colour (the ink, blended with weight 1)."""
    scans, digits = load_digit_scans()
    thr = scenes.meta["mask_threshold"]
    for i in range(12):
        inked = []
        for scan in scenes.groups[i][scenes.groups[i] >= 0]:
            c = digits[scan]
            mask = scenes.masks[i, c]
            ys, xs = np.nonzero(mask)
            found = False
            for s in range(scenes.meta["digit_min"], scenes.meta["digit_max"] + 1):
                r = resize_bilinear_matrix(8, s)
                a = r @ scans[scan].astype(np.float64) @ r.T
                ay, ax = np.nonzero(a > thr)
                y, x = ys.min() - ay.min(), xs.min() - ax.min()
                if y < 0 or x < 0 or y + s > 48 or x + s > 48:
                    continue
                want = np.zeros_like(mask)
                want[y:y + s, x:x + s] = a > thr
                if np.array_equal(want, mask):
                    found = True
                    full = np.zeros_like(mask)
                    full[y:y + s, x:x + s] = a > 1 - 1e-9
                    inked.append(scenes.images[i][:, full])
                    break
            assert found, (i, scan)
        colours = np.concatenate(inked, axis=1)
        if colours.shape[1]:
            assert np.ptp(colours, axis=1).max() < 1e-5


def test_no_scan_is_in_both_splits():
    ds = generate(n=300, size=32, seed=1)
    tr = ds.groups[ds.split == "train"]
    te = ds.groups[ds.split == "test"]
    assert not set(tr[tr >= 0].tolist()) & set(te[te >= 0].tolist())
    _, digits = load_digit_scans()
    split = split_scans(digits, 0.2, seed=1)
    for d in range(10):  # stratified: each digit gives ~20% of its scans to test
        share = (split[digits == d] == "test").mean()
        assert abs(share - 0.2) < 0.01
    assert set(tr[tr >= 0].tolist()) <= set(np.flatnonzero(split == "train").tolist())


def test_bilinear_matrix_equals_torch_interpolate():
    x = np.random.default_rng(0).random((8, 8))
    for out in (5, 8, 16, 23):
        r = resize_bilinear_matrix(8, out)
        ref = torch.nn.functional.interpolate(torch.from_numpy(x)[None, None], size=(out, out), mode="bilinear",
                                              align_corners=False)[0, 0].numpy()
        np.testing.assert_allclose(r @ x @ r.T, ref, atol=1e-12)
        np.testing.assert_allclose(r.sum(1), 1.0)


def test_digitscenes_spec_split_limit_and_options():
    ds = load_dataset("digitscenes:n=30,size=32,max_digits=2,seed=2", split="test", limit=4, num_points=7)
    assert isinstance(ds, ImageDataset) and ds.modality == "image"
    assert ds.images.shape == (4, 3, 32, 32) and set(ds.split) == {"test"}
    assert ds.labels.sum(1).max() <= 2 and ds.meta["kind"] == "digitscenes" and ds.meta["image_size"] == [32, 32]
    assert parse_spec("digitscenes") == ("digitscenes", None, {})
    with pytest.raises(InvalidArgumentError, match="digitscenes option key.*n, train, test"):
        load_dataset("digitscenes:colour=red")
    with pytest.raises(InvalidArgumentError, match="max_digits"):
        load_dataset("digitscenes:max_digits=5")
    with pytest.raises(InvalidArgumentError, match="'size'.*an integer"):
        load_dataset("digitscenes:size=big")


# ------------------------------------------------------------------------------------------------ VOC fixture

SIDE = 24


def _palette() -> list[int]:
    pal = [0] * 768
    for k in range(1, 21):
        pal[3 * k: 3 * k + 3] = [(37 * k) % 256, (91 * k) % 256, (151 * k) % 256]
    pal[765:768] = [224, 224, 192]
    return pal


def _xml(objects) -> str:
    body = "".join(f"<object><name>{n}</name><difficult>{int(d)}</difficult></object>" for n, d in objects)
    return f"<annotation><filename>x.jpg</filename>{body}</annotation>"


def _index_map(classes_here: list[int]) -> np.ndarray:
    """Class indices in 4x4 blocks (so a nearest-neighbour resize to 12 keeps them), a void border."""
    idx = np.zeros((SIDE, SIDE), dtype=np.uint8)
    for j, c in enumerate(classes_here):
        idx[4 * j: 4 * j + 8, 8:16] = c + 1
    idx[:, -4:] = 255
    return idx


IMAGES = {  # id: (objects (name, difficult), classes in the mask, split file)
    "000001": ([("dog", 0), ("person", 1)], [VOC_CLASSES.index("dog"), VOC_CLASSES.index("person")], "train"),
    "000002": ([("car", 0), ("car", 0)], [VOC_CLASSES.index("car")], "train"),
    "000003": ([("cat", 0)], [VOC_CLASSES.index("cat")], "val"),
}


def _save_palette_png(idx: np.ndarray, path) -> None:
    png = Image.new("P", idx.shape[::-1])
    png.putpalette(_palette())
    png.putdata(idx.reshape(-1).tolist())
    png.save(path)


def write_voc(root, images=IMAGES):
    base = root / "VOCdevkit" / "VOC2007"
    for sub in ("JPEGImages", "Annotations", "SegmentationClass", "ImageSets/Segmentation"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    lists: dict[str, list[str]] = {}
    for name, (objects, mask_classes, split) in images.items():
        Image.fromarray((rng.random((SIDE, SIDE, 3)) * 255).astype(np.uint8)).save(base / "JPEGImages" /
                                                                                   f"{name}.jpg")
        (base / "Annotations" / f"{name}.xml").write_text(_xml(objects))
        _save_palette_png(_index_map(mask_classes), base / "SegmentationClass" / f"{name}.png")
        lists.setdefault(split, []).append(name)
    (base / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    for split, names in lists.items():
        (base / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(names) + "\n")
    # the classification lists hold more images (here: 000003 is also a training image, and without a mask)
    (base / "ImageSets" / "Main" / "train.txt").write_text("000001\n000002\n000003\n000004\n")
    Image.new("RGB", (SIDE, SIDE), (10, 200, 30)).save(base / "JPEGImages" / "000004.jpg")
    (base / "Annotations" / "000004.xml").write_text(_xml([("sheep", 1)]))
    return base


def test_voc_reader_reads_labels_palette_masks_and_splits(tmp_path):
    base = write_voc(tmp_path)
    ds = read_voc(tmp_path / "VOCdevkit", "all", size=SIDE)  # the devkit folder holding VOC2007 works too
    assert list(ds.names) == ["000001", "000002", "000003"] and list(ds.split) == ["train", "train", "test"]
    assert ds.class_names == VOC_CLASSES and ds.images.shape == (3, 3, SIDE, SIDE)
    for i, (objects, mask_classes, _) in enumerate(IMAGES.values()):
        assert set(np.flatnonzero(ds.labels[i])) == {VOC_CLASSES.index(n) for n, _ in objects}  # difficult counts
        want = _index_map(mask_classes)
        for c in range(20):
            assert np.array_equal(ds.masks[i, c], want == c + 1), (i, c)
        assert not ds.masks[i][:, :, -4:].any()  # void pixels belong to no class
    assert ds.meta["difficult"][0] == ["person"]
    jpeg = np.asarray(Image.open(base / "JPEGImages" / "000002.jpg").convert("RGB"), dtype=np.float32) / 255
    np.testing.assert_array_equal(ds.images[1], jpeg.transpose(2, 0, 1))

    small = load_dataset(f"voc:{base},size=12", split="train")
    assert small.images.shape == (2, 3, 12, 12) and list(small.names) == ["000001", "000002"]
    dog = VOC_CLASSES.index("dog")
    assert np.array_equal(small.masks[0, dog], (_index_map(IMAGES["000001"][1]) == dog + 1)[::2, ::2])
    test = load_dataset(f"voc:{base},size=12", split="test", num_points=5)
    assert list(test.names) == ["000003"] and test.meta["split_files"]["test"].endswith("val.txt")
    assert parse_spec(f"voc:{base},size=12,masks=0") == ("voc", str(base), {"size": "12", "masks": "0"})
    main = load_dataset(f"voc:{base},size=12,masks=0", split="train")  # ImageSets/Main, no masks needed
    assert list(main.names) == ["000001", "000002", "000003", "000004"] and main.masks is None
    assert np.flatnonzero(main.labels[3]).tolist() == [VOC_CLASSES.index("sheep")]
    np.testing.assert_allclose(main.images[3, :, 5, 5], np.array([10, 200, 30]) / 255, atol=0.02)


@pytest.mark.parametrize("damage, message", [
    (lambda b: (b / "Annotations" / "000002.xml").write_text("<annotation><object><name>dog</name>"),
     r"000002\.xml: not well-formed XML"),
    (lambda b: (b / "Annotations" / "000002.xml").write_text(_xml([("unicorn", 0)])),
     r"000002\.xml: object 0 is a 'unicorn', not a VOC class"),
    (lambda b: Image.new("RGB", (SIDE, SIDE)).save(b / "SegmentationClass" / "000001.png"),
     r"000001\.png: a RGB-mode image; expected a palette \('P' mode\) PNG"),
    (lambda b: _save_palette_png(np.full((SIDE, SIDE), 30, np.uint8), b / "SegmentationClass" / "000001.png"),
     r"000001\.png: pixel index 30 is no class"),
    (lambda b: (b / "JPEGImages" / "000002.jpg").write_bytes(b"not a jpeg"),
     r"000002\.jpg: cannot read the image"),
    (lambda b: (b / "JPEGImages" / "000002.jpg").unlink(), r"000002\.jpg: file not found"),
    (lambda b: (b / "ImageSets" / "Segmentation" / "train.txt").unlink(), r"no train\.txt for split 'train'"),
    (lambda b: (b / "ImageSets" / "Segmentation" / "train.txt").write_text("../../etc/passwd\n"),
     r"train\.txt: line 1 .* is not an image id"),
    (lambda b: __import__("shutil").rmtree(b / "SegmentationClass"), r"SegmentationClass: folder not found"),
])
def test_voc_reader_rejects_a_broken_fixture_with_one_clear_line(tmp_path, damage, message):
    base = write_voc(tmp_path)
    damage(base)
    with pytest.raises(DataError, match=message) as e:
        load_dataset(f"voc:{base}", split="train")
    assert "\n" not in str(e.value)


def test_voc_missing_folder_and_bad_options(tmp_path):
    with pytest.raises(DataError, match="folder not found; expected PATH = VOCdevkit/VOC2007"):
        load_dataset(f"voc:{tmp_path / 'nowhere'}")
    base = write_voc(tmp_path)
    with pytest.raises(InvalidArgumentError, match="voc option 'size'"):
        load_dataset(f"voc:{base},size=huge")


def test_digit_scans_are_scikit_learns():
    from sklearn.datasets import load_digits

    scans, digits = load_digit_scans()
    d = load_digits()
    np.testing.assert_array_equal(scans, d.images.astype(np.float32) / 16)
    np.testing.assert_array_equal(digits, d.target)
