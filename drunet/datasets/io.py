"""Image and mask files: read as RGB ``(H, W, C)`` / class indices, write atomically.

PNG, JPEG and BMP go through OpenCV, TIFF through tifffile (``drunet.datasets.tiff``). Paths go
through ``np.fromfile`` and ``os.replace`` rather than ``cv2.imread`` / ``cv2.imwrite``, so
folders with non-ASCII names work on every platform and a crash mid-write never leaves half a
file behind. The size a file declares is checked against the pixel limit before it is decoded
(``drunet.datasets.limits``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drunet.atomic import atomic_write_bytes
from drunet.datasets import opencv
from drunet.datasets.limits import check_pixels, declared_pixels
from drunet.datasets.tiff import CodecMissing, encode_tiff, encode_tiff_stack, read_tiff
from drunet.errors import DataError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
MASK_SUFFIXES = (".png", ".tif", ".tiff")  # lossless only: JPEG would blur class boundaries

# Pixel types each encoder stores exactly; OpenCV silently falls back to 8-bit for the others.
_TIFF_DTYPES = (np.uint8, np.uint16, np.int8, np.int16, np.int32, np.float32)
_ENCODER_DTYPES = {
    ".png": (np.uint8, np.uint16),
    ".jpg": (np.uint8,),
    ".jpeg": (np.uint8,),
    ".bmp": (np.uint8,),
    ".tif": _TIFF_DTYPES,
    ".tiff": _TIFF_DTYPES,
}
_ENCODER_CHANNELS = {".jpg": (1, 3), ".jpeg": (1, 3), ".bmp": (1, 3), ".png": (1, 3, 4)}
_TIFF_SUFFIXES = (".tif", ".tiff")
# Pixel types images are read in; float16/float64 are narrowed to float32, bilevel to 0/255.
IMAGE_DTYPES = (np.uint8, np.uint16, np.int8, np.int16, np.int32, np.float32)
FIX_HINT = "re-export it as PNG or TIFF, or move it out of the dataset folder"
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_warned_alpha: set[str] = set()  # files whose alpha warning was already logged


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


@dataclass(frozen=True)
class Frames:
    """A decoded file: ``array`` ``(N, H, W, C)`` in the file's dtype, channels in RGB(A) order.

    ``N`` > 1 only for multi-page TIFF stacks. ``alpha``: the last of 4 channels is alpha.
    """

    array: np.ndarray
    alpha: bool


def decode_frames(
    data: np.ndarray, path: Path, what: str = "image", page: int | None = None
) -> Frames:
    """Decode a file's bytes → ``Frames``; the declared size is checked before decoding.

    ``page`` decodes only that frame of a stack (``N`` = 1; a file that is no stack has frame
    0 only). Undecodable data is a ``DataError`` that says whether the file is not an image at
    all or a damaged one.
    """
    kind = _format_of(data)
    if kind is None:
        raise DataError(
            f"cannot read {what} {path}: it is not an image file (its first bytes match no PNG, "
            f"JPEG, TIFF or BMP header); {FIX_HINT}"
        )
    if kind == "TIFF":
        try:
            stack = read_tiff(data, path, what, FIX_HINT, page)
        except CodecMissing as missing:  # OpenCV decodes every page: check the whole file
            check_pixels(missing.pixels, path, what, "all pages", missing.nbytes)
            frames, alpha = opencv.decode_tiff(data, path, what, str(missing), FIX_HINT)
            return Frames(frames if page is None else frames[page : page + 1], alpha)
        frames = stack.frames
        return Frames(frames, stack.rgb and frames.shape[3] == 4)
    if page not in (None, 0):
        raise DataError(
            f"cannot read {what} {path}: it is a single {kind} image, so it has no frame {page}; "
            "the dataset changed since it was listed — list it again"
        )
    check_size(data, kind, path, what)
    if kind == "PNG" and (chunk := opencv.png_chunk_past_end(data)) is not None:
        raise DataError(
            f"cannot read {what} {path}: this PNG file could not be decoded (truncated or "
            f"corrupt) — its {chunk} chunk claims more bytes than the file holds; {FIX_HINT}"
        )
    array = opencv.decode(data, path, what, kind, FIX_HINT)
    array = array[:, :, None] if array.ndim == 2 else opencv.bgr_to_rgb(array)
    check_pixels(array.shape[0] * array.shape[1], path, what)  # a header that lied
    return Frames(array[None], array.shape[2] == 4)


def check_size(data: np.ndarray, kind: str | None, path: Path, what: str) -> None:
    """Refuse a PNG, BMP or JPEG whose header declares more pixels than the limit."""
    pixels = declared_pixels(data, kind) if kind is not None else None
    if pixels is not None:
        check_pixels(pixels, path, what)


def decode_bytes(data: np.ndarray, path: Path, what: str = "image") -> tuple[np.ndarray, bool]:
    """Decode a file's bytes → ``(pixels (H, W, C) RGB(A), pages)`` for one image.

    A multi-page TIFF of gray pages is stacked to ``(H, W, pages)`` and ``pages`` is True (the
    pages of a file read as one image are its channels); pages of several channels each are a
    ``DataError``. Datasets read such stacks as slices instead (``read_frames``).
    """
    frames = decode_frames(data, path, what).array
    if len(frames) == 1:
        return frames[0], False
    return pages_as_channels(frames, path, what), True


def pages_as_channels(frames: np.ndarray, path: Path, what: str = "image") -> np.ndarray:
    """``(N, H, W, 1)`` gray pages → ``(H, W, N)``; pages of several channels are a DataError."""
    if frames.shape[3] != 1:
        raise DataError(
            f"cannot read {what} {path}: it is a TIFF of {len(frames)} pages of "
            f"{frames.shape[3]} channels; as one image drunet reads a multi-page TIFF as one "
            "gray page per channel — save it so, or as a single page"
        )
    return np.ascontiguousarray(np.moveaxis(frames[:, :, :, 0], 0, 2))


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


@dataclass(frozen=True)
class DecodedImage:
    """An image as ``read_image`` returns it, plus what reading it did."""

    array: np.ndarray  # (H, W, C) RGB in a dtype of IMAGE_DTYPES
    alpha_dropped: bool  # the file was RGBA; the alpha channel is not in ``array``
    pages: bool  # a multi-page TIFF: channels are pages


def decode_image(path: str | Path, page: int | None = None) -> DecodedImage:
    """Read an image like ``read_image`` (without logging) and say what was done to it."""
    path = Path(path)
    frames = decode_frames(read_bytes(path), path, page=page)
    if len(frames.array) > 1:
        return DecodedImage(image_pixels(pages_as_channels(frames.array, path), path), False, True)
    array = image_pixels(frames.array[0], path)
    if frames.alpha:
        return DecodedImage(np.ascontiguousarray(array[:, :, :3]), True, False)
    return DecodedImage(array, False, False)


def image_pixels(array: np.ndarray, path: Path) -> np.ndarray:
    """Bring decoded pixels to a dtype of ``IMAGE_DTYPES`` (float32 for float16/float64, 0/255
    uint8 for bilevel); other types, and float64 values beyond float32, are ``DataError``."""
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * np.uint8(255)
    if array.dtype in (np.float16, np.float64):
        finite = array[np.isfinite(array)]
        if finite.size and float(np.abs(finite).max()) > _FLOAT32_MAX:
            raise DataError(
                f"cannot read image {path}: it holds values beyond the float32 range (±3.4e38, "
                f"largest magnitude {float(np.abs(finite).max()):.3g}), which would become "
                "infinite; rescale it (e.g. to [0, 1]) and save it again"
            )
        return array.astype(np.float32)
    if array.dtype not in IMAGE_DTYPES:
        raise DataError(
            f"cannot read image {path}: unsupported pixel type {array.dtype}; convert it to "
            "8- or 16-bit integers (signed or unsigned), 32-bit signed integers or float"
        )
    return array


def read_image(path: str | Path, page: int | None = None) -> np.ndarray:
    """Read an image as ``(H, W, C)`` RGB in the file's dtype (see ``IMAGE_DTYPES``).

    Grayscale gives ``C = 1``; an alpha channel is dropped (with a warning, once per file). A
    TIFF's samples (and an ImageJ/OME channel axis) are its channels. ``page`` reads one frame
    of a multi-page TIFF stack (datasets read stacks slice by slice); without it a multi-page
    TIFF has one channel per page, in page order (``read_frames`` reads every frame). float16 and
    float64 are narrowed to float32 (values beyond its range are an error, never infinity);
    other pixel types (uint32, 64-bit integers) raise ``DataError``.

    Errors are ``DataError`` naming the file: "the file does not exist", "the file is empty
    (0 bytes)", "it is not an image file" (no PNG/JPEG/TIFF/BMP header), "this PNG file could not
    be decoded (truncated or corrupt)", "more than N pixels allowed", each followed by the fix.
    """
    decoded = decode_image(path, page)
    if decoded.alpha_dropped and str(path) not in _warned_alpha:
        _warned_alpha.add(str(path))
        log.warning("%s has an alpha channel; it is ignored (RGB is used)", path)
    return decoded.array


def read_frames(path: str | Path) -> np.ndarray:
    """Read every frame of an image file as ``(N, H, W, C)`` RGB (``N`` = 1 unless a stack).

    Alpha is dropped and pixel types are brought to ``IMAGE_DTYPES`` as in ``read_image``.
    """
    path = Path(path)
    frames = decode_frames(read_bytes(path), path)
    array = image_pixels(frames.array, path)
    return np.ascontiguousarray(array[..., :3]) if frames.alpha else array


def to_float(image: np.ndarray) -> np.ndarray:
    """Scale to float32: uint8 / 255 and uint16 / 65535 give [0, 1]; signed integer and float
    pixels keep their values (e.g. Hounsfield units), to be windowed or clipped by the
    normalisation. Shape is unchanged.
    """
    if image.dtype == np.uint8:
        return image.astype(np.float32) / np.float32(255)
    if image.dtype == np.uint16:
        return image.astype(np.float32) / np.float32(65535)
    if np.issubdtype(image.dtype, np.floating) or np.issubdtype(image.dtype, np.signedinteger):
        return image.astype(np.float32, copy=False)
    raise ValueError(
        f"to_float expects uint8, uint16, signed integer or float pixels, got {image.dtype}"
    )


def unit_scale(dtype: np.dtype) -> float:
    """What ``to_float`` divides a dtype's raw values by: 255, 65535, or 1 (signed and float)."""
    return {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(np.dtype(dtype), 1.0)


def write_image(path: str | Path, array: np.ndarray) -> None:
    """Write ``(H, W)`` or ``(H, W, C)`` RGB(A) pixels atomically; the suffix picks the format.

    ``C`` is 1, 3 (RGB) or 4 (RGBA); JPEG and BMP take 1 or 3; TIFF takes any ``C`` (one page,
    ``C`` samples per pixel). Pixel types: uint8 everywhere, uint16 for PNG/TIFF, int8, int16,
    int32 and float32 for TIFF only (OpenCV would otherwise silently cut them to 8 bits).
    Parent folders are created.
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
    if suffix in _TIFF_SUFFIXES:
        atomic_write_bytes(path, encode_tiff(np.ascontiguousarray(array)))
        return
    if channels == 3:
        array = array[:, :, ::-1]  # RGB → BGR
    elif channels == 4:
        array = array[:, :, [2, 1, 0, 3]]  # RGBA → BGRA
    opencv.encode_and_write(path, suffix, np.ascontiguousarray(array))


def write_mask(path: str | Path, mask: np.ndarray) -> None:
    """Write ``(H, W)`` non-negative integer class indices atomically as PNG or TIFF, or a stack
    ``(Z, H, W)`` of them as a Z-page TIFF (one page per slice).

    Values are stored exactly: 8-bit when the maximum is at most 255, else 16-bit. Binary masks
    are written as 0/1 (read them back unchanged); note that a mask holding only 0 and 255 reads
    back as 0/1 (see ``read_mask``). Parent folders are created.
    """
    path = Path(path)
    suffix = _check_suffix(path, MASK_SUFFIXES)
    stack = mask.ndim == 3 and suffix in _TIFF_SUFFIXES
    if mask.ndim != 2 and not stack:
        raise ValueError(
            f"cannot write mask {path}: expected shape (H, W) (or (Z, H, W) for a .tif stack), "
            f"got {mask.shape}"
        )
    if mask.dtype != np.bool_ and not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(
            f"cannot write mask {path}: expected integer class indices, got {mask.dtype}"
        )
    low, high = (int(mask.min()), int(mask.max())) if mask.size else (0, 0)
    if low < 0 or high > 65535:
        raise ValueError(
            f"cannot write mask {path}: class indices must lie in [0, 65535], got [{low}, {high}]"
        )
    indices = np.ascontiguousarray(mask, dtype=np.uint8 if high <= 255 else np.uint16)
    if stack:
        atomic_write_bytes(path, encode_tiff_stack(indices))
    elif suffix in _TIFF_SUFFIXES:
        atomic_write_bytes(path, encode_tiff(indices))
    else:
        opencv.encode_and_write(path, suffix, indices)


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
