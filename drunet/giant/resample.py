"""A region source at another resolution: prediction at the resolution a network was trained at.

``resample(source, mpp=X)`` (or ``height=``/``width=``) gives a :class:`RegionSource` whose pixel
``(i, j)`` is centred on the source position ``((i + ½)·sy, (j + ½)·sx)`` (``sy``, ``sx``: source
pixels per output pixel). ``"linear"`` weights the source pixels with a triangle of half-width
``max(1, s)`` — bilinear when enlarging, an antialiased average when shrinking (as PIL's
bilinear resize); ``"nearest"`` takes the pixel under the centre (class masks). Each output
pixel is computed from absolute positions with a fixed number of terms, so a region equals the
same rectangle of the whole resampled image exactly, however the image is cut into regions.
Integer pixels are rounded back to their type; float stays float32.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from drunet.giant.georef import scale_georef
from drunet.giant.pixels import check_region
from drunet.giant.regions import GeoRef, RegionSource

RESAMPLE_MODES = ("linear", "nearest")


class ResampledSource:
    """``source`` seen at ``height`` × ``width`` pixels (see the module)."""

    def __init__(
        self, source: RegionSource, height: int, width: int, *, mode: str = "linear"
    ) -> None:
        if mode not in RESAMPLE_MODES:
            raise ValueError(f"mode must be one of {RESAMPLE_MODES}, got {mode!r}")
        if height < 1 or width < 1:
            raise ValueError(f"expected a positive size, got {height} × {width}")
        self.source = source
        self.mode = mode
        self.path: Path = source.path
        self.height, self.width = height, width
        self.channels = source.channels
        self.dtype = np.dtype(source.dtype)
        self.level = source.level
        self._sy, self._sx = source.height / height, source.width / width
        self.mpp = None if source.mpp is None else source.mpp * self._sx
        self.georef: GeoRef | None = scale_georef(source.georef, self._sy, self._sx)

    def read(self, top: int, left: int, height: int, width: int) -> np.ndarray:
        """Pixels ``[top:top+height, left:left+width]`` as ``(height, width, C)``."""
        check_region(self.path, (self.height, self.width), top, left, height, width)
        if height == 0 or width == 0:
            return np.zeros((height, width, self.channels), self.dtype)
        rows, row_weights = _taps(top, height, self._sy, self.source.height, self.mode)
        cols, col_weights = _taps(left, width, self._sx, self.source.width, self.mode)
        r0, c0 = int(rows.min()), int(cols.min())
        block = self.source.read(r0, c0, int(rows.max()) + 1 - r0, int(cols.max()) + 1 - c0)
        if self.mode == "nearest":
            return np.ascontiguousarray(block[rows[:, 0] - r0][:, cols[:, 0] - c0])
        values = block.astype(np.float64)
        down = _weighted(values, rows - r0, row_weights, axis=0)  # (height, w_src, C)
        out = _weighted(down, cols - c0, col_weights, axis=1)  # (height, width, C)
        if np.issubdtype(self.dtype, np.integer):
            info = np.iinfo(self.dtype)
            return np.clip(np.rint(out), info.min, info.max).astype(self.dtype)
        return out.astype(self.dtype)

    def close(self) -> None:
        self.source.close()


def resample(
    source: RegionSource,
    *,
    mpp: float | None = None,
    height: int | None = None,
    width: int | None = None,
    mode: str = "linear",
) -> RegionSource:
    """``source`` at ``mpp`` microns per pixel (its own mpp must be known) or at ``height`` ×
    ``width``; ``source`` itself when that is its own size."""
    if mpp is not None:
        if source.mpp is None:
            raise ValueError(f"{source.path} has no known resolution to resample from")
        factor = source.mpp / mpp
        height, width = max(1, round(source.height * factor)), max(1, round(source.width * factor))
    if height is None or width is None:
        raise ValueError("give mpp, or height and width")
    if (height, width) == (source.height, source.width):
        return source
    return ResampledSource(source, height, width, mode=mode)


def _taps(
    start: int, count: int, scale: float, size: int, mode: str
) -> tuple[np.ndarray, np.ndarray]:
    """Source indices ``(count, K)`` and weights ``(count, K)`` of output pixels
    ``start … start + count - 1`` along one axis (``scale`` source pixels per output pixel)."""
    centres = (np.arange(start, start + count, dtype=np.float64) + 0.5) * scale
    if mode == "nearest":
        index = np.clip(np.floor(centres), 0, size - 1).astype(np.int64)
        return index[:, None], np.ones((count, 1))
    support = max(1.0, scale)
    taps = math.ceil(2 * support) + 1
    first = np.floor(centres - support).astype(np.int64)
    index = first[:, None] + np.arange(taps)  # (count, K)
    weights = np.maximum(0.0, 1.0 - np.abs((index + 0.5 - centres[:, None]) / support))
    weights[(index < 0) | (index >= size)] = 0.0  # outside the image: left out, renormalised
    total = np.zeros(count)
    for k in range(taps):  # summed in a fixed order: the same bits whatever ``start`` and ``count``
        total = total + weights[:, k]
    weights /= total[:, None]
    return np.clip(index, 0, size - 1), weights


def _weighted(values: np.ndarray, index: np.ndarray, weights: np.ndarray, axis: int) -> np.ndarray:
    """Σ_k weights[:, k] · values[index[:, k]] along ``axis``, the terms added in order k."""
    shape = [1, 1, 1]
    shape[axis] = -1
    total = np.zeros(1)
    for k in range(index.shape[1]):
        total = total + np.take(values, index[:, k], axis=axis) * weights[:, k].reshape(shape)
    return total
