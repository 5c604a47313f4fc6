"""DigitScenes: multi-label image scenes of REAL handwritten digits with exact per-class pixel masks.

The digits are scikit-learn's bundled scans (``sklearn.datasets.load_digits``: 1,797 handwritten digits of 43
writers, 8x8 pixels, 16 grey levels; shipped with scikit-learn, nothing is downloaded). Each scene is a
``size x size`` RGB image holding 1 to 3 digits of DISTINCT classes, each scaled up (bilinear) to a random side
in ``[digit_min, digit_max]`` pixels and pasted without overlap (rejection sampling of the boxes) onto a
procedural textured background, its ink blended in a colour that contrasts with the background:

* background: two colours (the second within +-0.3 of the first per channel) mixed by a texture that is smooth
  random noise (a random 3x3..8x8 grid upsampled bilinearly), oblique stripes, a checkerboard or a blend of
  noise and stripes, plus pixel noise (sd 0.02);
* ink: a random colour, darkened to luminance <= ~0.25 on a light background or brightened to >= ~0.75 on a
  dark one, blended as ``image = background * (1 - a) + ink * a`` with ``a`` the upsampled scan in ``[0, 1]``;
* mask of a class: the pixels of its digit where ``a > mask_threshold`` (default 0.25), i.e. where the ink is
  visible; the boxes are disjoint, so the masks of two digits never overlap; the label of a class is 1 exactly
  when its mask is non-empty.

Split by source scans: the 1,797 scans are partitioned into train and test scans FIRST (seeded, stratified by
digit, ``test_fraction`` of each digit's scans to test), then each split's scenes draw digits only from its own
scans, so no scan (hence no exact handwriting sample) appears in both splits. ``ImageDataset.groups`` holds the
scan indices pasted into each image (``-1`` = unused slot). Same options -> bit-identical arrays.
"""

from __future__ import annotations

import numpy as np

from pointlens.data.images import ImageDataset
from pointlens.errors import InvalidArgumentError, bad_argument
from pointlens.utils.validate import check_float, check_int

__all__ = ["CLASS_NAMES", "OPTION_KEYS", "VERSION", "generate", "generate_from_options", "load_digit_scans",
           "resize_bilinear_matrix", "split_scans"]

#: bump when the generator changes its output for the same options
VERSION = 1
CLASS_NAMES: list[str] = [str(d) for d in range(10)]
#: keys accepted by :func:`generate_from_options` (and the data spec ``digitscenes:key=value,...``)
OPTION_KEYS = ("n", "train", "test", "test_fraction", "size", "min_digits", "max_digits", "digit_min",
               "digit_max", "mask_threshold", "seed")
MAX_PLACEMENT_TRIES = 200
_scans_cache: tuple[np.ndarray, np.ndarray] | None = None


def load_digit_scans() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled handwritten digits, scaled to ``[0, 1]`` (read once, then cached).

    Returns:
        ``(scans (1797, 8, 8) float32 in [0, 1], digits (1797,) int64)``.

    Raises:
        InvalidArgumentError: scikit-learn is not installed (the message says how to install it).
    """
    global _scans_cache
    if _scans_cache is None:
        _scans_cache = _read_digits()
    return _scans_cache


def _read_digits() -> tuple[np.ndarray, np.ndarray]:
    """The scans from scikit-learn's ``datasets/data/digits.csv.gz`` (64 pixel values 0-16 and the digit per
    row; what ``load_digits`` parses) read without importing scikit-learn (seconds faster); ``load_digits``
    itself when the file is not where it is expected."""
    import gzip
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("sklearn")
    if spec is None:
        raise InvalidArgumentError("data spec digitscenes: needs scikit-learn for its bundled digit scans; "
                                   "install it with: pip install scikit-learn")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
    try:
        with gzip.open(path, "rt") as fh:
            rows = np.loadtxt(fh, delimiter=",", dtype=np.float32)
        if rows.shape != (1797, 65):
            raise ValueError(f"shape {rows.shape}")
        pixels, target = rows[:, :64], rows[:, 64]
    except (OSError, ValueError):
        from sklearn.datasets import load_digits

        d = load_digits()
        pixels, target = np.asarray(d.data, dtype=np.float32), np.asarray(d.target)
    scans = (pixels.reshape(-1, 8, 8) / 16.0).clip(0.0, 1.0)
    return np.ascontiguousarray(scans, dtype=np.float32), np.asarray(target, dtype=np.int64)


def split_scans(digits: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """Assign every scan to ``'train'`` or ``'test'``, stratified by digit.

    Args:
        digits: ``(S,)`` the digit of each scan.
        test_fraction: share of each digit's scans sent to test (rounded; at least one scan of each digit stays
            in each split when the digit has two or more scans).
        seed: the split's seed.

    Returns:
        ``(S,)`` array of ``'train'``/``'test'``.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 2]))
    out = np.full(len(digits), "train", dtype="<U5")
    for d in np.unique(digits):
        idx = np.flatnonzero(digits == d)
        idx = idx[rng.permutation(len(idx))]
        k = int(round(test_fraction * len(idx)))
        if len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        out[idx[:k]] = "test"
    return out


