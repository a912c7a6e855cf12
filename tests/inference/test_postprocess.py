"""Probabilities → mask (threshold / argmax) and the clean-ups, on masks drawn by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from drunet.cleanup import fill_holes, keep_largest_component, remove_small_objects
from drunet.inference.postprocess import PostprocessOptions, postprocess, to_mask


def grid(text: str) -> np.ndarray:
    """A mask from rows of digits, e.g. '0110\\n0220'."""
    return np.array(
        [[int(c) for c in line.strip()] for line in text.strip().splitlines()], np.uint8
    )


# ---------------------------------------------------------------- to_mask


def test_binary_threshold_is_strictly_greater() -> None:
    p = torch.tensor([[[0.2, 0.5, 0.51, 0.9]]])  # (1, 1, 4): foreground probabilities
    np.testing.assert_array_equal(to_mask(p, 2), [[0, 0, 1, 1]])
    np.testing.assert_array_equal(to_mask(p, 2, threshold=0.3), [[0, 1, 1, 1]])
    np.testing.assert_array_equal(to_mask(p, 2, threshold=0.9), [[0, 0, 0, 0]])
    assert to_mask(p, 2).dtype == np.uint8


def test_multiclass_takes_the_most_probable_class() -> None:
    p = torch.tensor([[[0.5, 0.1]], [[0.3, 0.2]], [[0.2, 0.7]]])  # (3, 1, 2)
    np.testing.assert_array_equal(to_mask(p, 3), [[0, 2]])


def test_threshold_on_a_multiclass_model_is_refused() -> None:
    with pytest.raises(ValueError, match="binary models only.*3 classes"):
        to_mask(torch.rand(3, 2, 2), 3, threshold=0.7)


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"threshold": 1.0}, "threshold"), ({"min_size": -1}, "min_size")]
)
def test_bad_options_name_the_value(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PostprocessOptions(**kwargs)


# ---------------------------------------------------------------- clean-ups


def test_remove_small_objects_per_class_with_8_connectivity() -> None:
    mask = grid(
        """
        110002
        110000
        001000
        000022
        300022
        """
    )
    # Class 1: the 2×2 block and the diagonal pixel are one 8-connected object of 5 pixels.
    # Class 2: a single pixel (removed at min_size 2) and a 2×2 block; class 3: a single pixel.
    expected = grid(
        """
        110000
        110000
        001000
        000022
        000022
        """
    )
    np.testing.assert_array_equal(remove_small_objects(mask.copy(), 2), expected)
    np.testing.assert_array_equal(remove_small_objects(mask.copy(), 6), np.zeros_like(mask))


def test_fill_holes_fills_enclosed_background_only() -> None:
    mask = grid(
        """
        11111000
        10001000
        10201000
        11111010
        00000000
        """
    )
    # The background inside the ring becomes 1; the class-2 pixel stays; the notch at the border
    # and the background around the lone 1 are not enclosed.
    expected = grid(
        """
        11111000
        11111000
        11211000
        11111010
        00000000
        """
    )
    np.testing.assert_array_equal(fill_holes(mask.copy()), expected)


def test_a_diagonal_gap_does_not_open_a_hole() -> None:
    # 8-connected objects enclose 4-connected holes: the centre is enclosed despite the corners.
    mask = grid("010\n101\n010")
    np.testing.assert_array_equal(fill_holes(mask.copy()), grid("010\n111\n010"))


def test_keep_largest_component_per_class() -> None:
    mask = grid(
        """
        1100220
        1100000
        0001102
        2000000
        """
    )
    expected = grid(
        """
        1100220
        1100000
        0000000
        0000000
        """
    )
    np.testing.assert_array_equal(keep_largest_component(mask.copy()), expected)


def test_postprocess_order_and_no_change_by_default() -> None:
    mask = grid(
        """
        1110001
        1010000
        1110000
        """
    )
    assert postprocess(mask, PostprocessOptions()) is not mask
    np.testing.assert_array_equal(postprocess(mask, PostprocessOptions()), mask)
    # Small objects go first (the lone pixel), then the hole is filled: one 3×3 block.
    cleaned = postprocess(mask, PostprocessOptions(min_size=2, fill_holes=True))
    np.testing.assert_array_equal(cleaned, grid("1110000\n1110000\n1110000"))
    largest = postprocess(mask, PostprocessOptions(largest_component=True))
    np.testing.assert_array_equal(largest, grid("1110000\n1010000\n1110000"))
