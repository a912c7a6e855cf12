"""Regions laid out as ``read_image`` lays out an image: ``(h, w, C)``, its dtype rules.

Every reader decodes a region in the file's own axis order; :func:`image_layout` brings it to
drunet's layout, so a region of a giant file equals the same rectangle of ``read_image``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from drunet.datasets.io import IMAGE_DTYPES, image_pixels
from drunet.errors import DataError

_NARROWED = (np.float16, np.float64)  # read as float32, as read_image does
SPATIAL = ("Y", "X")


def image_dtype(dtype: np.dtype, path: Path) -> np.dtype:
    """The dtype ``read_image`` gives pixels of ``dtype`` (checked when a file is opened)."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return np.dtype(np.uint8)
    if dtype in _NARROWED:
        return np.dtype(np.float32)
    if dtype not in IMAGE_DTYPES:
        raise DataError(
            f"cannot read image {path}: unsupported pixel type {dtype}; convert it to "
            "8- or 16-bit integers (signed or unsigned), 32-bit signed integers or float"
        )
    return dtype.newbyteorder("=")


def channel_axes(shape: tuple[int, ...], axes: str, path: Path) -> int:
    """How many channels an image of ``axes`` has once every axis but Y and X is one channel
    axis — frames (pages, Z, time) become channels only when each holds one, as in
    ``read_image``; both several frames and several samples is a ``DataError``."""
    if "Y" not in axes or "X" not in axes:
        raise DataError(
            f"cannot read image {path}: its axes are {axes!r}, not a 2D image; save it as a "
            "2D image with its channels"
        )
    sizes = dict(zip(axes, shape, strict=True))
    samples = int(np.prod([n for a, n in sizes.items() if a in ("C", "S")]))
    frames = int(np.prod([n for a, n in sizes.items() if a not in ("C", "S", *SPATIAL)]))
    if samples > 1 and frames > 1:
        raise DataError(
            f"cannot read image {path}: it holds {frames} frames of {samples} channels "
            f"({sizes}); a giant image is one 2D image — save one frame per file"
        )
    return samples * frames


def region_index(axes: str, top: int, left: int, height: int, width: int) -> tuple[slice, ...]:
    """The index of a rectangle in an array of ``axes`` (every other axis whole)."""
    rows, cols = slice(top, top + height), slice(left, left + width)
    return tuple(rows if a == "Y" else cols if a == "X" else slice(None) for a in axes)


def image_layout(block: np.ndarray, axes: str, path: Path, *, drop_alpha: bool) -> np.ndarray:
    """A region with ``axes`` → ``(h, w, C)``: channels in file order (frames, then C, then
    samples), alpha dropped when ``drop_alpha``, the pixel type as ``read_image`` gives it."""
    order = [axes.index("Y"), axes.index("X")]
    order += [i for i, a in enumerate(axes) if a not in SPATIAL]
    moved = np.transpose(block, order)
    pixels = moved.reshape(*moved.shape[:2], int(np.prod(moved.shape[2:])))
    if drop_alpha:
        pixels = pixels[:, :, :3]
    pixels = image_pixels(pixels, path)
    return np.ascontiguousarray(pixels, dtype=pixels.dtype.newbyteorder("="))


def check_region(
    source_path: Path, size: tuple[int, int], top: int, left: int, height: int, width: int
) -> None:
    """Refuse a rectangle that does not lie inside an image of ``size`` (height, width)."""
    if (
        top < 0
        or left < 0
        or height < 0
        or width < 0
        or top + height > size[0]
        or left + width > size[1]
    ):
        raise ValueError(
            f"region ({top}, {left}) + ({height}, {width}) outside the "
            f"{size[0]} × {size[1]} image {source_path}"
        )
