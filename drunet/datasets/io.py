"""Image and mask files through OpenCV: read as RGB ``(H, W, C)`` / class indices, write atomically.

Paths go through ``np.fromfile`` / ``cv2.imdecode`` and ``cv2.imencode`` / ``os.replace`` rather
than ``cv2.imread`` / ``cv2.imwrite``, so folders with non-ASCII names work on every platform and
a crash mid-write never leaves half a file behind.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
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
_ENCODER_CHANNELS = {".jpg": (1, 3), ".jpeg": (1, 3), ".bmp": (1, 3), ".png": (1, 3, 4)}
_MULTIPAGE_SUFFIXES = (".tif", ".tiff")  # any channel count: one page per channel
_IMAGE_DTYPES = (np.uint8, np.uint16, np.float32)
FIX_HINT = "re-export it as PNG or TIFF, or move it out of the dataset folder"
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*")
_warned_alpha: set[str] = set()  # files whose alpha warning was already logged

# Decompression-bomb guard: OpenCV refuses images above this many pixels before allocating
# them (a 1 MB PNG can expand to gigabytes). ``drunet/__init__.py`` hands the limit to OpenCV
# before cv2 loads; raise it with the environment variable DRUNET_MAX_IMAGE_PIXELS.
MAX_IMAGE_PIXELS = int(os.environ.get("OPENCV_IO_MAX_IMAGE_PIXELS", 2**30))


def read_bytes(path: Path, what: str = "image") -> np.ndarray:
    """The file's bytes as a uint8 array; a missing, unreadable or empty file is a ``DataError``."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(
            f"cannot read {what} {path}: the file does not exist; check the path"
        ) from None
    except OSError as err:
        raise DataError(
            f"cannot read {what} {path}: {err.strerror or err}; check that it is a readable file"
        ) from None
    if data.size == 0:
        raise DataError(f"cannot read {what} {path}: the file is empty (0 bytes); {FIX_HINT}")
    return data


def decode_bytes(data: np.ndarray, path: Path, what: str = "image") -> tuple[np.ndarray, bool]:
    """Decode a file's bytes → ``(pixels, pages)``.

    ``pixels`` is ``(H, W)`` or ``(H, W, C)`` in the file's dtype. A single page is BGR(A) as
    OpenCV stores it and ``pages`` is False; a multi-page TIFF (one single-channel page per
    channel, as ImageJ and ``tifffile`` write stacks) is stacked to ``(H, W, pages)`` in page
    order and ``pages`` is True. Undecodable data is a ``DataError`` that says whether the file
    is not an image at all or a damaged one.
    """
    kind = _format_of(data)
    if kind is None:
        raise DataError(
            f"cannot read {what} {path}: it is not an image file (its first bytes match no PNG, "
            f"JPEG, TIFF or BMP header); {FIX_HINT}"
        )
    if kind == "PNG" and (chunk := _png_chunk_past_end(data)) is not None:
        raise DataError(
            f"cannot read {what} {path}: this PNG file could not be decoded (truncated or "
            f"corrupt) — its {chunk} chunk claims more bytes than the file holds; {FIX_HINT}"
        )
    if kind == "TIFF":
        samples = _tiff_samples_per_pixel(data)
        if samples is not None and samples not in (1, 3, 4):
            raise DataError(
                f"cannot read {what} {path}: its TIFF pages hold {samples} samples per pixel, "
                "which OpenCV cannot decode; save one page per channel instead (e.g. "
                "tifffile.imwrite(path, stack) with stack shaped (C, H, W))"
            )
    try:
        with _quiet_opencv():  # failures become a DataError below; OpenCV's log adds nothing
            if kind == "TIFF":
                ok, pages = cv2.imdecodemulti(data, cv2.IMREAD_UNCHANGED)
                array = pages[0] if ok and len(pages) == 1 else None
            else:
                ok, pages, array = True, (), cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as err:
        if "MAX_IMAGE_PIXELS" in str(err.err):
            raise DataError(
                f"cannot read {what} {path}: it has more than {MAX_IMAGE_PIXELS:,} pixels, the "
                "limit that guards against decompression bombs; if the image is genuine, set "
                "the environment variable DRUNET_MAX_IMAGE_PIXELS higher, or split it into tiles"
            ) from None
        raise DataError(
            f"cannot read {what} {path}: OpenCV failed on this {kind} ({err.err}); {FIX_HINT}"
        ) from None
    if ok and len(pages) > 1:
        return _stack_pages(pages, path, what), True
    if array is None or array.size == 0:
        raise DataError(
            f"cannot read {what} {path}: this {kind} file could not be decoded (truncated or "
            f"corrupt); {FIX_HINT}"
        )
    return array, False


def _format_of(data: np.ndarray) -> str | None:
    head = bytes(data[:8])
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] in _TIFF_MAGIC:
        return "TIFF"
    if head.startswith(b"BM"):
        return "BMP"
    return None


def _png_chunk_past_end(data: np.ndarray) -> str | None:
    """The name of the first PNG chunk whose data runs past the end of the file, else None.

    OpenCV reads a chunk into a buffer of its declared length before noticing that the file is
    shorter, so one corrupt length field (up to 2 GB) in a file of a few bytes would be
    allocated in full. A file cut inside a chunk fails to decode either way.
    """
    position = 8
    while position + 8 <= data.size:
        (length,) = struct.unpack_from(">I", data.data, position)
        name = bytes(data[position + 4 : position + 8])
        if position + 8 + length > data.size:
            return name.decode("ascii", "backslashreplace")
        if name == b"IEND":
            return None
        position += 12 + length
    return None


@contextmanager
def _quiet_opencv() -> Iterator[None]:
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


