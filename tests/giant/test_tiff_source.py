"""TIFF regions read lazily equal ``read_image`` on the same file; levels by number or mpp."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from drunet.datasets import read_image
from drunet.errors import DataError
from drunet.giant.sources import open_region_source
from drunet.giant.tiff_source import TiffSource
from tests.giant.conftest import ramp, write_pyramid, write_svs


@pytest.mark.parametrize(
    ("data", "options"),
    [
        (ramp(150, 170), {"tile": (64, 64), "compression": "zlib"}),  # tiled gray
        (ramp(150, 170, 3), {"tile": (32, 48), "photometric": "rgb"}),  # tiled RGB, raw
        (ramp(150, 170, 3), {"rowsperstrip": 16, "compression": "zlib", "photometric": "rgb"}),
        (ramp(150, 170, 4), {"tile": (64, 64), "photometric": "rgb", "extrasamples": [2]}),
        (ramp(150, 170, dtype=np.uint16), {"rowsperstrip": 7}),  # striped, uncompressed
        (
            ramp(150, 170, 2, np.uint16),
            {"tile": (64, 64), "photometric": "minisblack", "planarconfig": "contig"},
        ),
        (ramp(150, 170).astype(np.float64) / 7, {"tile": (64, 64)}),  # narrowed to float32
        (ramp(150, 170) > 100, {"tile": (64, 64)}),  # bilevel → 0/255
        (ramp(3, 150, 170), {"tile": (64, 64), "planarconfig": "separate"}),  # S, Y, X
    ],
)
def test_regions_equal_read_image(tmp_path, data, options):
    path = tmp_path / "image.tif"
    tifffile.imwrite(path, data, **options)
    whole = read_image(path)
    source = open_region_source(path)
    try:
        assert (source.height, source.width, source.channels) == whole.shape
        assert source.dtype == whole.dtype
        assert np.array_equal(source.read(0, 0, 150, 170), whole)
        assert source.read(0, 0, 150, 170).dtype == whole.dtype
        assert np.array_equal(source.read(37, 101, 50, 69), whole[37:87, 101:170])
        assert source.read(5, 5, 0, 3).shape == (0, 3, whole.shape[2])
    finally:
        source.close()


def test_a_corner_decodes_only_its_tile(tmp_path, monkeypatch):
    """A 64² corner of a 4096² image of 64² tiles decodes 1 of its 4096 tiles."""
    path = tmp_path / "big.tif"
    image = np.zeros((4096, 4096), np.uint8)
    image[:64, :64] = ramp(64, 64)
    tifffile.imwrite(path, image, tile=(64, 64), compression="zlib")
    decoded = []
    make_decoder = tifffile.TiffPage.decode.func  # a cached_property returning the decoder

    def counting_decoder(page):
        decode = make_decoder(page)

        def counted(data, index, **kwargs):
            decoded.append(index)
            return decode(data, index, **kwargs)

        return counted

    monkeypatch.setattr(tifffile.TiffPage, "decode", property(counting_decoder))
    source = open_region_source(path)
    assert np.array_equal(source.read(0, 0, 64, 64)[:, :, 0], ramp(64, 64))
    assert decoded == [0]
    decoded.clear()
    source.read(100, 4000, 30, 96)  # rows 100–129: tile rows 1 and 2; tile columns 62, 63
    assert sorted(decoded) == [64 + 62, 64 + 63, 128 + 62, 128 + 63]
    source.close()


def test_a_region_outside_the_image_is_refused(tmp_path):
    path = tmp_path / "image.tif"
    tifffile.imwrite(path, ramp(40, 50), tile=(16, 16))
    source = TiffSource(path)
    for region in [(-1, 0, 5, 5), (0, 0, 41, 5), (30, 45, 10, 6), (0, 0, 5, -1)]:
        with pytest.raises(ValueError, match="outside the 40 × 50 image"):
            source.read(*region)
    source.close()


def _levels():
    base = ramp(256, 320, 3)
    return [base, np.ascontiguousarray(base[::2, ::2]), np.ascontiguousarray(base[::4, ::4])]


def test_ome_pyramid_levels_by_number_and_mpp(tmp_path):
    levels = _levels()
    path = write_pyramid(
        tmp_path / "image.ome.tif",
        levels,
        ome=True,
        photometric="rgb",
        metadata={"PhysicalSizeX": 0.25, "PhysicalSizeXUnit": "µm"},
    )
    source = open_region_source(path)
    assert source.mpp == pytest.approx(0.25)
    assert np.array_equal(source.read(0, 0, 256, 320), read_image(path))
    source.close()
    for level, expected in enumerate(levels):
        source = open_region_source(path, level=level)
        assert (source.level, source.height, source.width) == (level, *expected.shape[:2])
        assert source.mpp == pytest.approx(0.25 * 2**level)
        assert np.array_equal(source.read(3, 5, 20, 30), expected[3:23, 5:35])
        source.close()
    # The coarsest level not coarser than asked: 0.6 → level 1 (0.5), 0.505 → level 1 within
    # the 1 % tolerance, 0.49 → level 0, 2.0 → level 2 (1.0), 0.1 (finer than all) → level 0.
    for mpp, level in [(0.6, 1), (0.505, 1), (0.49, 0), (2.0, 2), (1.0, 2), (0.1, 0)]:
        source = open_region_source(path, mpp=mpp)
        assert source.level == level, mpp
        source.close()


def test_level_choice_mistakes_are_data_errors(tmp_path):
    path = write_pyramid(tmp_path / "plain.tif", _levels(), photometric="rgb")
    with pytest.raises(DataError, match=r"has no level 3: it has 3 level\(s\) \(0: 320 × 256"):
        open_region_source(path, level=3)
    with pytest.raises(DataError, match="does not record its resolution.*--level N"):
        open_region_source(path, mpp=0.5)
    with pytest.raises(DataError, match="not both"):
        open_region_source(path, level=1, mpp=0.5)
    with pytest.raises(DataError, match="does not exist"):
        open_region_source(tmp_path / "missing.tif")


def test_resolution_tags_give_the_mpp(tmp_path):
    path = tmp_path / "image.tif"
    tifffile.imwrite(
        path, ramp(20, 20), resolution=(1e4 / 0.5, 1e4 / 0.5), resolutionunit="CENTIMETER"
    )
    source = open_region_source(path)
    assert source.mpp == pytest.approx(0.5)
    source.close()
    tifffile.imwrite(
        path, ramp(20, 20), resolution=(25400 / 2.0, 25400 / 2.0), resolutionunit="INCH"
    )
    source = open_region_source(path)
    assert source.mpp == pytest.approx(2.0)
    source.close()


def test_svs_levels_and_mpp(tmp_path):
    image = ramp(256, 320, 3)
    path = write_svs(tmp_path / "slide.svs", image, mpp=0.499)
    baseline = tifffile.imread(path, series=0, level=0)  # decoded by tifffile itself
    source = open_region_source(path)
    assert (source.height, source.width, source.channels, source.mpp) == (256, 320, 3, 0.499)
    assert np.array_equal(source.read(0, 0, 256, 320), baseline)  # JPEG: compare the decoded
    source.close()
    source = open_region_source(path, mpp=2.0)
    assert (source.level, source.height, source.width) == (1, 64, 80)
    assert source.mpp == pytest.approx(0.499 * 4)
    assert np.array_equal(source.read(0, 0, 64, 80), tifffile.imread(path, series=0, level=1))
    source.close()


def test_regions_read_from_several_threads_at_once(tmp_path):
    """The streamed prediction reads ahead in threads: one source serves them all."""
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "image.tif"
    image = ramp(300, 260, 3)
    tifffile.imwrite(path, image, tile=(32, 32), compression="zlib", photometric="rgb")
    regions = [(top, left, 50, 70) for top in range(0, 250, 40) for left in range(0, 190, 45)]
    source = open_region_source(path)
    with ThreadPoolExecutor(4) as pool:
        regions_read = list(pool.map(lambda r: source.read(*r), regions * 2))
    source.close()
    for (top, left, h, w), pixels in zip(regions * 2, regions_read, strict=True):
        assert np.array_equal(pixels, image[top : top + h, left : left + w])
