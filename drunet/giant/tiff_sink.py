"""A giant mask (or probabilities) written as a tiled, compressed, pyramidal BigTIFF, band by
band.

The file is an OME-TIFF whose reduced levels are SubIFDs of the full-resolution page — the
layout QuPath (Bio-Formats), napari and tifffile read as a pyramid; OpenSlide and GDAL open its
full resolution. The GeoTIFF tags of the input go to the full-resolution page unchanged, so GIS
tools overlay the mask on the image. Level 0 is written as its tile rows arrive; the smaller
levels, which TIFF stores after it, wait in compressed temporary files (an eighth of the raw
level-0 size before compression, at most). The file is written under a temporary name and
renamed when complete (``drunet.atomic.atomic_output``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from drunet.atomic import atomic_output
from drunet.giant.bands import REDUCTIONS, Pyramid, RowSpool, pyramid_shapes, rebanded, tiles_of
from drunet.giant.georef import georef_extratags
from drunet.giant.regions import Bands, GeoRef

WRITABLE_DTYPES = (np.uint8, np.uint16, np.int8, np.int16, np.int32, np.float32)


def check_layout(
    height: int, width: int, channels: int, dtype: np.dtype, tile: int, reduce: str
) -> np.dtype:
    """Refuse settings no writer can honour (a ``ValueError`` naming the value); the dtype."""
    dtype = np.dtype(dtype)
    if height < 1 or width < 1 or channels < 1:
        raise ValueError(
            f"expected a positive size and channels, got {height} × {width} × {channels}"
        )
    if dtype not in WRITABLE_DTYPES:
        raise ValueError(f"cannot write pixels of type {dtype}; use one of {WRITABLE_DTYPES}")
    if tile < 16 or tile % 16:
        raise ValueError(f"the tile size must be a positive multiple of 16 (TIFF), got {tile}")
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
    return dtype


def write_tiled_tiff(
    path: str | Path,
    bands: Bands,
    *,
    height: int,
    width: int,
    dtype: np.dtype | type,
    channels: int = 1,
    tile: int = 256,
    compression: str = "zlib",
    pyramid: bool = True,
    reduce: str = "nearest",
    georef: GeoRef | None = None,
    mpp: float | None = None,
) -> None:
    """Write full-width ``bands`` ``(h, width[, channels])``, top to bottom, as a tiled BigTIFF.

    ``pyramid``: reduced levels halving the size until a level fits in one tile, made by
    ``reduce`` (``"nearest"`` for masks, ``"mean"`` for probabilities). ``georef``: GeoTIFF tags
    for the full-resolution page; ``mpp``: microns per pixel, recorded in the OME metadata and
    the resolution tags. Memory: one tile row per level. Bands that do not add up to ``height``
    rows of the right shape raise ``ValueError`` and leave no file behind.
    """
    import tifffile

    path = Path(path)
    dtype = check_layout(height, width, channels, np.dtype(dtype), tile, reduce)
    shapes = pyramid_shapes(height, width, tile) if pyramid else [(height, width)]
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_output(path))
        spools = [RowSpool(path.parent, w, channels, dtype) for _, w in shapes[1:]]
        for spool in spools:
            stack.callback(spool.close)
        writer = stack.enter_context(tifffile.TiffWriter(tmp, bigtiff=True, ome=True))
        options = _page_options(channels, dtype, tile, compression, mpp)
        blocks = rebanded(bands, tile, height=height, width=width, channels=channels, dtype=dtype)
        writer.write(
            _level0_tiles(blocks, tile, Pyramid(len(shapes), reduce), spools, height),
            shape=_page_shape(height, width, channels),
            subifds=len(shapes) - 1,
            extratags=georef_extratags(georef),
            metadata=_ome_metadata(channels, mpp),
            buffersize=_row_bytes(tile, width, channels, dtype),
            **options,
        )
        for _ in blocks:  # tifffile stops at the last tile: rows beyond the height are an error
            pass
        for (h, w), spool in zip(shapes[1:], spools, strict=True):
            level = rebanded(spool.bands(), tile, height=h, width=w, channels=channels, dtype=dtype)
            writer.write(
                (_squeezed(t, channels) for b in level for t in tiles_of(b, tile)),
                shape=_page_shape(h, w, channels),
                subfiletype=1,
                metadata=None,
                buffersize=_row_bytes(tile, w, channels, dtype),
                **options,
            )


def _level0_tiles(
    blocks: Iterator[np.ndarray],
    tile: int,
    pyramid: Pyramid,
    spools: list[RowSpool],
    height: int,
) -> Iterator[np.ndarray]:
    """Level 0's tiles in file order, each tile row also halved into the spooled levels.

    The pyramid is finished with the last tile row, before its tiles are yielded: tifffile
    stops asking once it has every tile, so code after the loop would never run.
    """
    done = 0
    for block in blocks:
        done += len(block)
        finished = pyramid.push(block) + (pyramid.finish() if done == height else [])
        for level, rows in finished:
            spools[level - 1].append(rows)
        channels = block.shape[2]
        for part in tiles_of(block, tile):
            yield _squeezed(part, channels)


def _row_bytes(tile: int, width: int, channels: int, dtype: np.dtype) -> int:
    """One tile row: what tifffile may compress at once (its default, 512 MB of tiles held
    for its compression threads, would let the memory grow with the image)."""
    return tile * width * channels * dtype.itemsize


def _squeezed(tile: np.ndarray, channels: int) -> np.ndarray:
    return tile[:, :, 0] if channels == 1 else tile


def _page_shape(height: int, width: int, channels: int) -> tuple[int, ...]:
    return (height, width) if channels == 1 else (height, width, channels)


def _page_options(
    channels: int, dtype: np.dtype, tile: int, compression: str, mpp: float | None
) -> dict[str, Any]:
    options: dict[str, Any] = {
        "dtype": dtype,
        "tile": (tile, tile),
        "compression": compression,
        "photometric": "minisblack",
    }
    if channels > 1:
        options["planarconfig"] = "contig"
    if mpp is not None:
        options.update(resolution=(1e4 / mpp, 1e4 / mpp), resolutionunit="CENTIMETER")
    return options


def _ome_metadata(channels: int, mpp: float | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"axes": "YX" if channels == 1 else "YXS"}
    if mpp is not None:
        metadata.update(
            PhysicalSizeX=mpp, PhysicalSizeXUnit="µm", PhysicalSizeY=mpp, PhysicalSizeYUnit="µm"
        )
    return metadata
