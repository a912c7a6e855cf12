"""The contract of streamed images: a region source in, bands of rows out.

A :class:`RegionSource` is one resolution level of a (possibly giant, possibly pyramidal) image,
opened lazily: :meth:`RegionSource.read` decodes only the tiles a rectangle touches. Its pixels
are laid out as :func:`drunet.datasets.read_image` lays out a whole image — ``(h, w, C)`` in the
file's dtype, grayscale ``C = 1`` — so ``source.read(0, 0, H, W)`` equals ``read_image(path)``
on a file that fits in memory, and the streamed prediction can equal the in-memory one.

Writers take the finished mask (or probabilities) as full-width bands of rows in order, top to
bottom (``bands`` below), so nothing holds a whole mask.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class GeoRef:
    """A GeoTIFF's georeferencing, copied from an input to the masks predicted from it.

    ``tags`` are the raw GeoTIFF tags by number (33550 ModelPixelScale, 33922 ModelTiepoint,
    34264 ModelTransformation, 34735 GeoKeyDirectory, 34736 GeoDoubleParams, 34737
    GeoAsciiParams, 42112 GDAL_METADATA, 42113 GDAL_NODATA) with their values as read, so a
    writer copies them unchanged and GIS tools overlay the mask on the image.
    """

    tags: dict[int, object] = field(default_factory=dict)


@runtime_checkable
class RegionSource(Protocol):
    """One level of an image, read rectangle by rectangle."""

    path: Path
    height: int
    width: int
    channels: int
    dtype: np.dtype
    level: int  # pyramid level (0 = full resolution)
    mpp: float | None  # microns per pixel at this level, when the file says
    georef: GeoRef | None  # GeoTIFF georeferencing of this level, when the file has it

    def read(self, top: int, left: int, height: int, width: int) -> np.ndarray:
        """Pixels ``[top:top+height, left:left+width]`` as ``(height, width, C)``; the rectangle
        must lie inside the image."""
        ...

    def close(self) -> None: ...


class ArraySource:
    """A :class:`RegionSource` over an array in memory (tests, and images that fit)."""

    def __init__(
        self,
        array: np.ndarray,
        path: str | Path = "<array>",
        *,
        mpp: float | None = None,
        georef: GeoRef | None = None,
    ) -> None:
        if array.ndim == 2:
            array = array[..., None]
        if array.ndim != 3:
            raise ValueError(f"expected (H, W) or (H, W, C), got shape {array.shape}")
        self.array = array
        self.path = Path(path)
        self.height, self.width, self.channels = array.shape
        self.dtype = array.dtype
        self.level = 0
        self.mpp = mpp
        self.georef = georef

    def read(self, top: int, left: int, height: int, width: int) -> np.ndarray:
        if top < 0 or left < 0 or top + height > self.height or left + width > self.width:
            raise ValueError(
                f"region ({top}, {left}) + ({height}, {width}) outside the "
                f"{self.height} × {self.width} image {self.path}"
            )
        return self.array[top : top + height, left : left + width]

    def close(self) -> None:
        pass


Bands = Iterable[np.ndarray]  # full-width bands of rows, top to bottom, (h, W) or (h, W, C)
