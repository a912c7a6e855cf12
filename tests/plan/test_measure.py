"""Structure widths, objects and bounded samples, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from drunet.plan.measure import (
    ClassSamples,
    centre_crop,
    component_areas,
    measure_mask,
    ridge_widths,
    strided,
)
from tests.plan.conftest import discs_mask, lines_mask


@pytest.mark.parametrize(("width", "expected"), [(1, 2.0), (2, 2.0), (3, 4.0), (4, 4.0), (6, 6.0)])
def test_a_line_reads_its_width_even_widths_exactly(width: int, expected: float) -> None:
    widths = ridge_widths(lines_mask(64, width).astype(bool))
    assert widths.size > 0
    assert np.all(widths == expected)  # odd widths read one more (module docstring)


def test_a_disc_of_radius_10_reads_its_diameter() -> None:
    # cv2's filled disc of radius 10 leaves out (10, 1): its centre, the only ridge pixel, is
    # √101 px from the nearest pixel centre outside it.
    widths = ridge_widths(discs_mask(64, 10).astype(bool))
    assert widths == pytest.approx([2 * np.sqrt(101)] * 2)  # one ridge pixel per disc: 20.1


def test_no_width_without_a_boundary() -> None:
    assert ridge_widths(np.zeros((8, 8), bool)).size == 0
    assert ridge_widths(np.ones((8, 8), bool)).size == 0


def test_components_are_eight_connected() -> None:
    region = np.zeros((10, 10), bool)
    region[0:3, 0:3] = True  # 9 px
    region[3, 3] = True  # touches the square's corner: the same object
    region[7:9, 7:9] = True  # 4 px
    assert sorted(component_areas(region).tolist()) == [4, 10]
    assert component_areas(np.zeros((4, 4), bool)).size == 0


def test_measure_mask_counts_classes_and_leaves_out_ignored_pixels() -> None:
    mask = np.zeros((10, 10), np.int64)
    mask[0:2] = 1  # 20 px, one object
    mask[5, 5] = 2  # 1 px
    mask[9] = 255  # ignored: 10 px
    classes: list[ClassSamples] = []
    counts = measure_mask(mask, 2, 255, classes)
    assert counts.tolist() == [69, 20, 1]
    assert [c.pixels for c in classes] == [69, 20, 1]
    assert classes[1].components == [1] and classes[1].areas[0].tolist() == [20]
    assert classes[0].components == []  # background objects are not counted


def test_bounds() -> None:
    assert strided(np.arange(10), 4).tolist() == [0, 3, 6, 9]
    assert strided(np.arange(3), 4).tolist() == [0, 1, 2]
    image = np.arange(36).reshape(6, 6)
    assert centre_crop(image, 2).tolist() == [[14, 15], [20, 21]]
    assert centre_crop(image, 10).shape == (6, 6)
