"""Tiled, pyramidal and striped TIFF / BigTIFF / OME-TIFF / SVS / NDPI / GeoTIFF, lazily.

tifffile finds the pyramid (OME SubIFDs, SVS and NDPI levels, reduced pages); a region is read
through tifffile's zarr store, which decodes only the tiles (or strips) the region touches. An
uncompressed image stored in one piece is memory-mapped instead. The resolution comes from the
OME metadata (``PhysicalSizeX``), the Aperio description (``MPP``) or the resolution tags, in
that order; the GeoTIFF tags from the first page.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from drunet.errors import DataError
from drunet.giant.georef import read_georef, scale_georef
from drunet.giant.levels import Level, choose_level, ome_mpp, resolution_mpp, scaled_mpps
from drunet.giant.optional import missing_codec, require
from drunet.giant.pixels import (
    channel_axes,
    check_region,
    image_dtype,
    image_layout,
    region_index,
)
from drunet.giant.regions import GeoRef

log = logging.getLogger(__name__)

_RGB = 2  # TIFF PhotometricInterpretation


class TiffSource:
    """One level of a TIFF file as a :class:`~drunet.giant.regions.RegionSource`."""

    def __init__(self, path: str | Path, *, level: int | None = None, mpp: float | None = None):
        import tifffile

        self.path = Path(path)
        try:
            self._tif = tifffile.TiffFile(self.path)
            series = self._tif.series[0]
            pyramid = list(series.levels)
        except Exception as err:
            raise DataError(
                f"cannot read image {self.path}: this TIFF file could not be parsed ({err}); "
                "check that it is a complete TIFF file"
            ) from None
        try:
            sizes = [_size(s.shape, s.axes) for s in pyramid]
            self.levels: list[Level] = scaled_mpps(sizes, _base_mpp(self._tif, series))
            self.level = choose_level(self.levels, self.path, level=level, mpp=mpp)
            chosen = pyramid[self.level]
            self._axes: str = chosen.axes
            self.height, self.width = sizes[self.level]
            self.channels = channel_axes(tuple(chosen.shape), self._axes, self.path)
            self._drop_alpha = chosen.keyframe.photometric == _RGB and self.channels == 4
            self.channels -= int(self._drop_alpha)
            self.dtype = image_dtype(chosen.dtype, self.path)
            self.mpp = self.levels[self.level].mpp
            ratio_y, ratio_x = sizes[0][0] / self.height, sizes[0][1] / self.width
            self.georef: GeoRef | None = scale_georef(
                read_georef(self._tif.pages.first), ratio_y, ratio_x
            )
            _check_codec(tifffile, chosen.keyframe, self.path)
            self._array = self._open_level(tifffile, chosen)
        except BaseException:
            self._tif.close()
            raise
        if self._drop_alpha:
            log.warning("%s has an alpha channel; it is ignored (RGB is used)", self.path)

    def _open_level(self, tifffile: Any, chosen: Any) -> Any:
        """A memory map when the level is stored uncompressed in one piece, else a zarr array
        whose chunks are the file's tiles or strips."""
        if chosen.dataoffset is not None:
            try:
                return tifffile.memmap(self.path, series=0, level=self.level, mode="r")
            except ValueError:  # not mappable after all: read it through the zarr store
                pass
        zarr = require("zarr", f"reading the tiled or compressed TIFF {self.path}")
        store = self._tif.aszarr(series=0, level=self.level)
        return zarr.open_array(store, mode="r")

    def read(self, top: int, left: int, height: int, width: int) -> np.ndarray:
        """Pixels ``[top:top+height, left:left+width]`` as ``(height, width, C)``."""
        check_region(self.path, (self.height, self.width), top, left, height, width)
        block = np.asarray(self._array[region_index(self._axes, top, left, height, width)])
        return image_layout(block, self._axes, self.path, drop_alpha=self._drop_alpha)

    def close(self) -> None:
        self._tif.close()


def _check_codec(tifffile: Any, page: Any, path: Path) -> None:
    """Refuse at once a compression tifffile cannot decode (JPEG, LZW, JPEG 2000 … without
    imagecodecs), rather than on the first region."""
    try:
        tifffile.TIFF.DECOMPRESSORS[int(page.compression)]
    except KeyError:
        raise missing_codec(path, tifffile.COMPRESSION(page.compression).name) from None


def _size(shape: tuple[int, ...], axes: str) -> tuple[int, int]:
    return int(shape[axes.index("Y")]), int(shape[axes.index("X")])


def _base_mpp(tif: Any, series: Any) -> float | None:
    """Microns per pixel of level 0: OME metadata, Aperio ``MPP``, then resolution tags."""
    if tif.is_ome and (mpp := ome_mpp(tif.ome_metadata)) is not None:
        return mpp
    if tif.is_svs:
        from tifffile.tifffile import svs_description_metadata

        try:
            mpp = float(svs_description_metadata(tif.pages.first.description)["MPP"])
        except (KeyError, ValueError, TypeError):
            mpp = 0.0
        if mpp > 0:
            return mpp
    return resolution_mpp(series.keyframe)
