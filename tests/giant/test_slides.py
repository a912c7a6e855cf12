"""Slides: the OpenSlide reader on a generated SVS equals tifffile's; PNG served whole."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import tifffile

from drunet.datasets import read_image
from drunet.errors import DataError
from drunet.giant.regions import ArraySource
from drunet.giant.slide_source import OpenSlideSource, on_white
from drunet.giant.sources import open_region_source
from tests.giant.conftest import ramp, write_svs


def test_openslide_reads_the_svs_as_tifffile_does(tmp_path):
    path = write_svs(tmp_path / "slide.svs", ramp(256, 320, 3), mpp=0.5)
    slide = OpenSlideSource(path)
    assert (slide.height, slide.width, slide.channels, slide.mpp) == (256, 320, 3, 0.5)
    assert [(lv.height, lv.width, lv.mpp) for lv in slide.levels] == [
        (256, 320, 0.5),
        (64, 80, 2.0),
    ]
    baseline = tifffile.imread(path, series=0, level=0)
    assert np.array_equal(slide.read(0, 0, 256, 320), baseline)
    assert np.array_equal(slide.read(70, 130, 40, 50), baseline[70:110, 130:180])
    slide.close()
    small = OpenSlideSource(path, mpp=2.0)
    assert small.level == 1
    reduced = tifffile.imread(path, series=0, level=1)
    assert np.array_equal(small.read(10, 20, 30, 40), reduced[10:40, 20:60])
    small.close()


def test_unscanned_areas_are_white():
    rgba = np.array([[[10, 20, 30, 255], [0, 0, 0, 0], [100, 100, 100, 128]]], np.uint8)
    # opaque unchanged; transparent → white; half: 100·128/255 + 127 = 177.2 → 177
    assert on_white(rgba).tolist() == [[[10, 20, 30], [255, 255, 255], [177, 177, 177]]]


def test_an_unreadable_slide_is_a_data_error(tmp_path):
    path = tmp_path / "broken.mrxs"
    path.write_bytes(b"not a slide")
    with pytest.raises(DataError, match="OpenSlide could not open it"):
        open_region_source(path)


def test_png_is_served_whole(tmp_path):
    path = tmp_path / "small.png"
    image = ramp(30, 40, 3)
    cv2.imwrite(str(path), image[:, :, ::-1])
    source = open_region_source(path)
    assert isinstance(source, ArraySource)
    assert np.array_equal(source.read(0, 0, 30, 40), read_image(path))
    with pytest.raises(DataError, match="has no level 1"):
        open_region_source(path, level=1)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="not a TIFF, OME-Zarr folder, slide"):
        open_region_source(tmp_path / "notes.txt")
