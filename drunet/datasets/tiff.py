"""TIFF files through tifffile: classic and BigTIFF, ImageJ/OME stacks, compression, planar or
interleaved samples, any bit depth.

A file is read as a stack ``(N, H, W, C)``: the samples of a pixel (and an ImageJ/OME ``C`` axis)
are the channels ``C``; every other axis (pages, Z, time) is flattened into the ``N`` frames.
Only the first image series is read; a file holding several (pages of different sizes) is a
``DataError``. The size every page declares is checked against the pixel limit *before*
decoding (``drunet.datasets.limits``).
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drunet.datasets.limits import check_pixels
from drunet.errors import DataError

_CHANNEL_AXES = ("S", "C")
_RGB = 2  # TIFF photometric interpretation RGB


class CodecMissing(Exception):
    """tifffile needs a codec (``imagecodecs``) that is not installed for this compression.

    ``pixels`` and ``nbytes`` are the whole file's, for a caller that decodes it otherwise.
    """

    def __init__(self, reason: str, pixels: int, nbytes: int) -> None:
        super().__init__(reason)
        self.pixels, self.nbytes = pixels, nbytes


@dataclass(frozen=True)
class TiffStack:
    """A decoded TIFF: ``frames`` ``(N, H, W, C)`` in the file's dtype; ``rgb``: RGB(A) pixels."""

    frames: np.ndarray
    rgb: bool


@contextmanager
def _quiet_tifffile() -> Iterator[None]:
    """tifffile logs what it finds wrong in a file; drunet turns that into one DataError."""
    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


def _tifffile() -> Any:
    try:
        import tifffile
    except ImportError:  # pragma: no cover - installed with drunet
        raise DataError(
            "reading TIFF files needs the tifffile package: pip install tifffile"
        ) from None
    return tifffile


def read_tiff(
    data: np.ndarray, path: Path, what: str, fix: str, page: int | None = None
) -> TiffStack:
    """Decode TIFF bytes → ``TiffStack``; corrupt files and odd layouts are ``DataError``.

    With ``page``, only that frame is decoded (``N`` = 1) and only its size counts against the
    pixel limit; otherwise the whole file's does. Raises ``CodecMissing`` when the compression
    needs ``imagecodecs`` (the caller may fall back to another decoder).
    """
    tifffile = _tifffile()
    try:
        with _quiet_tifffile():
            tif = _open(tifffile, io.BytesIO(data.tobytes()))
    except Exception:  # tifffile raises many types on hostile bytes; all mean "corrupt"
        raise _corrupt(path, what, fix) from None
    with tif, _quiet_tifffile():
        try:
            series = list(tif.series)
            shape, axes, dtype = series[0].shape, series[0].axes, np.dtype(series[0].dtype)
            keyframe = series[0].keyframe
            page_shape, page_axes = tuple(keyframe.shape), str(keyframe.axes)
            photometric = int(keyframe.photometric)
            pages = len(tif.pages)
        except Exception:
            raise DataError(
                f"cannot read {what} {path}: this TIFF file holds no readable image (truncated "
                f"or corrupt); {fix}"
            ) from None
        if len(series) > 1 or pages != len(series[0].pages):
            series = series if len(series) > 1 else [p for p in tif.pages if p is not None]
            shapes = ", ".join(str(tuple(s.shape)) for s in series[:4])
            raise DataError(
                f"cannot read {what} {path}: it is a TIFF of {len(series)} images of different "
                f"shapes or types ({shapes}); drunet reads one image, or a stack of same-sized "
                "pages — save each image in its own file"
            )
        if not all(shape):
            raise DataError(
                f"cannot read {what} {path}: its TIFF image has shape {tuple(shape)}, an empty "
                f"image (a corrupt header); {fix}"
            )
        _check_layout(shape, axes, path, what)
        pixels = math.prod(n for n, a in zip(shape, axes, strict=True) if a not in _CHANNEL_AXES)
        nbytes = math.prod(shape) * dtype.itemsize
        detail = f"TIFF of shape {tuple(shape)}, axes {axes}"
        key: list[int] | None = None
        if page is None:
            check_pixels(pixels, path, what, detail, nbytes)
        else:
            key = _frame_pages(shape, axes, len(page_axes), page, path, what)
            values = math.prod(page_shape) * len(key)  # pixels × samples of this frame
            frame_pixels = values // _samples(page_shape, page_axes) // len(key)
            check_pixels(frame_pixels, path, what, detail, values * dtype.itemsize)
        try:
            array = series[0].asarray() if key is None else series[0].asarray(key=key)
        except (KeyError, ValueError) as err:
            if "imagecodecs" in str(err):
                raise CodecMissing(str(err), pixels, nbytes) from None
            raise _corrupt(path, what, fix) from None
        except Exception:
            raise _corrupt(path, what, fix) from None
    if key is not None:  # (pages of this frame, *page shape): its channels are the C axis
        array, axes = array.reshape((len(key), *page_shape)), "C" + page_axes
    if array.ndim != len(axes) or array.size == 0:
        raise _corrupt(path, what, fix)
    return TiffStack(_to_frames(array, axes), photometric == _RGB)


def _samples(page_shape: tuple[int, ...], page_axes: str) -> int:
    return page_shape[page_axes.index("S")] if "S" in page_axes else 1


