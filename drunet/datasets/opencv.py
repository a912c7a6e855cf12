"""OpenCV's part of reading and writing image files: PNG, JPEG and BMP, and compressed TIFFs
that tifffile cannot decode without ``imagecodecs``. Callers check sizes before decoding.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from drunet.atomic import atomic_write_bytes
from drunet.datasets.limits import ENV
from drunet.errors import DataError


def decode(data: np.ndarray, path: Path, what: str, kind: str, fix: str) -> np.ndarray:
    """Decode one PNG/JPEG/BMP image (as stored: BGR(A)); failures are a ``DataError``."""
    try:
        with quiet():  # failures become a DataError below; OpenCV's log adds nothing
            array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as err:
        raise _error(err, path, what, kind, fix) from None
    if array is None or array.size == 0:
        raise DataError(
            f"cannot read {what} {path}: this {kind} file could not be decoded (truncated or "
            f"corrupt); {fix}"
        )
    return array


def decode_tiff(
    data: np.ndarray, path: Path, what: str, reason: str, fix: str
) -> tuple[np.ndarray, bool]:
    """A TIFF whose compression tifffile cannot decode without imagecodecs, through OpenCV's
    libtiff → ``(frames (N, H, W, C) RGB(A), alpha)``. Its size was already checked from its
    metadata by ``read_tiff``.
    """
    try:
        with quiet():
            ok, pages = cv2.imdecodemulti(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as err:
        raise _error(err, path, what, "TIFF", fix) from None
    if not ok or not pages:
        raise DataError(
            f"cannot read {what} {path}: {reason.rstrip('.')}, and OpenCV could not decode it "
            "either; pip install imagecodecs, or save it uncompressed or with zlib"
        )
    pages = [p[:, :, None] if p.ndim == 2 else bgr_to_rgb(p) for p in pages]
    first = pages[0]
    if any(p.shape != first.shape or p.dtype != first.dtype for p in pages):
        raise DataError(
            f"cannot read {what} {path}: its TIFF pages differ in size or type; drunet reads "
            "one image, or a stack of same-sized pages — save each image in its own file"
        )
    return np.stack(pages), first.shape[2] == 4


def _error(err: cv2.error, path: Path, what: str, kind: str, fix: str) -> DataError:
    if "MAX_IMAGE_PIXELS" in str(err.err):
        limit = os.environ.get("OPENCV_IO_MAX_IMAGE_PIXELS")
        return DataError(
            f"cannot read {what} {path}: OpenCV refuses it as larger than its limit "
            f"OPENCV_IO_MAX_IMAGE_PIXELS={limit}, which guards against decompression bombs; if "
            f"the image is genuine, raise that variable (and {ENV}), or split it into tiles"
        )
    return DataError(f"cannot read {what} {path}: OpenCV failed on this {kind} ({err.err}); {fix}")


def bgr_to_rgb(array: np.ndarray) -> np.ndarray:
    """OpenCV's BGR(A) ``(H, W, C)`` → RGB(A); other channel counts unchanged."""
    if array.shape[2] == 3:
        return np.ascontiguousarray(array[:, :, ::-1])
    if array.shape[2] == 4:
        return np.ascontiguousarray(array[:, :, [2, 1, 0, 3]])
    return array


def png_chunk_past_end(data: np.ndarray) -> str | None:
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
def quiet() -> Iterator[None]:
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


def encode_and_write(path: Path, suffix: str, array: np.ndarray) -> None:
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
