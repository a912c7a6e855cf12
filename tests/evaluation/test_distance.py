"""HD95: hand-computed distances, the empty rule, and scikit-image's Hausdorff distance."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import hausdorff_distance

from drunet.evaluation.distance import boundary, hausdorff, hd95_per_class


def square(top: int, left: int, side: int, shape: tuple[int, int] = (40, 40)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[top : top + side, left : left + side] = True
    return mask


def test_boundary_of_a_square_is_its_outline() -> None:
    edge = boundary(square(1, 1, 4, (6, 6)))
    expected = square(1, 1, 4, (6, 6)) & ~square(2, 2, 2, (6, 6))
    np.testing.assert_array_equal(edge, expected)
    assert boundary(np.ones((3, 3), bool)).sum() == 8  # the image border counts as outside


def test_identical_masks_are_zero_apart() -> None:
    assert hausdorff(square(5, 5, 10), square(5, 5, 10)) == 0.0


def test_single_pixels_are_their_euclidean_distance_apart() -> None:
    a, b = np.zeros((20, 20), bool), np.zeros((20, 20), bool)
    a[2, 3], b[5, 7] = True, True
    assert hausdorff(a, b) == 5.0  # 3-4-5


def test_a_shifted_square_is_the_shift_apart() -> None:
    # Most outline pixels of one square are 3 from the other's (the sides parallel to the
    # shift), the rest closer: the 95th percentile is the shift.
    assert hausdorff(square(10, 10, 20), square(10, 13, 20)) == pytest.approx(3.0)


def test_one_far_outlier_pixel_moves_hausdorff_but_not_hd95() -> None:
    truth = square(5, 5, 20, (60, 60))
    prediction = truth.copy()
    prediction[55, 55] = True  # 1 of 77 outline pixels, 30·√2 from the square's corner
    assert hausdorff(prediction, truth) == 0.0  # 95th percentile ignores 1.3 % of the pixels
    assert hausdorff(prediction, truth, percentile=100) == pytest.approx(math.hypot(31, 31))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_percentile_100_equals_scikit_image_on_the_outlines(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.random((30, 40)) > 0.7
    b = rng.random((30, 40)) > 0.6
    expected = hausdorff_distance(boundary(a), boundary(b))
    assert hausdorff(a, b, percentile=100) == pytest.approx(expected)


def test_empty_rule() -> None:
    empty = np.zeros((10, 10), bool)
    assert hausdorff(empty, empty) == 0.0
    assert math.isnan(hausdorff(square(1, 1, 3, (10, 10)), empty))
    assert math.isnan(hausdorff(empty, square(1, 1, 3, (10, 10))))


def test_per_class_with_an_ignored_region() -> None:
    reference = np.zeros((20, 20), np.int64)
    reference[2:6, 2:6] = 1
    reference[10:14, 10:14] = 255  # ignored
    prediction = np.zeros((20, 20), np.uint8)
    prediction[2:6, 3:7] = 1  # shifted by one
    prediction[10:14, 10:14] = 1  # inside the ignored region: does not count
    values = hd95_per_class(prediction, reference, 2, ignore_index=255)
    assert values[1] == pytest.approx(1.0)
    assert hd95_per_class(prediction, reference, 3, 255)[2] == 0.0  # class 2: empty in both