def _frame_pages(
    shape: tuple[int, ...], axes: str, page_ndim: int, page: int, path: Path, what: str
) -> list[int]:
    """The page indices that make up frame ``page`` (one per ImageJ/OME channel)."""
    lead_shape, lead_axes = shape[: len(shape) - page_ndim], axes[: len(axes) - page_ndim]
    index = np.arange(math.prod(lead_shape)).reshape(lead_shape)
    channels = 1
    if "C" in lead_axes:  # channels last: each row is one frame
        index = np.moveaxis(index, lead_axes.index("C"), -1)
        channels = lead_shape[lead_axes.index("C")]
    rows = index.reshape(-1, channels)
    if not 0 <= page < len(rows):
        raise DataError(
            f"cannot read {what} {path}: it has {len(rows)} frame(s), so frame {page} does not "
            "exist; the dataset changed since it was listed — list it again"
        )
    return [int(i) for i in rows[page]]


def _corrupt(path: Path, what: str, fix: str) -> DataError:
    return DataError(
        f"cannot read {what} {path}: this TIFF file could not be decoded (truncated or "
        f"corrupt); {fix}"
    )


def _check_layout(shape: tuple[int, ...], axes: str, path: Path, what: str) -> None:
    if "Y" not in axes or "X" not in axes or len(shape) != len(axes):
        raise DataError(
            f"cannot read {what} {path}: its TIFF image has axes {axes!r}, not a 2D image or "
            "stack of 2D images; save it as one page (H, W) or a stack of same-sized pages"
        )
    if (
        all(a in axes for a in _CHANNEL_AXES)
        and min(shape[axes.index("S")], shape[axes.index("C")]) > 1
    ):
        raise DataError(
            f"cannot read {what} {path}: it is a TIFF of {dict(zip(axes, shape, strict=True))} "
            "with both channels (C) and samples (S); save the channels one way only"
        )


def _to_frames(array: np.ndarray, axes: str) -> np.ndarray:
    """``array`` with tifffile's ``axes`` → ``(N, H, W, C)``, frames in file order."""
    channels = [i for i, a in enumerate(axes) if a in _CHANNEL_AXES]
    frames = [i for i, a in enumerate(axes) if a not in (*_CHANNEL_AXES, "Y", "X")]
    order = [*frames, axes.index("Y"), axes.index("X"), *channels]
    moved = np.transpose(array, order)
    height, width = array.shape[axes.index("Y")], array.shape[axes.index("X")]
    return moved.reshape(-1, height, width, math.prod(array.shape[i] for i in channels))


def _open(tifffile: Any, source: Any) -> Any:
    """A ``TiffFile``; pages appended one at a time (``imwrite(..., append=True)`` gives each
    its own one-page "shaped" series) are read as one stack when they are alike."""
    tif = tifffile.TiffFile(source)
    try:
        series = tif.series
        alike = {(tuple(s.shape), str(s.dtype)) for s in series}
        if len(series) > 1 and len(alike) == 1 and all(len(s.pages) == 1 for s in series):
            tif.close()
            if hasattr(source, "seek"):
                source.seek(0)
            return tifffile.TiffFile(source, is_shaped=False)
    except Exception:  # left to the caller, which names the problem
        pass
    return tif


def tiff_frames(path: str | Path) -> int | None:
    """How many frames (pages, Z, time) a TIFF file holds, read from its metadata alone.

    None when the file cannot be parsed (reading it later reports why).
    """
    tifffile = _tifffile()
    try:
        with _quiet_tifffile(), _open(tifffile, path) as tif:
            series = tif.series[0]
            return math.prod(
                n
                for n, a in zip(series.shape, series.axes, strict=True)
                if a not in (*_CHANNEL_AXES, "Y", "X")
            )
    except Exception:  # unreadable: the decoder names the problem when the file is read
        return None


def tiff_pages(path: str | Path) -> int:
    """How many pages (IFDs) a TIFF file holds, whatever its metadata calls them (1 for files
    that cannot be parsed: reading them reports why)."""
    tifffile = _tifffile()
    try:
        with _quiet_tifffile(), tifffile.TiffFile(path) as tif:
            return len(tif.pages)
    except Exception:  # unreadable: the decoder names the problem when the file is read
        return 1


def encode_tiff(array: np.ndarray, compression: str | None = None) -> bytes:
    """``(H, W)`` or ``(H, W, C)`` RGB(A) pixels → one-page TIFF bytes (tifffile).

    ``C`` = 3 is stored as RGB, 4 as RGB + alpha, any other ``C`` as ``C`` gray samples per
    pixel; ``read_tiff`` reads all of them back as ``(1, H, W, C)``.
    """
    tifffile = _tifffile()
    buffer = io.BytesIO()
    options: dict[str, Any] = {"compression": compression}
    channels = 1 if array.ndim == 2 else array.shape[2]
    if channels in (3, 4):
        options.update(photometric="rgb", planarconfig="contig")
        if channels == 4:
            options["extrasamples"] = ["unassalpha"]
    elif array.ndim == 3 and channels > 1:
        options.update(photometric="minisblack", planarconfig="contig")
    else:
        array = array.reshape(array.shape[:2])
        options["photometric"] = "minisblack"
    tifffile.imwrite(buffer, array, **options)
    return buffer.getvalue()


def encode_tiff_stack(frames: np.ndarray, compression: str | None = None) -> bytes:
    """``(N, H, W)`` gray or ``(N, H, W, C)`` frames (``C`` = 1 gray, 3 RGB) → an N-page TIFF,
    one page per frame (``read_tiff`` reads N frames back)."""
    tifffile = _tifffile()
    buffer = io.BytesIO()
    if frames.ndim == 4 and frames.shape[3] == 1:
        frames = frames[:, :, :, 0]
    photometric = "rgb" if frames.ndim == 4 else "minisblack"
    tifffile.imwrite(buffer, frames, photometric=photometric, compression=compression)
    return buffer.getvalue()
