"""A seeded synthetic dataset: textured shapes on a noisy, unevenly lit background.

Each foreground class is its own shape family with its own texture and contrast — class 1
ellipses with stripes, class 2 rotated rectangles with speckle, class 3 triangles with a
checkerboard, then repeating with other orientations — so a small CNN can learn them, while the
uneven illumination and overlapping intensities keep a global threshold from being perfect.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from drunet.atomic import atomic_write_bytes
from drunet.datasets.io import write_image, write_mask
from drunet.datasets.tiff import encode_tiff_stack

_FAMILIES = ("ellipse", "rectangle", "triangle")
_CONTRAST = (0.2, -0.15, 0.12)  # mean intensity offset over the local background, per family
_TINTS = ((1.0, 0.8, 0.6), (0.6, 0.9, 1.0), (0.9, 0.6, 1.0))  # RGB gains per family (colour)
# Pixel types of the images: intensities in [0, 1] → stored values (``int16`` is CT-like: −1000
# for the darkest pixel, +1000 for the brightest, so half the range is negative).
DTYPES = ("uint8", "uint16", "int16", "float32")


def make_synthetic(
    root: str | Path,
    num_images: int = 48,
    num_classes: int = 2,
    sizes: Sequence[tuple[int, int]] = ((128, 128), (160, 192), (192, 160)),
    channels: int = 1,
    seed: int = 0,
    dtype: str = "uint8",
    stack_slices: int | None = None,
) -> Path:
    """Write ``root/images/NNN.png`` (uint8, 1 or 3 channels) and ``root/masks/NNN.png``.

    ``dtype`` other than ``"uint8"`` writes ``root/images/NNN.tif`` instead: ``"uint16"``
    (full 16-bit range), ``"int16"`` (values −1000 … 1000, like CT Hounsfield units) or
    ``"float32"`` (values in [0, 1]).

    ``stack_slices`` writes stacks instead: ``root/images/stackNN.tif`` and
    ``root/masks/stackNN.tif``, multi-page TIFFs of ``stack_slices`` consecutive samples each
    (the last stack may be shorter), all slices of a stack of one size (the stack's entry in
    ``sizes``).

    Masks hold class indices ``0 … num_classes - 1`` (binary: 0/1); every image contains every
    class, and foreground covers roughly 15–40 % of the pixels. Image ``i`` has size
    ``sizes[i % len(sizes)]`` as ``(H, W)``. The same arguments give byte-identical files.
    Existing files with the same names are overwritten. Returns ``root``.
    """
    if num_images < 1:
        raise ValueError(f"num_images must be at least 1, got {num_images}")
    if num_classes < 2:
        raise ValueError(
            f"num_classes must be at least 2 (background + one class), got {num_classes}"
        )
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (gray) or 3 (RGB), got {channels}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if stack_slices is not None and stack_slices < 1:
        raise ValueError(f"stack_slices must be at least 1, got {stack_slices}")
    if not sizes or any(len(s) != 2 or min(s) < 16 for s in sizes):
        raise ValueError(f"sizes must be (H, W) pairs of at least 16 pixels, got {sizes}")
    root = Path(root)
    rng = np.random.default_rng(seed)
    if stack_slices is not None:
        args = (num_images, num_classes, sizes, channels, dtype, stack_slices)
        return _write_stacks(root, rng, *args)
    files = synthetic_files(num_images, dtype)
    for i in range(num_images):
        height, image_width = sizes[i % len(sizes)]
        image, mask = _sample(rng, int(height), int(image_width), num_classes, channels)
        write_image(root / files[2 * i], _stored(image, dtype))
        write_mask(root / files[2 * i + 1], mask)
    return root


def synthetic_files(num_images: int, dtype: str = "uint8") -> list[str]:
    """The files :func:`make_synthetic` writes (not stacks), relative to its root, image then
    mask for each sample: ``images/000.png``, ``masks/000.png``, …"""
    width = max(3, len(str(num_images - 1)))
    suffix = ".png" if dtype == "uint8" else ".tif"
    names = [
        (f"images/{i:0{width}d}{suffix}", f"masks/{i:0{width}d}.png") for i in range(num_images)
    ]
    return [name for pair in names for name in pair]


def _write_stacks(
    root: Path,
    rng: np.random.Generator,
    num_images: int,
    num_classes: int,
    sizes: Sequence[tuple[int, int]],
    channels: int,
    dtype: str,
    stack_slices: int,
) -> Path:
    starts = range(0, num_images, stack_slices)
    for n, start in enumerate(starts):
        height, width = (int(v) for v in sizes[n % len(sizes)])
        count = min(stack_slices, num_images - start)
        samples = [_sample(rng, height, width, num_classes, channels) for _ in range(count)]
        images = np.stack([_stored(image, dtype) for image, _ in samples])  # (N, H, W, C)
        masks = np.stack([mask for _, mask in samples])  # (N, H, W)
        atomic_write_bytes(root / "images" / f"stack{n:02d}.tif", encode_tiff_stack(images))
        atomic_write_bytes(root / "masks" / f"stack{n:02d}.tif", encode_tiff_stack(masks))
    return root


def _stored(image: np.ndarray, dtype: str) -> np.ndarray:
    """uint8 pixels → the same intensities as ``dtype`` (see ``DTYPES``)."""
    unit = image.astype(np.float32) / 255
    if dtype == "uint16":
        return (unit * 65535).round().astype(np.uint16)
    if dtype == "int16":
        return (unit * 2000 - 1000).round().astype(np.int16)
    if dtype == "float32":
        return unit
    return image


def _sample(
    rng: np.random.Generator, height: int, width: int, num_classes: int, channels: int
) -> tuple[np.ndarray, np.ndarray]:
    """One image ``(H, W, C)`` uint8 and its mask ``(H, W)`` uint8."""
    mask = _draw_labels(rng, height, width, num_classes)
    background = _background(rng, height, width)
    image = np.repeat(background[:, :, None], channels, axis=2)  # (H, W, C)
    for k in range(1, num_classes):
        region = mask == k
        family, variant = (k - 1) % len(_FAMILIES), (k - 1) // len(_FAMILIES)
        contrast = _CONTRAST[family] * (1 + 0.4 * variant)
        layer = background + contrast + _texture(rng, family, height, width, variant)
        if channels == 3:
            layer = layer[:, :, None] * np.asarray(_TINTS[family], dtype=np.float32)
        else:
            layer = layer[:, :, None]
        image[region] = layer[region]
    # Soft edges (optics) and sensor noise; the labels stay hard.
    image = cv2.GaussianBlur(image, (0, 0), sigmaX=0.8).reshape(height, width, channels)
    image = image + rng.normal(0.0, 0.05, size=image.shape).astype(np.float32)
    return (np.clip(image, 0.0, 1.0) * 255).round().astype(np.uint8), mask


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """``(H, W)`` float32: a tilted illumination plane plus low-frequency blobs."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * (xs / width - 0.5) + np.sin(angle) * (ys / height - 0.5)
    level = rng.uniform(0.35, 0.5) + rng.uniform(0.15, 0.3) * ramp
    coarse = rng.normal(0.0, 1.0, size=(4, 4)).astype(np.float32)
    blobs = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return (level + 0.05 * blobs).astype(np.float32)


