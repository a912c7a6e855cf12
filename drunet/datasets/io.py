"""Image and mask files through OpenCV: read as RGB ``(H, W, C)`` / class indices, write atomically.

Paths go through ``np.fromfile`` / ``cv2.imdecode`` and ``cv2.imencode`` / ``os.replace`` rather
than ``cv2.imread`` / ``cv2.imwrite``, so folders with non-ASCII names work on every platform and
a crash mid-write never leaves half a file behind.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from drunet.atomic import atomic_write_bytes
from drunet.errors import DataError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
MASK_SUFFIXES = (".png", ".tif", ".tiff")  # lossless only: JPEG would blur class boundaries

# Pixel types each encoder stores exactly; OpenCV silently falls back to 8-bit for the others.
_ENCODER_DTYPES = {
    ".png": (np.uint8, np.uint16),
    ".jpg": (np.uint8,),
    ".jpeg": (np.uint8,),
    ".bmp": (np.uint8,),
    ".tif": (np.uint8, np.uint16, np.float32),
    ".tiff": (np.uint8, np.uint16, np.float32),
}
_ENCODER_CHANNELS = {".jpg": (1, 3), ".jpeg": (1, 3), ".bmp": (1, 3)}  # others: 1, 3 or 4
_IMAGE_DTYPES = (np.uint8, np.uint16, np.float32)
_FIX = "re-export it as PNG or TIFF, or move it out of the dataset folder"
_warned_alpha: set[str] = set()  # files whose alpha warning was already logged


def _decode(path: Path) -> np.ndarray:
    """The file's pixels as OpenCV stores them: ``(H, W)`` or ``(H, W, C)`` BGR(A), any dtype."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(
            f"cannot read image {path}: the file does not exist; check the path"
        ) from None
    except OSError as err:
        raise DataError(
            f"cannot read image {path}: {err.strerror or err}; check that it is a readable file"
        ) from None
    if data.size == 0:
        raise DataError(f"cannot read image {path}: the file is empty (0 bytes); {_FIX}")
    try:
        array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as err:
        raise DataError(f"cannot read image {path}: OpenCV failed ({err.err}); {_FIX}") from None
    if array is None or array.size == 0:
        raise DataError(
            f"cannot read image {path}: OpenCV could not decode it (truncated, corrupt or not an "
            f"image); {_FIX}"
        )
    return array


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as ``(H, W, C)`` RGB in the file's dtype (uint8, uint16 or float32).

    Grayscale gives ``C = 1``; BGR files are reordered to RGB; an alpha channel is dropped (with a
    warning, once per file). Files with 2 or more than 4 channels are returned as stored. float64
    TIFFs are narrowed to float32; other pixel types (signed integers) raise ``DataError``.
    """
    path = Path(path)
    array = _decode(path)
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    if array.dtype not in _IMAGE_DTYPES:
        raise DataError(
            f"cannot read image {path}: unsupported pixel type {array.dtype}; convert it to "
            "8- or 16-bit unsigned integers or 32-bit float"
        )
    if array.ndim == 2:
        return array[:, :, None]
    channels = array.shape[2]
    if channels == 4:
        if str(path) not in _warned_alpha:
            _warned_alpha.add(str(path))
            log.warning("%s has an alpha channel; it is ignored (RGB is used)", path)
        return np.ascontiguousarray(array[:, :, 2::-1])
    if channels == 3:
        return np.ascontiguousarray(array[:, :, ::-1])
    return array


def to_float(image: np.ndarray) -> np.ndarray:
    """Scale to float32 in [0, 1]: uint8 / 255, uint16 / 65535; float images are passed through.

    Float images are assumed to be in [0, 1] already and are neither rescaled nor clipped.
    Shape is unchanged.
    """
    if image.dtype == np.uint8:
        return image.astype(np.float32) / np.float32(255)
    if image.dtype == np.uint16:
        return image.astype(np.float32) / np.float32(65535)
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float32, copy=False)
    raise ValueError(f"to_float expects uint8, uint16 or float pixels, got {image.dtype}")


def read_mask(path: str | Path) -> np.ndarray:
    """Read a mask of class indices as ``(H, W)`` int64.

    Rules:
      * The mask must be single-channel. An RGB(A) file whose three colour channels are equal is
        accepted as gray; colour-coded masks (channels differ) raise ``DataError``.
      * Values must be non-negative integers (float TIFFs holding whole numbers are accepted).
      * Binary 0/255 rule: if the values are a subset of {0, 255} and include 255, the mask is
        taken as a binary mask saved for viewing and 255 becomes class 1. A mask with any other
        value next to 255 (e.g. {0, 1, 255}) keeps 255 as it is.
    """
    path = Path(path)
    mask = _decode(path)
    if mask.ndim == 3:
        channels = mask.shape[2]
        if channels == 1 or (channels in (3, 4) and _channels_equal(mask[:, :, :3])):
            mask = mask[:, :, 0]
        else:
            raise DataError(
                f"cannot use mask {path}: it has {channels} channels that differ (a colour-coded "
                "mask?); colour-coded masks are not supported yet — convert it to a single-channel "
                "PNG of class indices 0, 1, 2, …"
            )
    if not np.issubdtype(mask.dtype, np.integer) and not np.array_equal(mask, np.round(mask)):
        raise DataError(
            f"cannot use mask {path}: it holds fractional values ({mask.dtype}); save the mask "
            "as class indices 0, 1, 2, … in an 8- or 16-bit PNG"
        )
    if mask.size and mask.min() < 0:
        raise DataError(
            f"cannot use mask {path}: it holds negative values (min {mask.min()}); save the mask "
            "as class indices 0, 1, 2, … in an 8- or 16-bit PNG"
        )
    values = np.unique(mask)
    if values[-1] == 255 and np.all((values == 0) | (values == 255)):
        return (mask == 255).astype(np.int64)
    return mask.astype(np.int64)


def _channels_equal(rgb: np.ndarray) -> bool:
    """True if the channels of ``(H, W, 3)`` are identical pixel by pixel."""
    return bool(
        np.array_equal(rgb[:, :, 0], rgb[:, :, 1]) and np.array_equal(rgb[:, :, 0], rgb[:, :, 2])
    )


def write_image(path: str | Path, array: np.ndarray) -> None:
    """Write ``(H, W)`` or ``(H, W, C)`` RGB(A) pixels atomically; the suffix picks the format.

    ``C`` is 1, 3 (RGB) or 4 (RGBA); JPEG and BMP take 1 or 3. Pixel types: uint8 everywhere,
    uint16 for PNG/TIFF, float32 for TIFF only (OpenCV would otherwise silently cut them to 8 bits).
    Parent folders are created.
    """
    path = Path(path)
    suffix = _check_suffix(path, IMAGE_SUFFIXES)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    channels = 1 if array.ndim == 2 else array.shape[2]
    allowed_channels = _ENCODER_CHANNELS.get(suffix, (1, 3, 4))
    if array.ndim not in (2, 3) or channels not in allowed_channels:
        raise ValueError(
            f"cannot write {path}: shape {array.shape} is not (H, W) or (H, W, C) with C in "
            f"{allowed_channels} for {suffix}"
        )
    _check_dtype(path, suffix, array.dtype)
    if channels == 3:
        array = array[:, :, ::-1]  # RGB → BGR
    elif channels == 4:
        array = array[:, :, [2, 1, 0, 3]]  # RGBA → BGRA
    _encode_and_write(path, suffix, np.ascontiguousarray(array))


def write_mask(path: str | Path, mask: np.ndarray) -> None:
    """Write ``(H, W)`` non-negative integer class indices atomically as PNG or TIFF.

    Values are stored exactly: 8-bit when the maximum is at most 255, else 16-bit. Binary masks
    are written as 0/1 (read them back unchanged); note that a mask holding only 0 and 255 reads
    back as 0/1 (see ``read_mask``). Parent folders are created.
    """
    path = Path(path)
    suffix = _check_suffix(path, MASK_SUFFIXES)
    if mask.ndim != 2:
        raise ValueError(f"cannot write mask {path}: expected shape (H, W), got {mask.shape}")
    if mask.dtype != np.bool_ and not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(
            f"cannot write mask {path}: expected integer class indices, got {mask.dtype}"
        )
    low, high = (int(mask.min()), int(mask.max())) if mask.size else (0, 0)
    if low < 0 or high > 65535:
        raise ValueError(
            f"cannot write mask {path}: class indices must lie in [0, 65535], got [{low}, {high}]"
        )
    dtype = np.uint8 if high <= 255 else np.uint16
    _encode_and_write(path, suffix, np.ascontiguousarray(mask, dtype=dtype))


def _check_suffix(path: Path, allowed: tuple[str, ...]) -> str:
    suffix = path.suffix.lower()
    if suffix not in allowed:
        raise ValueError(
            f"cannot write {path}: unsupported suffix {suffix!r}; use one of {allowed}"
        )
    return suffix


def _check_dtype(path: Path, suffix: str, dtype: np.dtype) -> None:
    allowed = _ENCODER_DTYPES[suffix]
    if dtype not in allowed:
        names = ", ".join(np.dtype(d).name for d in allowed)
        raise ValueError(f"cannot write {path}: {suffix} stores {names} pixels, got {dtype}")


def _encode_and_write(path: Path, suffix: str, array: np.ndarray) -> None:
    """Encode ``array`` (already BGR) by ``suffix`` and replace ``path`` atomically."""
    try:
        ok, buffer = cv2.imencode(suffix, array)
    except cv2.error as err:
        raise ValueError(f"cannot write {path}: OpenCV failed to encode it ({err.err})") from None
    if not ok:
        raise ValueError(
            f"cannot write {path}: OpenCV failed to encode {array.shape} {array.dtype}"
        )
    atomic_write_bytes(path, buffer.tobytes())
