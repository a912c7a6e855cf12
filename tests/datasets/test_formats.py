"""Every image and mask format users bring round-trips exactly: write a file, read it, compare."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drunet.datasets import MaskOptions, read_image, read_mask, write_image, write_mask
from drunet.errors import DataError

Image = pytest.importorskip("PIL.Image")  # only to *write* palette PNGs; drunet reads them itself
RNG = np.random.default_rng(7)
HYPOTHESIS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _pixels(shape: tuple[int, ...], dtype: type) -> np.ndarray:
    if dtype == np.float32:
        return RNG.random(shape).astype(np.float32)
    return RNG.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize("suffix", [".png", ".tif", ".tiff"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 3])
def test_8_and_16_bit_gray_and_rgb_round_trip(tmp_path, suffix, dtype, channels):
    image = _pixels((9, 11, channels), dtype)
    write_image(tmp_path / f"image{suffix}", image)
    back = read_image(tmp_path / f"image{suffix}")
    assert back.dtype == dtype and back.shape == (9, 11, channels)
    np.testing.assert_array_equal(back, image)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("channels", [2, 5, 8])  # 4 channels are RGBA (see below)
def test_multi_channel_tiff_round_trips(tmp_path, dtype, channels):
    image = _pixels((6, 8, channels), dtype)
    write_image(tmp_path / "stack.tif", image)
    back = read_image(tmp_path / "stack.tif")
    assert back.dtype == dtype and back.shape == image.shape
    np.testing.assert_array_equal(back, image)


def _tiff_with_samples(path: Path, image: np.ndarray) -> None:
    """A minimal uncompressed one-page TIFF with ``C`` samples per pixel (OpenCV cannot read)."""
    height, width, channels = image.shape
    data = image.astype("<u1").tobytes()
    entries = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 1),
        (273, 4, 1, 8 + 2 + 8 * 12 + 4),
        (277, 3, 1, channels),
        (279, 4, 1, len(data)),
    ]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries)
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + data)


def test_tiff_with_many_samples_per_pixel_reads_them_as_channels(tmp_path):
    path = tmp_path / "five.tif"
    image = _pixels((4, 5, 5), np.uint8)
    _tiff_with_samples(path, image)  # OpenCV could not decode it; tifffile does
    np.testing.assert_array_equal(read_image(path), image)


def test_tiff_pages_of_different_sizes_are_rejected(tmp_path):
    ok, buffer = cv2.imencodemulti(".tif", [np.zeros((4, 4), np.uint8), np.zeros((2, 2), np.uint8)])
    (tmp_path / "pyramid.tif").write_bytes(buffer.tobytes())
    with pytest.raises(DataError, match=r"pyramid\.tif.*2 images of different shapes"):
        read_image(tmp_path / "pyramid.tif")


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_rgba_drops_alpha_with_one_warning(tmp_path, caplog, suffix):
    image = _pixels((5, 6, 4), np.uint8)
    path = tmp_path / f"rgba{suffix}"
    write_image(path, image)
    with caplog.at_level(logging.WARNING, logger="drunet.datasets.io"):
        back = read_image(path)
        read_image(path)
    np.testing.assert_array_equal(back, image[:, :, :3])
    assert caplog.text.count("alpha channel") == 1 and path.name in caplog.text


@pytest.mark.parametrize(("channels", "shape"), [(1, (24, 40, 1)), (3, (24, 40, 3))])
def test_jpeg_keeps_shape_and_dtype(tmp_path, channels, shape):
    ys, xs = np.mgrid[0:24, 0:40]
    image = np.repeat(((xs * 4 + ys) % 256).astype(np.uint8)[:, :, None], channels, axis=2)
    write_image(tmp_path / "photo.jpg", image)
    back = read_image(tmp_path / "photo.jpg")
    assert back.shape == shape and back.dtype == np.uint8


def _palette_png(path: Path, indices: np.ndarray, palette: list[tuple[int, int, int]]) -> None:
    image = Image.fromarray(indices.astype(np.uint8), mode="P")
    image.putpalette([c for colour in palette for c in colour])
    image.save(path)


def test_palette_png_gives_indices_not_colours(tmp_path):
    indices = np.array([[0, 1, 2], [3, 0, 1]])
    # Colours chosen so that neither gray nor a colour map could recover the indices.
    _palette_png(
        tmp_path / "voc.png", indices, [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0)]
    )
    np.testing.assert_array_equal(read_mask(tmp_path / "voc.png"), indices)


def test_palette_png_with_repeated_colours_keeps_each_index(tmp_path):
    indices = np.array([[0, 1], [2, 2]])
    _palette_png(tmp_path / "same.png", indices, [(0, 0, 0), (0, 0, 0), (9, 9, 9)])
    np.testing.assert_array_equal(read_mask(tmp_path / "same.png"), indices)


def test_truncated_palette_png_names_the_file(tmp_path):
    path = tmp_path / "cut.png"
    _palette_png(
        path, RNG.integers(0, 4, (64, 64)), [(0, 0, 0), (255, 0, 0), (0, 255, 0), (1, 2, 3)]
    )
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match=r"cut\.png.*truncated"):
        read_mask(path)


def test_colour_coded_mask_through_a_colour_map(tmp_path):
    classes = np.array([[0, 1, 2], [2, 1, 0]])
    palette = np.array([(0, 0, 0), (255, 0, 0), (0, 0, 255)], np.uint8)
    write_image(tmp_path / "colour.png", palette[classes])
    options = MaskOptions(colour_map={"0,0,0": 0, "#ff0000": 1, "(0, 0, 255)": 2})
    np.testing.assert_array_equal(read_mask(tmp_path / "colour.png", options), classes)


def test_colour_mask_without_map_lists_colours_and_suggests_a_map(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:2] = (255, 0, 0)
    rgb[0, 0] = (0, 255, 0)
    write_image(tmp_path / "colour.png", rgb)
    with pytest.raises(DataError) as info:
        read_mask(tmp_path / "colour.png")
    message = str(info.value)
    assert "colour.png" in message and "colour-coded" in message
    # Most frequent colour first → background; the suggestion is a valid map.
    assert '{"0,0,0": 0, "255,0,0": 1, "0,255,0": 2}' in message


def test_colours_missing_from_the_map_are_listed(tmp_path):
    rgb = np.zeros((3, 3, 3), np.uint8)
    rgb[1, 1] = (10, 20, 30)
    write_image(tmp_path / "aa.png", rgb)
    with pytest.raises(
        DataError,
        match=r"aa\.png: 1 colour\(s\) are not in masks\.colour_map: "
        r"10,20,30 \(1 px\)",
    ):
        read_mask(tmp_path / "aa.png", MaskOptions(colour_map={"0,0,0": 0}))


def test_zero_255_rule_and_its_switches(tmp_path):
    write_mask(tmp_path / "m.png", np.array([[0, 255], [255, 0]]))
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), [[0, 1], [1, 0]])
    raw = read_mask(tmp_path / "m.png", MaskOptions(binary_255=False))
    np.testing.assert_array_equal(raw, [[0, 255], [255, 0]])
    ignored = read_mask(tmp_path / "m.png", MaskOptions(ignore_index=255))
    np.testing.assert_array_equal(ignored, [[0, 255], [255, 0]])  # 255 means "skip" here


def test_ignore_value_is_kept_next_to_classes(tmp_path):
    mask = np.array([[0, 1, 2], [255, 255, 1]])
    write_mask(tmp_path / "m.png", mask)
    np.testing.assert_array_equal(
        read_mask(tmp_path / "m.png", MaskOptions(ignore_index=255)), mask
    )


def _expected(mask: np.ndarray, options: MaskOptions) -> np.ndarray:
    present = set(np.unique(mask).tolist())
    if options.binary_255 and options.ignore_index != 255 and 255 in present <= {0, 255}:
        return (mask == 255).astype(np.int64)
    return mask.astype(np.int64)


@st.composite
def _mask_and_options(draw: st.DrawFn) -> tuple[np.ndarray, MaskOptions]:
    height, width = draw(st.integers(1, 16)), draw(st.integers(1, 16))
    values = draw(
        st.one_of(
            st.lists(st.sampled_from([0, 1, 2, 7, 254, 255]), min_size=1, max_size=4, unique=True),
            st.lists(st.integers(0, 65535), min_size=1, max_size=6, unique=True),
        )
    )
    picks = draw(
        st.lists(st.sampled_from(values), min_size=height * width, max_size=height * width)
    )
    options = MaskOptions(
        ignore_index=draw(st.sampled_from([None, 255])), binary_255=draw(st.booleans())
    )
    return np.asarray(picks).reshape(height, width), options


@HYPOTHESIS
@given(case=_mask_and_options(), suffix=st.sampled_from([".png", ".tif"]))
def test_any_value_set_round_trips_by_the_rules(tmp_path, case, suffix):
    mask, options = case
    write_mask(tmp_path / f"mask{suffix}", mask)
    back = read_mask(tmp_path / f"mask{suffix}", options)
    assert back.dtype == np.int64 and back.shape == mask.shape
    np.testing.assert_array_equal(back, _expected(mask, options))


@st.composite
def _colour_masks(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    n = draw(st.integers(1, 5))
    colours = draw(
        st.lists(st.tuples(*[st.integers(0, 255)] * 3), min_size=n, max_size=n, unique=True)
    )
    classes = draw(st.lists(st.integers(0, 20), min_size=n, max_size=n))
    height, width = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    picks = np.asarray(
        draw(st.lists(st.integers(0, n - 1), min_size=height * width, max_size=height * width))
    ).reshape(height, width)
    rgb = np.asarray(colours, np.uint8)[picks]
    mapping = {f"#{r:02x}{g:02x}{b:02x}": k for (r, g, b), k in zip(colours, classes, strict=True)}
    return rgb, np.asarray(classes)[picks], mapping


@HYPOTHESIS
@given(case=_colour_masks())
def test_any_colour_map_round_trips(tmp_path, case):
    rgb, classes, mapping = case
    write_image(tmp_path / "colour.png", rgb)
    back = read_mask(tmp_path / "colour.png", MaskOptions(colour_map=mapping, binary_255=False))
    np.testing.assert_array_equal(back, classes)


@st.composite
def _images(draw: st.DrawFn) -> tuple[np.ndarray, str]:
    suffix = draw(st.sampled_from([".png", ".tif"]))
    dtypes = [np.uint8, np.uint16] + ([np.float32] if suffix == ".tif" else [])
    dtype = draw(st.sampled_from(dtypes))
    channels = draw(st.sampled_from([1, 3] + ([2, 5, 7] if suffix == ".tif" else [])))
    shape = (draw(st.integers(1, 20)), draw(st.integers(1, 20)), channels)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if dtype == np.float32:
        return rng.standard_normal(shape).astype(np.float32), suffix
    return rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype), suffix


@HYPOTHESIS
@given(case=_images())
def test_any_image_dtype_and_channel_count_round_trips(tmp_path, case):
    image, suffix = case
    write_image(tmp_path / f"image{suffix}", image)
    back = read_image(tmp_path / f"image{suffix}")
    assert back.dtype == image.dtype and back.shape == image.shape
    np.testing.assert_array_equal(back, image)


def _broken(kind: str, path: Path) -> None:
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        write_image(path, _pixels((64, 64), np.uint8))
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_text("name,area\ncell 1,42\n")  # a CSV saved with the wrong suffix


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("empty", "the file is empty (0 bytes)"),
        ("truncated", "this PNG file could not be decoded (truncated or corrupt)"),
        ("text", "it is not an image file"),
    ],
)
@pytest.mark.parametrize("read", [read_image, read_mask])
def test_broken_files_give_the_documented_error(tmp_path, kind, message, read):
    path = tmp_path / "scan 7.png"
    _broken(kind, path)
    with pytest.raises(DataError) as info:
        read(path)
    text = str(info.value)
    assert str(path) in text and message in text and "re-export it" in text