def resize_bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """The ``(n_out, n_in)`` matrix of 1-D bilinear resampling (half-pixel centres, edges clamped: the
    convention of ``torch.nn.functional.interpolate(mode='bilinear', align_corners=False)``).

    A 2-D image ``X (h, w)`` is resized to ``(H, W)`` as ``R_H @ X @ R_W.T``; every row sums to 1.
    """
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    m = np.zeros((n_out, n_in), dtype=np.float64)
    rows = np.arange(n_out)
    np.add.at(m, (rows, lo), 1.0 - frac)
    np.add.at(m, (rows, hi), frac)
    return m


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def _background(rng: np.random.Generator, size: int, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """One textured background ``(size, size, 3)`` in [0, 1]."""
    c0 = rng.uniform(0.0, 1.0, 3)
    c1 = np.clip(c0 + rng.uniform(-0.3, 0.3, 3), 0.0, 1.0)
    kind = rng.integers(4)
    if kind in (0, 3):  # smooth noise
        g = int(rng.integers(3, 9))
        r = resize_bilinear_matrix(g, size)
        noise = r @ rng.uniform(0.0, 1.0, (g, g)) @ r.T
        t = (noise - noise.min()) / max(noise.max() - noise.min(), 1e-6)
    if kind in (1, 3):  # oblique stripes
        theta = rng.uniform(0.0, np.pi)
        period = rng.uniform(4.0, 16.0)
        stripes = 0.5 + 0.5 * np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period
                                     + rng.uniform(0.0, 2 * np.pi))
        t = stripes if kind == 1 else 0.5 * (t + stripes)
    if kind == 2:  # checkerboard
        cell = int(rng.integers(4, 13))
        oy, ox = rng.integers(0, cell, 2)
        t = (((yy + oy) // cell + (xx + ox) // cell) % 2).astype(np.float64)
    bg = c0 * (1.0 - t[..., None]) + c1 * t[..., None]
    bg = bg + rng.normal(0.0, 0.02, bg.shape)
    return np.clip(bg, 0.0, 1.0)


def _place(rng: np.random.Generator, sides: list[int], size: int) -> list[tuple[int, int]] | None:
    """Top-left corners for square boxes of ``sides`` with no two boxes overlapping (None if it fails)."""
    boxes: list[tuple[int, int, int]] = []
    for s in sides:
        for _ in range(MAX_PLACEMENT_TRIES):
            y, x = (int(v) for v in rng.integers(0, size - s + 1, 2))
            if all(y + s <= by or by + bs <= y or x + s <= bx or bx + bs <= x for by, bx, bs in boxes):
                boxes.append((y, x, s))
                break
        else:
            return None
    return [(y, x) for y, x, _ in boxes]


def _scenes(rng, count, pool, scans, digits, *, size, min_digits, max_digits, digit_min, digit_max,
            mask_threshold):
    """Generate ``count`` scenes whose digits come from the scan indices ``pool``."""
    images = np.empty((count, 3, size, size), dtype=np.float32)
    masks = np.zeros((count, 10, size, size), dtype=bool)
    labels = np.zeros((count, 10), dtype=np.float32)
    groups = np.full((count, max_digits), -1, dtype=np.int64)
    by_digit = [pool[digits[pool] == d] for d in range(10)]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    mats = {s: resize_bilinear_matrix(8, s) for s in range(digit_min, digit_max + 1)}
    for i in range(count):
        bg = _background(rng, size, yy, xx)
        k = int(rng.integers(min_digits, max_digits + 1))
        classes = rng.choice(10, size=k, replace=False)
        sides = [int(s) for s in rng.integers(digit_min, digit_max + 1, k)]
        corners = _place(rng, sides, size)
        tries = 0
        while corners is None:  # too crowded: shrink the digits, at the smallest size drop one, and try again
            tries += 1
            if tries > 20 and len(sides) > 1:
                classes, sides, tries = classes[:-1], sides[:-1], 0
            sides = [max(digit_min, s - 2) for s in sides]
            corners = _place(rng, sides, size)
        alpha = np.zeros((size, size))
        for j, (c, s, (y, x)) in enumerate(zip(classes, sides, corners)):
            scan = int(by_digit[c][rng.integers(len(by_digit[c]))])
            groups[i, j] = scan
            a = mats[s] @ scans[scan].astype(np.float64) @ mats[s].T
            alpha[y:y + s, x:x + s] = a
            masks[i, c, y:y + s, x:x + s] = a > mask_threshold
        ink = rng.uniform(0.0, 1.0, 3)
        if _luminance(bg).mean() > 0.5:
            ink = 0.25 * ink
        else:
            ink = 0.75 + 0.25 * ink
        img = bg * (1.0 - alpha[..., None]) + ink * alpha[..., None]
        images[i] = np.clip(img, 0.0, 1.0).transpose(2, 0, 1)
        labels[i] = masks[i].any(axis=(1, 2))
    return images, labels, masks, groups


def generate(n: int = 2500, *, train: int | None = None, test: int | None = None, test_fraction: float = 0.2,
             size: int = 64, min_digits: int = 1, max_digits: int = 3, digit_min: int | None = None,
             digit_max: int | None = None, mask_threshold: float = 0.25, seed: int = 0) -> ImageDataset:
    """Generate a DigitScenes dataset (see the module docstring).

    Args:
        n: total number of scenes (train + test) when ``train``/``test`` are not given.
        train: number of training scenes (default ``n - test``).
        test: number of test scenes (default ``round(n * test_fraction)``).
        test_fraction: share of each digit's SCANS reserved for test (and of ``n`` given to test).
        size: image side ``H = W`` in pixels (>= 16).
        min_digits, max_digits: digits per scene, of distinct classes (1 <= min <= max <= 3); digits that do
            not fit are shrunk towards ``digit_min`` and, should even that fail 20 times, one is dropped.
        digit_min, digit_max: side of a pasted digit in pixels (default ``max(8, size // 4)`` and
            ``max(digit_min, size * 7 // 16)``: 16 and 28 at size 64).
        mask_threshold: a pixel belongs to a digit's mask when its upsampled ink intensity exceeds this.
        seed: the seed of the scan split and of every scene.

    Returns:
        :class:`~pointlens.data.images.ImageDataset` with ``images (M, 3, size, size)`` float32 in [0, 1],
        ``labels (M, 10)`` multi-hot, ``masks (M, 10, size, size)`` bool, ``groups (M, max_digits)`` scan
        indices, ``split`` (train scenes first), ``names`` and ``meta`` (the options, ``version``, the scan
        counts per split).

    Raises:
        InvalidArgumentError: an option out of range (naming it and the accepted range).
    """
    size = check_int("size", size, minimum=16, maximum=1024)
    test_fraction = check_float("test_fraction", test_fraction, minimum=0.0, maximum=0.9)
    min_digits = check_int("min_digits", min_digits, minimum=1, maximum=3)
    max_digits = check_int("max_digits", max_digits, minimum=min_digits, maximum=3)
    if digit_min is None:
        digit_min = max(8, size // 4)
    digit_min = check_int("digit_min", digit_min, minimum=8)
    if max_digits * digit_min > size:
        raise bad_argument("digit_min", digit_min, f"at most size / max_digits = {size // max_digits} (room for "
                           f"{max_digits} digits side by side in {size} pixels): lower max_digits or raise size")
    digit_max = check_int("digit_max", max(digit_min, size * 7 // 16) if digit_max is None else digit_max,
                          minimum=digit_min, maximum=size)
    mask_threshold = check_float("mask_threshold", mask_threshold, minimum=0.0, maximum=0.99)
    seed = check_int("seed", seed)
    n = check_int("n", n, minimum=1)
    if test is None:
        test = int(round(n * test_fraction)) if test_fraction > 0 else 0
    test = check_int("test", test, minimum=0)
    train = check_int("train", n - test if train is None else train, minimum=0)
    if train + test == 0:
        raise bad_argument("n", n, "at least one scene in train + test")
    if test and test_fraction == 0:
        raise bad_argument("test_fraction", test_fraction, "> 0 when test scenes are asked for (the test scenes "
                           "need scans of their own)")
    scans, digits = load_digit_scans()
    scan_split = split_scans(digits, test_fraction, seed)
    opts = dict(size=size, min_digits=min_digits, max_digits=max_digits, digit_min=digit_min,
                digit_max=digit_max, mask_threshold=mask_threshold)
    parts = []
    for k, (name, count) in enumerate((("train", train), ("test", test))):
        if count == 0:
            continue
        pool = np.flatnonzero(scan_split == name)
        rng = np.random.default_rng(np.random.SeedSequence([seed, k]))
        parts.append((name, count, _scenes(rng, count, pool, scans, digits, **opts)))
    images = np.concatenate([p[2][0] for p in parts])
    labels = np.concatenate([p[2][1] for p in parts])
    masks = np.concatenate([p[2][2] for p in parts])
    groups = np.concatenate([p[2][3] for p in parts])
    split = np.concatenate([np.full(count, name) for name, count, _ in parts])
    names = np.array([f"digitscenes-{name}-{i:05d}" for name, count, _ in parts for i in range(count)])
    meta = {"generator": "digitscenes", "version": VERSION, "n": train + test, "train": train, "test": test,
            "test_fraction": test_fraction, "seed": seed, **opts,
            "scans": {"train": int((scan_split == "train").sum()), "test": int((scan_split == "test").sum())}}
    return ImageDataset(images=images, labels=labels, class_names=list(CLASS_NAMES), masks=masks, names=names,
                        split=split, groups=groups, meta=meta)


def generate_from_options(options: dict[str, str]) -> ImageDataset:
    """Generate from the string options of a data spec, e.g. ``digitscenes:n=600,size=48,seed=1``.

    Args:
        options: ``{key: value}`` strings; keys among :data:`OPTION_KEYS` (``test_fraction`` and
            ``mask_threshold`` are numbers, the others integers). Missing keys take :func:`generate`'s defaults.

    Returns:
        the :class:`~pointlens.data.images.ImageDataset` of :func:`generate`.

    Raises:
        InvalidArgumentError: an unknown key or a value that does not parse, naming the key, the value received
            and what is accepted.
    """
    if not isinstance(options, dict):
        raise bad_argument("options", type(options).__name__, "a dict of string options")
    kwargs: dict = {}
    for key, raw in options.items():
        if key not in OPTION_KEYS:
            raise bad_argument("digitscenes option key", key, "one of " + ", ".join(OPTION_KEYS))
        value = str(raw).strip()
        number = key in ("test_fraction", "mask_threshold")
        try:
            kwargs[key] = float(value) if number else int(value)
        except ValueError:
            raise bad_argument(f"digitscenes option '{key}'", value, "a number" if number else "an integer") \
                from None
    try:
        return generate(**kwargs)
    except InvalidArgumentError as e:
        raise InvalidArgumentError(f"digitscenes option {e}") from None