def _stack_pages(pages: Sequence[np.ndarray], path: Path, what: str) -> np.ndarray:
    first = pages[0]
    for i, page in enumerate(pages[1:], start=1):
        if page.ndim != 2 or page.shape != first.shape or page.dtype != first.dtype:
            raise DataError(
                f"cannot read {what} {path}: it is a TIFF of {len(pages)} pages but page {i} is "
                f"{page.shape} {page.dtype} while page 0 is {first.shape} {first.dtype}; drunet "
                "reads the pages of a TIFF as the channels of one image, so they must match — "
                "save a single page, or one same-sized gray page per channel"
            )
    if first.ndim != 2:
        raise DataError(
            f"cannot read {what} {path}: it is a TIFF of {len(pages)} pages of {first.shape[2]} "
            "channels; drunet reads a multi-page TIFF as one gray page per channel — save it so"
        )
    return np.stack(pages, axis=2)


def _tiff_samples_per_pixel(data: np.ndarray) -> int | None:
    """SamplesPerPixel (tag 277) of a classic TIFF's first page; None if the header is odd."""
    order = "<" if bytes(data[:2]) == b"II" else ">"
    try:
        (offset,) = struct.unpack_from(order + "I", data.data, 4)
        (count,) = struct.unpack_from(order + "H", data.data, offset)
        for i in range(count):
            start = offset + 2 + 12 * i
            tag, kind = struct.unpack_from(order + "HH", data.data, start)
            if tag == 277:
                return struct.unpack_from(
                    order + ("H" if kind == 3 else "I"), data.data, start + 8
                )[0]
    except struct.error:
        return None  # truncated or unusual: let OpenCV decide
    return 1  # the TIFF default


@dataclass(frozen=True)
class DecodedImage:
    """An image as ``read_image`` returns it, plus what reading it did."""

    array: np.ndarray  # (H, W, C) RGB in the file's dtype
    alpha_dropped: bool  # the file was RGBA; the alpha channel is not in ``array``
    pages: bool  # a multi-page TIFF: channels are pages


def decode_image(path: str | Path) -> DecodedImage:
    """Read an image like ``read_image`` (without logging) and say what was done to it."""
    path = Path(path)
    array, pages = decode_bytes(read_bytes(path), path)
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    if array.dtype not in _IMAGE_DTYPES:
        raise DataError(
            f"cannot read image {path}: unsupported pixel type {array.dtype}; convert it to "
            "8- or 16-bit unsigned integers or 32-bit float"
        )
    if array.ndim == 2:
        return DecodedImage(array[:, :, None], False, False)
    channels = array.shape[2]
    if not pages and channels == 4:
        return DecodedImage(np.ascontiguousarray(array[:, :, 2::-1]), True, False)
    if not pages and channels == 3:
        return DecodedImage(np.ascontiguousarray(array[:, :, ::-1]), False, False)
    return DecodedImage(array, False, pages)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as ``(H, W, C)`` RGB in the file's dtype (uint8, uint16 or float32).

    Grayscale gives ``C = 1``; BGR files are reordered to RGB; an alpha channel is dropped (with a
    warning, once per file). A multi-page TIFF is read as one channel per page, in page order.
    float64 TIFFs are narrowed to float32; other pixel types (signed integers) raise ``DataError``.

    Errors are ``DataError`` naming the file: "the file does not exist", "the file is empty
    (0 bytes)", "it is not an image file" (no PNG/JPEG/TIFF/BMP header), "this PNG file could not
    be decoded (truncated or corrupt)", each followed by the fix.
    """
    decoded = decode_image(path)
    if decoded.alpha_dropped and str(path) not in _warned_alpha:
        _warned_alpha.add(str(path))
        log.warning("%s has an alpha channel; it is ignored (RGB is used)", path)
    return decoded.array


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


def write_image(path: str | Path, array: np.ndarray) -> None:
    """Write ``(H, W)`` or ``(H, W, C)`` RGB(A) pixels atomically; the suffix picks the format.

    ``C`` is 1, 3 (RGB) or 4 (RGBA); JPEG and BMP take 1 or 3; TIFF takes any ``C``, writing
    ``C`` = 2 or ``C`` > 4 as one gray page per channel (``read_image`` stacks them back). Pixel
    types: uint8 everywhere, uint16 for PNG/TIFF, float32 for TIFF only (OpenCV would otherwise
    silently cut them to 8 bits). Parent folders are created.
    """
    path = Path(path)
    suffix = _check_suffix(path, IMAGE_SUFFIXES)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    channels = 1 if array.ndim == 2 else array.shape[2]
    allowed_channels = _ENCODER_CHANNELS.get(suffix)
    if array.ndim not in (2, 3) or (allowed_channels and channels not in allowed_channels):
        allowed = allowed_channels or "1, 2, 3, …"
        raise ValueError(
            f"cannot write {path}: shape {array.shape} is not (H, W) or (H, W, C) with C in "
            f"{allowed} for {suffix}"
        )
    _check_dtype(path, suffix, array.dtype)
    if suffix in _MULTIPAGE_SUFFIXES and channels not in (1, 3, 4):
        _encode_pages_and_write(path, suffix, [array[:, :, c] for c in range(channels)])
        return
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


def _encode_pages_and_write(path: Path, suffix: str, pages: list[np.ndarray]) -> None:
    """Encode one page per array into a multi-page TIFF and replace ``path`` atomically."""
    pages = [np.ascontiguousarray(page) for page in pages]
    try:
        ok, buffer = cv2.imencodemulti(suffix, pages)
    except cv2.error as err:
        raise ValueError(f"cannot write {path}: OpenCV failed to encode it ({err.err})") from None
    if not ok:
        raise ValueError(f"cannot write {path}: OpenCV failed to encode {len(pages)} pages")
    atomic_write_bytes(path, buffer.tobytes())
