"""Image and mask files: exact round-trips, the 0/255 rule, unreadable files, atomic writes."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drunet.datasets import read_image, read_mask, to_float, write_image, write_mask
from drunet.errors import DataError

RNG = np.random.default_rng(0)


def _random(shape: tuple[int, ...], dtype: type, high: int) -> np.ndarray:
    return RNG.integers(0, high, size=shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize(
    ("suffix", "array"),
    [
        (".png", _random((5, 7), np.uint8, 255)),
        (".png", _random((5, 7), np.uint16, 65535)),
        (".tif", _random((6, 4), np.uint16, 65535)),
        (".tiff", _random((6, 4, 3), np.uint16, 65535)),
        (".tif", RNG.random((6, 4)).astype(np.float32)),
        (".bmp", _random((3, 9, 3), np.uint8, 255)),
    ],
    ids=["png8-gray", "png16-gray", "tif16-gray", "tif16-rgb", "tif-float32", "bmp-rgb"],
)
def test_lossless_round_trip_keeps_values_and_dtype(tmp_path, suffix, array):
    path = tmp_path / f"image{suffix}"
    write_image(path, array)
    back = read_image(path)
    expected = array if array.ndim == 3 else array[:, :, None]
    assert back.dtype == array.dtype
    assert back.shape == expected.shape
    np.testing.assert_array_equal(back, expected)


def test_rgb_png_keeps_channel_order(tmp_path):
    image = np.zeros((4, 5, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 200, 100, 10  # pure reddish: R > G > B
    image[1, 2] = (1, 2, 3)
    write_image(tmp_path / "rgb.png", image)
    back = read_image(tmp_path / "rgb.png")
    np.testing.assert_array_equal(back, image)
    assert tuple(back[0, 0]) == (200, 100, 10)
    assert tuple(back[1, 2]) == (1, 2, 3)


def test_rgba_drops_alpha_with_a_warning(tmp_path, caplog):
    image = _random((4, 6, 4), np.uint8, 255)
    write_image(tmp_path / "rgba.png", image)
    with caplog.at_level(logging.WARNING, logger="drunet.datasets.io"):
        back = read_image(tmp_path / "rgba.png")
    np.testing.assert_array_equal(back, image[:, :, :3])
    assert "alpha" in caplog.text


def test_jpeg_gray_round_trip_is_close(tmp_path):
    ys, xs = np.mgrid[0:32, 0:48]
    image = (2 * xs + ys).astype(np.uint8)  # smooth: JPEG keeps it within a few levels
    write_image(tmp_path / "gray.jpg", image)
    back = read_image(tmp_path / "gray.jpg")
    assert back.shape == (32, 48, 1) and back.dtype == np.uint8
    assert np.abs(back[:, :, 0].astype(int) - image).mean() < 2.0


def test_unicode_and_spaces_in_path(tmp_path):
    folder = tmp_path / "dätä 画像 folder"
    image, mask = _random((5, 6, 3), np.uint8, 255), _random((5, 6), np.uint8, 4)
    write_image(folder / "ïmage 1.png", image)
    write_mask(folder / "mäsk 1.png", mask)
    np.testing.assert_array_equal(read_image(folder / "ïmage 1.png"), image)
    np.testing.assert_array_equal(read_mask(folder / "mäsk 1.png"), mask)


def test_to_float_scales_by_dtype():
    np.testing.assert_allclose(
        to_float(np.array([0, 51, 255], np.uint8)), [0.0, 0.2, 1.0], rtol=1e-6
    )
    np.testing.assert_allclose(to_float(np.array([0, 65535], np.uint16)), [0.0, 1.0])
    floats = np.array([0.25, 1.5], np.float32)
    assert to_float(floats).dtype == np.float32
    np.testing.assert_array_equal(to_float(floats), floats)
    assert to_float(np.array([257], np.uint16))[0] == pytest.approx(257 / 65535)
    hounsfield = np.array([-1000, 0, 400], np.int16)  # signed: raw values, windowed later
    np.testing.assert_array_equal(to_float(hounsfield), hounsfield.astype(np.float32))
    with pytest.raises(ValueError, match="uint32"):
        to_float(np.zeros(2, np.uint32))


def test_class_index_mask_round_trips_exactly(tmp_path):
    mask = np.arange(30).reshape(5, 6) % 7
    write_mask(tmp_path / "mask.png", mask)
    back = read_mask(tmp_path / "mask.png")
    assert back.dtype == np.int64 and back.shape == (5, 6)
    np.testing.assert_array_equal(back, mask)


def test_sixteen_bit_mask_round_trips(tmp_path):
    mask = np.array([[0, 300], [65535, 7]])
    write_mask(tmp_path / "mask.tif", mask)
    np.testing.assert_array_equal(read_mask(tmp_path / "mask.tif"), mask)


def test_zero_255_mask_becomes_zero_one(tmp_path):
    mask = np.array([[0, 255], [255, 0]], np.uint8)
    write_image(tmp_path / "binary.png", mask)  # as an image viewer would save it
    np.testing.assert_array_equal(read_mask(tmp_path / "binary.png"), [[0, 1], [1, 0]])


def test_255_next_to_other_classes_is_kept(tmp_path):
    mask = np.array([[0, 1], [255, 1]], np.uint8)
    write_mask(tmp_path / "mask.png", mask)
    np.testing.assert_array_equal(read_mask(tmp_path / "mask.png"), mask)


def test_rgb_mask_with_equal_channels_is_gray(tmp_path):
    mask = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    write_image(tmp_path / "mask.png", np.repeat(mask[:, :, None], 3, axis=2))
    back = read_mask(tmp_path / "mask.png")
    assert back.shape == (2, 3)
    np.testing.assert_array_equal(back, mask)


def test_colour_coded_mask_is_rejected(tmp_path):
    colours = np.zeros((2, 3, 3), np.uint8)
    colours[0, 0] = (255, 0, 0)
    write_image(tmp_path / "colour.png", colours)
    with pytest.raises(DataError, match="colour-coded.*colour.png|colour.png.*colour-coded"):
        read_mask(tmp_path / "colour.png")


def _zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


def _truncated_png(path: Path) -> None:
    write_image(path, _random((64, 64), np.uint8, 255))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _text(path: Path) -> None:
    path.write_text("this is not an image\n")


@pytest.mark.parametrize("make", [_zero_bytes, _truncated_png, _text])
@pytest.mark.parametrize("read", [read_image, read_mask])
def test_unreadable_files_raise_data_error_naming_the_file(tmp_path, make, read):
    path = tmp_path / "broken scan 7.png"
    make(path)
    with pytest.raises(DataError, match=re.escape("broken scan 7.png")):
        read(path)


def test_missing_file_raises_data_error(tmp_path):
    with pytest.raises(DataError, match="nope.png"):
        read_image(tmp_path / "nope.png")


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path):
    path = tmp_path / "sub" / "image.png"
    write_image(path, np.zeros((3, 3), np.uint8))
    write_image(path, np.full((3, 3), 9, np.uint8))  # overwrite in place
    assert [p.name for p in path.parent.iterdir()] == ["image.png"]
    assert read_image(path)[0, 0, 0] == 9


@pytest.mark.parametrize(
    ("name", "array"),
    [
        ("image.gif", np.zeros((2, 2), np.uint8)),
        ("image.jpg", np.zeros((2, 2), np.uint16)),  # OpenCV would silently cut to 8 bits
        ("image.png", np.zeros((2, 2), np.float32)),
        ("image.png", np.zeros((2, 2, 2), np.uint8)),
    ],
)
def test_write_image_rejects_what_the_format_cannot_store(tmp_path, name, array):
    with pytest.raises(ValueError, match=re.escape(name)):
        write_image(tmp_path / name, array)
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize(
    ("name", "mask"),
    [
        ("mask.jpg", np.zeros((2, 2), np.uint8)),
        ("mask.png", np.full((2, 2), -1)),
        ("mask.png", np.full((2, 2), 70000)),
        ("mask.png", np.zeros((2, 2), np.float32)),
    ],
)
def test_write_mask_rejects_bad_masks(tmp_path, name, mask):
    with pytest.raises(ValueError, match=re.escape(name)):
        write_mask(tmp_path / name, mask)


@st.composite
def _masks(draw: st.DrawFn) -> np.ndarray:
    height, width = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    values = draw(
        st.one_of(
            st.lists(st.sampled_from([0, 1, 254, 255, 256]), min_size=1, max_size=4),
            st.lists(st.integers(0, 65535), min_size=1, max_size=5),
        )
    )
    picks = draw(
        st.lists(st.integers(0, len(values) - 1), min_size=height * width, max_size=height * width)
    )
    return np.asarray(values)[picks].reshape(height, width)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mask=_masks(), suffix=st.sampled_from([".png", ".tif"]))
def test_masks_round_trip_exactly(tmp_path, mask, suffix):
    path = tmp_path / f"mask{suffix}"
    write_mask(path, mask)
    present = set(np.unique(mask).tolist())
    expected = (mask == 255).astype(np.int64) if 255 in present and present <= {0, 255} else mask
    back = read_mask(path)
    assert back.dtype == np.int64
    np.testing.assert_array_equal(back, expected)
