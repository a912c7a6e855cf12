"""The decompression-bomb guard: how many pixels an image file may hold, checked before decoding.

A 1 MB PNG can declare 10⁹ pixels. drunet reads the size a file declares (the PNG/BMP/JPEG
header, every page of a TIFF) and refuses it above ``max_image_pixels()`` before anything is
decoded; OpenCV's own limit (``OPENCV_IO_MAX_IMAGE_PIXELS``, set by ``drunet/__init__.py``
unless the user set it) is a second guard. The limit is the environment variable
``DRUNET_MAX_IMAGE_PIXELS`` (a whole number of pixels), else ``DEFAULT_MAX_IMAGE_PIXELS``.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from drunet.errors import DataError

ENV = "DRUNET_MAX_IMAGE_PIXELS"
# 2**28 ≈ 268 M pixels (e.g. 16384 × 16384). Decoded worst cases at the limit: 2 GiB for a PNG
# (4 channels × 16 bits = 8 bytes per pixel), 4 GiB for a TIFF (decoded bytes are capped at
# BYTES_PER_PIXEL = 16 per pixel, e.g. 4 channels of float32), plus a float32 working copy of
# 4 bytes per channel and pixel in normalisation: within a 16 GB machine.
DEFAULT_MAX_IMAGE_PIXELS = 2**28
BYTES_PER_PIXEL = 16
_LARGEST = 2**48  # beyond any real image, and safe for OpenCV's size_t parsing
ACCEPTED = f"a whole number of pixels from 1 to 2**48, e.g. {2**30} (default 2**28 = {2**28:,})"


def parse_limit(text: str | None) -> int | None:
    """``DRUNET_MAX_IMAGE_PIXELS`` text → pixels; None when it is not a whole number in range."""
    text = (text or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 15:
        return None
    value = int(text)
    return value if 0 < value <= _LARGEST else None


def max_image_pixels() -> int:
    """The pixel limit in force; a malformed ``DRUNET_MAX_IMAGE_PIXELS`` is a ``DataError``."""
    text = os.environ.get(ENV)
    if text is None or not text.strip():
        return DEFAULT_MAX_IMAGE_PIXELS
    value = parse_limit(text)
    if value is None:
        shown = text if len(text) <= 40 else text[:39] + "…"
        raise DataError(
            f"the environment variable {ENV} is {shown!r}; it must be {ACCEPTED} — fix or unset it"
        )
    return value


def check_pixels(pixels: int, path: Path, what: str, detail: str = "", nbytes: int = 0) -> None:
    """Raise ``DataError`` if a file declares more than the limit (``detail``: e.g. its shape).

    ``nbytes`` (the decoded size, for TIFF) must also stay within ``BYTES_PER_PIXEL`` per
    allowed pixel.
    """
    limit = max_image_pixels()
    where = f" ({detail})" if detail else ""
    if pixels > limit:
        raise DataError(
            f"cannot read {what} {path}: it has {pixels:,} pixels{where}, more than the "
            f"{limit:,} pixels allowed ({ENV}, default 2**28), which guards against "
            f"decompression bombs; if the image is genuine, set {ENV} higher, or split it "
            "into tiles"
        )
    if nbytes > limit * BYTES_PER_PIXEL:
        raise DataError(
            f"cannot read {what} {path}: it would decode to {nbytes / 2**30:.1f} GiB{where}, more "
            f"than {BYTES_PER_PIXEL} bytes for each of the {limit:,} pixels allowed ({ENV}); "
            "if the image is genuine, set the variable higher, or split it into tiles"
        )


def declared_pixels(data: np.ndarray, kind: str) -> int | None:
    """Width × height a PNG, BMP or JPEG header declares; None when it cannot be read."""
    try:
        if kind == "PNG":  # IHDR is the first chunk: width and height at bytes 16-23
            width, height = struct.unpack_from(">II", data.data, 16)
            return width * height
        if kind == "BMP":
            (header,) = struct.unpack_from("<I", data.data, 14)
            if header == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
                width, height = struct.unpack_from("<HH", data.data, 18)
            else:  # height is negative for top-down bitmaps
                width, height = struct.unpack_from("<ii", data.data, 18)
            return abs(width) * abs(height)
        if kind == "JPEG":
            return _jpeg_pixels(data)
    except struct.error:
        return None  # truncated: the decoder reports it
    return None


# Start-of-frame markers (baseline, progressive, lossless, arithmetic), which hold the size.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_pixels(data: np.ndarray) -> int | None:
    """Width × height of a JPEG's first start-of-frame segment."""
    position, size = 2, data.size
    while position + 4 <= size:
        if data[position] != 0xFF:
            return None
        marker = int(data[position + 1])
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length field
            position += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header before
            return None
        (length,) = struct.unpack_from(">H", data.data, position + 2)
        if marker in _SOF:
            height, width = struct.unpack_from(">HH", data.data, position + 5)
            return height * width
        position += 2 + length
    return None
