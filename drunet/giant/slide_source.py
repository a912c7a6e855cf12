"""Slides that are not TIFF files (MRXS, VMS, VMU, Sakura, DICOM), through OpenSlide.

TIFF-based slides (SVS, NDPI, SCN, …) are read by :mod:`drunet.giant.tiff_source`, which needs
no native library; this reader uses ``openslide-python`` with the ``openslide-bin`` wheel. Its
regions are RGB ``uint8``; the parts of a slide that were never scanned (transparent in
OpenSlide) are white, like the glass around the tissue.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from drunet.errors import DataError
from drunet.giant.levels import Level, choose_level
from drunet.giant.optional import require
from drunet.giant.pixels import check_region
from drunet.giant.regions import GeoRef

SLIDE_SUFFIXES = (".mrxs", ".vms", ".vmu", ".svslide", ".dcm")


class OpenSlideSource:
    """One level of a slide OpenSlide reads, as a :class:`~drunet.giant.regions.RegionSource`."""

    def __init__(self, path: str | Path, *, level: int | None = None, mpp: float | None = None):
        openslide = require("openslide", f"reading the slide {path}")
        self.path = Path(path)
        try:
            self._slide = openslide.OpenSlide(str(self.path))
        except Exception as err:  # OpenSlideError, OpenSlideUnsupportedFormatError
            raise DataError(
                f"cannot read slide {self.path}: OpenSlide could not open it ({err}); check "
                "that the file (and, for MRXS, its folder of data files) is complete"
            ) from None
        try:
            base = float(self._slide.properties.get(openslide.PROPERTY_NAME_MPP_X, 0) or 0)
        except ValueError:
            base = 0.0
        self.levels = [
            Level(h, w, base * factor if base > 0 else None)
            for (w, h), factor in zip(
                self._slide.level_dimensions, self._slide.level_downsamples, strict=True
            )
        ]
        self.level = choose_level(self.levels, self.path, level=level, mpp=mpp)
        self.height, self.width = self.levels[self.level].height, self.levels[self.level].width
        self._downsample = float(self._slide.level_downsamples[self.level])
        self.channels = 3
        self.dtype = np.dtype(np.uint8)
        self.mpp = self.levels[self.level].mpp
        self.georef: GeoRef | None = None

    def read(self, top: int, left: int, height: int, width: int) -> np.ndarray:
        """Pixels ``[top:top+height, left:left+width]`` as ``(height, width, 3)`` RGB."""
        check_region(self.path, (self.height, self.width), top, left, height, width)
        if height == 0 or width == 0:
            return np.zeros((height, width, 3), np.uint8)
        origin = (round(left * self._downsample), round(top * self._downsample))  # level 0
        rgba = np.asarray(self._slide.read_region(origin, self.level, (width, height)))
        return on_white(rgba)

    def close(self) -> None:
        self._slide.close()


def on_white(rgba: np.ndarray) -> np.ndarray:
    """``(h, w, 4)`` RGBA (not premultiplied) → RGB over a white background."""
    rgb, alpha = rgba[:, :, :3], rgba[:, :, 3:]
    if alpha.min(initial=255) == 255:
        return np.ascontiguousarray(rgb)
    a = alpha.astype(np.uint32)
    blended = (rgb.astype(np.uint32) * a + 255 * (255 - a) + 127) // 255
    return blended.astype(np.uint8)
