"""Bands written as a tiled pyramidal BigTIFF read back exactly; GeoTIFF tags round-trip."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tifffile

from drunet.datasets import read_image
from drunet.giant.bands import Halver, pyramid_shapes
from drunet.giant.georef import read_georef, scale_georef
from drunet.giant.regions import GeoRef
from drunet.giant.sources import open_region_source
from drunet.giant.tiff_sink import write_tiled_tiff
from tests.giant.conftest import ramp


def _bands(array, heights):
    start = 0
    for height in heights:
        yield array[start : start + height]
        start += height


def test_mask_round_trip_and_nearest_pyramid(tmp_path):
    mask = (ramp(300, 330) % 5).astype(np.uint8)
    path = tmp_path / "mask.tif"
    write_tiled_tiff(
        path, _bands(mask, [1, 63, 100, 136]), height=300, width=330, dtype=np.uint8, tile=64
    )
    assert np.array_equal(read_image(path)[:, :, 0], mask)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        assert tif.is_bigtiff and page.is_tiled and (page.tilelength, page.tilewidth) == (64, 64)
        assert page.compression == tifffile.COMPRESSION.ADOBE_DEFLATE
        levels = tif.series[0].levels
        # 300 × 330 → 150 × 165 → 75 × 83 → 38 × 42 (fits one 64² tile)
        assert [level.shape for level in levels] == [(300, 330), (150, 165), (75, 83), (38, 42)]
        for index, level in enumerate(levels):
            step = 2**index
            assert np.array_equal(level.asarray(), mask[::step, ::step])
    assert [s for s in os.listdir(tmp_path)] == ["mask.tif"]  # no temporaries left


def test_probabilities_mean_pyramid_and_mpp(tmp_path):
    probs = (ramp(130, 90, 2, np.uint16).astype(np.float32) / 65535).astype(np.float32)
    path = tmp_path / "probs.tif"
    write_tiled_tiff(
        path,
        _bands(probs, [50, 80]),
        height=130,
        width=90,
        dtype=np.float32,
        channels=2,
        tile=64,
        reduce="mean",
        mpp=0.5,
    )
    assert np.array_equal(read_image(path), probs)
    source = open_region_source(path, level=1)
    assert (source.height, source.width, source.channels, source.mpp) == (65, 45, 2, 1.0)
    expected = probs.astype(np.float64).reshape(65, 2, 45, 2, 2).sum(axis=(1, 3)) / 4
    assert np.array_equal(source.read(0, 0, 65, 45), expected.astype(np.float32))
    source.close()


def test_halver_mean_rounds_integers_and_keeps_odd_edges():
    halver = Halver("mean")
    rows = np.array([[[1], [2], [9]], [[3], [5], [10]], [[7], [8], [200]]], np.uint8)  # 3 × 3
    first = halver.push(rows)
    # (1+2+3+5)/4 = 2.75 → 3; odd column (9+9+10+10)/4 = 9.5 → 10 (half up)
    assert first[:, :, 0].tolist() == [[3, 10]]
    # the odd last row is averaged with itself: (7+8+7+8)/4 = 7.5 → 8, 200
    assert halver.finish()[:, :, 0].tolist() == [[8, 200]]


def test_pyramid_shapes_halve_until_one_tile():
    assert pyramid_shapes(1000, 600, 256) == [(1000, 600), (500, 300), (250, 150)]
    assert pyramid_shapes(256, 256, 256) == [(256, 256)]


def test_short_or_misshapen_bands_leave_no_file(tmp_path):
    path = tmp_path / "mask.tif"
    with pytest.raises(ValueError, match="the bands hold 20 rows, the image 40"):
        write_tiled_tiff(path, [np.zeros((20, 30), np.uint8)], height=40, width=30, dtype=np.uint8)
    with pytest.raises(ValueError, match="more than the image's 20 rows"):
        write_tiled_tiff(path, [np.zeros((21, 30), np.uint8)], height=20, width=30, dtype=np.uint8)
    with pytest.raises(ValueError, match=r"expected bands of shape \(h, 30, 1\)"):
        write_tiled_tiff(path, [np.zeros((20, 31), np.uint8)], height=20, width=30, dtype=np.uint8)
    with pytest.raises(ValueError, match="multiple of 16"):
        write_tiled_tiff(path, [], height=20, width=30, dtype=np.uint8, tile=100)
    assert os.listdir(tmp_path) == []


GEO_TAGS = {
    33550: (10.0, 10.0, 0.0),  # ModelPixelScale: 10 m pixels
    33922: (0.0, 0.0, 0.0, 500000.0, 4649776.0, 0.0),  # ModelTiepoint
    34735: (1, 1, 0, 4, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32633, 3076, 0, 1, 9001),
    34737: "WGS 84 / UTM zone 33N|",
    42113: "0",
}


def test_geotiff_tags_round_trip_unchanged(tmp_path):
    image = tmp_path / "scene.tif"
    extratags = [
        (33550, "d", 3, GEO_TAGS[33550], True),
        (33922, "d", 6, GEO_TAGS[33922], True),
        (34735, "H", 20, GEO_TAGS[34735], True),
        (34737, "s", 0, GEO_TAGS[34737], True),
        (42113, "s", 0, GEO_TAGS[42113], True),
    ]
    tifffile.imwrite(image, ramp(70, 80, 3), tile=(32, 32), photometric="rgb", extratags=extratags)
    source = open_region_source(image)
    assert source.georef == GeoRef(GEO_TAGS)
    mask = np.zeros((70, 80), np.uint8)
    out = tmp_path / "mask.tif"
    write_tiled_tiff(
        out, [mask], height=70, width=80, dtype=np.uint8, tile=32, georef=source.georef
    )
    source.close()
    with tifffile.TiffFile(out) as tif:
        assert read_georef(tif.pages.first) == GeoRef(GEO_TAGS)
        assert tif.pages.first.geotiff_tags["ProjectedCSTypeGeoKey"] == 32633
    # a level of half the size: 20 m pixels, the tiepoint's corner unchanged
    half = scale_georef(GeoRef(GEO_TAGS), 2, 2)
    assert half is not None and half.tags[33550] == (20.0, 20.0, 0.0)
    assert half.tags[33922] == GEO_TAGS[33922]


@pytest.mark.parametrize("writer", ["tiff", "zarr"])
def test_memory_is_one_tile_row_not_the_image(tmp_path, writer):
    """An 8192 × 2048 mask (16 MB) written in 256-row bands: the traced peak stays within a few
    tile rows (0.5 MB each), far below the mask."""
    import tracemalloc

    from drunet.giant.zarr_sink import write_ome_zarr

    write = write_tiled_tiff if writer == "tiff" else write_ome_zarr

    def bands(height):
        for top in range(0, height, 256):
            band = np.full((256, 2048), top // 256 % 3, np.uint8)
            band[::7, ::5] = 1
            yield band

    write(tmp_path / "warm-up", bands(512), height=512, width=2048, dtype=np.uint8)
    tracemalloc.start()
    try:
        write(tmp_path / "mask", bands(8192), height=8192, width=2048, dtype=np.uint8)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4e6, f"{peak / 1e6:.1f} MB"


def test_openslide_opens_the_mask(tmp_path):
    """OpenSlide-based viewers read the mask's full resolution (a generic tiled TIFF to them)."""
    import openslide

    mask = (ramp(200, 260) % 3).astype(np.uint8)
    path = tmp_path / "mask.tif"
    write_tiled_tiff(path, [mask], height=200, width=260, dtype=np.uint8, tile=64)
    slide = openslide.OpenSlide(str(path))
    assert slide.level_dimensions[0] == (260, 200)
    rgba = np.asarray(slide.read_region((0, 0), 0, (260, 200)))
    slide.close()
    assert np.array_equal(rgba[:, :, 0], mask) and np.array_equal(rgba[:, :, 2], mask)
