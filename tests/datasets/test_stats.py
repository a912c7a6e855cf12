"""``inspect_pairs`` against statistics computed by hand on tiny datasets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drunet.datasets import inspect_pairs
from drunet.errors import DataError


def test_gray_dataset_statistics_by_hand(write_pair):
    # Pixels in [0, 1]: image a → 0, 1, 1, 0; image b → 0.2, 0.4 (51 and 102 of 255).
    a = write_pair("a", np.array([[0, 255], [255, 0]], np.uint8), np.array([[0, 1], [1, 0]]))
    b = write_pair("b", np.array([[51, 102]], np.uint8), np.array([[0, 2]]))
    info = inspect_pairs([a, b])
    # mean = 2.6 / 6 = 13/30; E[x²] = 2.2 / 6 = 11/30; var = 11/30 - (13/30)² = 161/900.
    assert info.in_channels == 1
    assert info.num_classes == 3
    assert info.mean == pytest.approx([13 / 30], abs=1e-6)
    assert info.std == pytest.approx([math.sqrt(161) / 30], abs=1e-6)
    assert info.class_frequencies == pytest.approx([3 / 6, 2 / 6, 1 / 6])
    assert info.sizes == [(2, 2), (1, 2)]
    assert info.num_images == 2


def test_rgb_statistics_per_channel_and_std_floor(write_pair):
    image = np.zeros((2, 2, 3), np.uint8)
    image[..., 0] = 255  # constant channel: std would be 0
    image[..., 2] = [[0, 255], [0, 255]]
    info = inspect_pairs([write_pair("a", image, np.zeros((2, 2), np.uint8))])
    assert info.in_channels == 3
    assert info.mean == pytest.approx([1.0, 0.0, 0.5])
    assert info.std == pytest.approx([1e-6, 1e-6, 0.5])
    assert info.std[0] > 0


def test_sixteen_bit_images_are_scaled_to_unit_range(write_pair):
    image = np.array([[0, 65535]], np.uint16)
    info = inspect_pairs([write_pair("a", image, np.array([[0, 1]]))])
    assert info.mean == pytest.approx([0.5])
    assert info.std == pytest.approx([0.5])


def test_all_background_still_has_two_classes(write_pair):
    info = inspect_pairs([write_pair("a", np.zeros((3, 3), np.uint8), np.zeros((3, 3), np.uint8))])
    assert info.num_classes == 2
    assert info.class_frequencies == [1.0, 0.0]


def test_missing_class_indices_are_warned_about(write_pair, caplog):
    write = write_pair("a", np.zeros((1, 3), np.uint8), np.array([[0, 1, 5]]))
    info = inspect_pairs([write])
    assert info.num_classes == 6
    assert "classes 2-4 never occur" in caplog.text


def test_inconsistent_channels_name_the_odd_file(write_pair):
    gray = write_pair("a", np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8))
    rgb = write_pair("b_rgb", np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2), np.uint8))
    with pytest.raises(DataError, match=r"b_rgb\.png has 3 channel\(s\).*a\.png has 1"):
        inspect_pairs([gray, rgb])


def test_size_mismatch_is_found(write_pair):
    pair = write_pair("a", np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8))
    with pytest.raises(DataError, match="same size"):
        inspect_pairs([pair])
