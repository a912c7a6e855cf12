"""Resampled regions equal the whole resampled image, and known values."""

from __future__ import annotations

import numpy as np
import pytest

from drunet.giant.regions import ArraySource, GeoRef
from drunet.giant.resample import ResampledSource, resample
from tests.giant.conftest import ramp


@pytest.mark.parametrize(("height", "width"), [(37, 23), (101, 160), (50, 80)])
@pytest.mark.parametrize("mode", ["linear", "nearest"])
def test_regions_equal_the_whole(height, width, mode):
    image = ramp(50, 80, 3)
    resampled = ResampledSource(ArraySource(image), height, width, mode=mode)
    whole = resampled.read(0, 0, height, width)
    assert whole.shape == (height, width, 3) and whole.dtype == np.uint8
    for top in range(0, height, 16):
        for left in range(0, width, 24):
            h, w = min(16, height - top), min(24, width - left)
            assert np.array_equal(
                resampled.read(top, left, h, w), whole[top : top + h, left : left + w]
            )


def test_known_values():
    image = np.array([[0.0, 4.0], [8.0, 12.0]], np.float32)
    # Halving averages the 2 × 2 block; doubling interpolates with half-pixel centres.
    assert ResampledSource(ArraySource(image), 1, 1).read(0, 0, 1, 1)[0, 0, 0] == 6.0
    up = ResampledSource(ArraySource(image), 4, 4).read(0, 0, 4, 4)[:, :, 0]
    assert up[0].tolist() == [0.0, 1.0, 3.0, 4.0]  # edges clamp, 0.25 / 0.75 between
    assert up[:, 0].tolist() == [0.0, 2.0, 6.0, 8.0]
    mask = np.array([[0, 1], [2, 3]], np.uint8)
    assert ResampledSource(ArraySource(mask), 4, 4, mode="nearest").read(0, 0, 4, 4)[
        :, :, 0
    ].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]


def test_resample_to_an_mpp_scales_the_size_and_the_georef():
    georef = GeoRef({33550: (10.0, 10.0, 0.0), 33922: (0.0, 0.0, 0.0, 5.0, 6.0, 0.0)})
    source = ArraySource(ramp(100, 60), mpp=0.25, georef=georef)
    half = resample(source, mpp=0.5)
    assert (half.height, half.width, half.mpp) == (50, 30, 0.5)
    assert half.georef is not None and half.georef.tags[33550] == (20.0, 20.0, 0.0)
    assert resample(source, mpp=0.25) is source
    with pytest.raises(ValueError, match="no known resolution"):
        resample(ArraySource(ramp(4, 4)), mpp=1.0)
