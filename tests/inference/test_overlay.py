"""Palette, colourised masks, overlays and display stretching, checked pixel by pixel."""

from __future__ import annotations

import numpy as np
import pytest

from drunet.inference.overlay import colorize, overlay, palette, to_display

DOCUMENTED = [
    (0, 0, 0),  # background
    (230, 159, 0),  # Okabe–Ito orange
    (86, 180, 233),  # sky blue
    (0, 158, 115),  # bluish green
    (240, 228, 66),  # yellow
    (0, 114, 178),  # blue
    (213, 94, 0),  # vermillion
    (204, 121, 167),  # reddish purple
    (255, 255, 255),
]


def test_palette_starts_with_the_documented_colours() -> None:
    colours = palette(9)
    assert colours.dtype == np.uint8 and colours.shape == (9, 3)
    assert [tuple(int(v) for v in row) for row in colours] == DOCUMENTED
    assert [tuple(row) for row in palette(2)] == DOCUMENTED[:2]


def test_palette_of_twenty_classes_is_distinct_and_extends_the_base() -> None:
    colours = palette(20)
    assert colours.shape == (20, 3)
    assert len({tuple(row) for row in colours}) == 20
    np.testing.assert_array_equal(colours[:9], palette(9))
    # Beyond the base: the base colour shifted by 97 per round, modulo 256.
    assert tuple(colours[9]) == (97, 97, 97)
    assert tuple(colours[10]) == ((230 + 97) % 256, (159 + 97) % 256, 97)  # (71, 0, 97)
    assert tuple(colours[17]) == (96, 96, 96)  # white + 97 wraps
    assert tuple(colours[18]) == (194, 194, 194)


def test_colorize_maps_indices_to_palette_rows() -> None:
    mask = np.array([[0, 1, 2], [2, 0, 1]], dtype=np.uint8)
    rgb = colorize(mask, 3)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == DOCUMENTED[0]
    assert tuple(rgb[0, 1]) == tuple(rgb[1, 2]) == DOCUMENTED[1]
    assert tuple(rgb[0, 2]) == tuple(rgb[1, 0]) == DOCUMENTED[2]


def test_colorize_tolerates_indices_beyond_num_classes() -> None:
    rgb = colorize(np.array([[0, 11]]), 2)
    assert tuple(rgb[0, 1]) == tuple(palette(12)[11])


def test_overlay_keeps_background_and_blends_foreground_by_hand() -> None:
    image = np.array([[0, 255, 200], [100, 200, 50]], dtype=np.uint8)  # full range: display = image
    mask = np.array([[0, 0, 2], [0, 1, 0]], dtype=np.uint8)
    out = overlay(image, mask, num_classes=3)
    display = to_display(image)
    assert out.shape == (2, 3, 3) and out.dtype == np.uint8
    background = mask == 0
    np.testing.assert_array_equal(out[background], display[background])
    # Pixel (0, 2): value 200, class 2 (86, 180, 233), alpha 0.45:
    # 0.55 · 200 + 0.45 · (86, 180, 233) = (148.7, 191.0, 214.85) → (149, 191, 215).
    assert tuple(out[0, 2]) == (149, 191, 215)
    # Pixel (1, 1): value 200, class 1 (230, 159, 0): (213.5 → 213 or 214, 181.55, 110.0).
    assert tuple(out[1, 1])[1:] == (182, 110)


def test_overlay_alpha_extremes() -> None:
    image = np.array([[10, 20], [30, 40]], dtype=np.uint16)
    mask = np.array([[1, 0], [0, 1]])
    np.testing.assert_array_equal(overlay(image, mask, 2, alpha=0.0), to_display(image))
    full = overlay(image, mask, 2, alpha=1.0)
    assert tuple(full[0, 0]) == tuple(full[1, 1]) == DOCUMENTED[1]
    np.testing.assert_array_equal(full[0, 1], to_display(image)[0, 1])


def test_overlay_on_rgb_keeps_the_colours_of_background_pixels() -> None:
    image = np.zeros((2, 2, 3), dtype=np.uint8)
    image[0, 0] = (255, 0, 0)
    image[0, 1] = (0, 128, 255)
    out = overlay(image, np.array([[0, 0], [0, 1]]), 2)
    assert tuple(out[0, 0]) == (255, 0, 0)
    assert tuple(out[0, 1]) == (0, 128, 255)
    assert tuple(out[1, 1]) == (round(0.45 * 230), round(0.45 * 159), 0)  # black + 0.45 · colour


def test_to_display_of_a_constant_image_is_black() -> None:
    out = to_display(np.full((3, 4), 77, dtype=np.uint8))
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8
    assert not out.any()


def test_to_display_stretches_16_bit_to_the_full_range() -> None:
    image = np.array([[1000, 2000], [3000, 1500]], dtype=np.uint16)
    out = to_display(image)
    assert out.shape == (2, 2, 3)
    assert out[0, 0, 0] == 0 and out[1, 0, 0] == 255
    assert 127 <= out[0, 1, 0] <= 128  # (2000 - 1000) / 2000 · 255 = 127.5
    assert 63 <= out[1, 1, 0] <= 64  # 500 / 2000 · 255 = 63.75
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 0] == out[..., 2]).all()


@pytest.mark.parametrize("channels", [2, 4])
def test_to_display_of_other_channel_counts_is_rgb(channels: int) -> None:
    image = np.zeros((1, 2, channels), dtype=np.uint8)
    image[0, 1, 0] = 255
    image[0, 0, 1] = 255
    out = to_display(image)
    assert out.shape == (1, 2, 3)
    assert tuple(out[0, 1]) == ((255, 0, 255) if channels == 2 else (255, 0, 0))
    assert tuple(out[0, 0]) == (0, 255, 0)
