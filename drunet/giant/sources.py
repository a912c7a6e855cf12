"""``open_region_source``: any giant image file → a lazy :class:`RegionSource` of one level.

Which reader opens a path: a zarr folder → OME-Zarr; a TIFF file (tiled, striped, pyramidal,
OME-TIFF, BigTIFF, GeoTIFF, and TIFF-based slides: SVS, NDPI, SCN) → tifffile; MRXS and the
other non-TIFF slide formats → OpenSlide. A PNG, JPEG or BMP cannot be read in pieces: it is
read whole (within drunet's pixel limit) and served from memory.
"""

from __future__ import annotations

from pathlib import Path

from drunet.datasets.io import read_image
from drunet.errors import DataError
from drunet.giant.levels import Level, choose_level
from drunet.giant.regions import ArraySource, RegionSource
from drunet.giant.slide_source import SLIDE_SUFFIXES, OpenSlideSource
from drunet.giant.tiff_source import TiffSource
from drunet.giant.zarr_source import OmeZarrSource, is_zarr

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF
_WHOLE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"BM")  # PNG, JPEG, BMP


def open_region_source(
    path: str | Path, *, level: int | None = None, mpp: float | None = None
) -> RegionSource:
    """Open one level of ``path`` lazily: level ``level``, or the level ``mpp`` (microns per
    pixel) picks (:mod:`drunet.giant.levels` states the rule), else level 0.

    ``read(top, left, h, w)`` then decodes only the tiles that rectangle touches and returns
    ``(h, w, C)`` pixels laid out as ``read_image`` lays out the whole file. Close the source
    when done. Errors are ``DataError`` naming the file; a missing optional package is a
    ``DrunetError`` naming ``pip install "drunet[wsi]"``.
    """
    path = Path(path)
    if path.is_dir():
        if is_zarr(path):
            return OmeZarrSource(path, level=level, mpp=mpp)
        raise DataError(
            f"cannot read image {path}: it is a folder but not an OME-Zarr image (no "
            ".zattrs, .zgroup or zarr.json); give an image file or an OME-Zarr folder"
        )
    if not path.is_file():
        raise DataError(f"cannot read image {path}: the file does not exist; check the path")
    if path.suffix.lower() in SLIDE_SUFFIXES:
        return OpenSlideSource(path, level=level, mpp=mpp)
    with path.open("rb") as handle:
        head = handle.read(8)
    if head[:4] in _TIFF_MAGIC:
        return TiffSource(path, level=level, mpp=mpp)
    if head.startswith(_WHOLE_MAGIC):
        array = read_image(path)
        choose_level([Level(array.shape[0], array.shape[1], None)], path, level=level, mpp=mpp)
        return ArraySource(array, path)
    raise DataError(
        f"cannot read image {path}: it is not a TIFF, OME-Zarr folder, slide "
        f"({', '.join(SLIDE_SUFFIXES)}) or PNG/JPEG/BMP file; convert it to a tiled TIFF"
    )