def _texture(
    rng: np.random.Generator, family: int, height: int, width: int, variant: int
) -> np.ndarray:
    """``(H, W)`` float32 zero-mean texture that tells the shape families apart."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    if family == 0:  # stripes
        angle = rng.uniform(0, np.pi) + variant * np.pi / 4
        period = rng.uniform(5.0, 9.0)
        phase = (np.cos(angle) * xs + np.sin(angle) * ys) * (2 * np.pi / period)
        return (0.08 * np.sin(phase)).astype(np.float32)
    if family == 1:  # speckle
        return rng.normal(0.0, 0.1 + 0.03 * variant, size=(height, width)).astype(np.float32)
    cell = 4 + 2 * variant  # checkerboard
    board = ((xs // cell + ys // cell) % 2).astype(np.float32)
    return (0.14 * (board - 0.5)).astype(np.float32)


def _draw_labels(rng: np.random.Generator, height: int, width: int, num_classes: int) -> np.ndarray:
    """``(H, W)`` uint8 labels: shapes of every class until foreground reaches a target share."""
    mask = np.zeros((height, width), dtype=np.uint8)
    target = rng.uniform(0.15, 0.35)
    classes = list(range(1, num_classes))
    for step in range(40):
        k = classes[step % len(classes)]
        _draw_shape(rng, mask, k, (k - 1) % len(_FAMILIES))
        if step + 1 >= len(classes) and np.count_nonzero(mask) >= target * mask.size:
            break
    for k in classes:  # a later shape may have covered every pixel of an earlier class
        while not np.any(mask == k):
            _draw_shape(rng, mask, k, (k - 1) % len(_FAMILIES))
    return mask


def _draw_shape(rng: np.random.Generator, mask: np.ndarray, label: int, family: int) -> None:
    """Fill one shape of ``family`` with ``label`` at a random place, size and angle."""
    height, width = mask.shape
    side = min(height, width)
    cx, cy = rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height
    a, b = rng.uniform(0.06, 0.16, size=2) * side
    angle = rng.uniform(0, 180)
    if family == 0:
        center = (round(cx), round(cy))
        cv2.ellipse(mask, center, (round(a), round(b)), angle, 0, 360, int(label), thickness=-1)
        return
    if family == 1:
        corners = cv2.boxPoints(((cx, cy), (2 * a, 1.4 * b), angle))
    else:
        turns = angle * np.pi / 180 + np.array([0.0, 2.1, 4.2]) + rng.uniform(-0.3, 0.3, size=3)
        radius = 1.3 * max(a, b)
        corners = np.stack([cx + radius * np.cos(turns), cy + radius * np.sin(turns)], axis=1)
    cv2.fillPoly(mask, [np.round(corners).astype(np.int32)], int(label))
