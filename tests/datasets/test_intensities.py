"""TIFF through tifffile and intensities beyond 8/16-bit (issue #16): signed and float images,
fixed windows, per-image z-score, stored with the run and reused at prediction."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

from drunet.config import config_from_dict, config_to_dict
from drunet.datasets import (
    NormalizationOptions,
    SegmentationDataset,
    compute_normalization,
    discover,
    make_synthetic,
    normalize,
    read_frames,
    read_image,
    read_pair,
    write_image,
)
from drunet.errors import DataError
from tests.conftest import tiny_recipe

CT_WINDOW = (-1000.0, 400.0)
RNG = np.random.default_rng(16)


@pytest.fixture(scope="module")
def ct_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ct") / "data"
    return make_synthetic(root, num_images=6, sizes=((48, 48),), seed=3, dtype="int16")


def test_synthetic_int16_dataset_holds_negative_values(ct_data):
    layout = discover(ct_data)
    assert all(p.image.suffix == ".tif" for p in layout.pairs)
    image, mask = read_pair(layout.pairs[0])
    assert image.dtype == np.int16 and image.shape == (48, 48, 1)
    assert image.min() < 0 < image.max() and image.min() >= -1000 and image.max() <= 1000
    assert mask.shape == (48, 48) and set(np.unique(mask)) == {0, 1}


def test_a_window_clips_and_scales_to_unit_range(ct_data):
    layout = discover(ct_data)
    norm = compute_normalization(layout.train, NormalizationOptions(window=CT_WINDOW))
    assert norm.clip_percentiles is None and norm.clip_low is None  # the window replaces them
    image = read_pair(layout.pairs[0])[0]
    unit = normalize(image, norm.model_copy(update={"mode": "none"}))
    expected = (np.clip(image.astype(np.float32), -1000, 400) + 1000) / 1400
    np.testing.assert_allclose(unit, expected, rtol=1e-6)
    assert unit.min() >= 0.0 and unit.max() == pytest.approx(1.0)  # values above 400 saturate
    # mode "dataset": mean/std measured on the windowed training images
    pixels = np.concatenate([read_pair(p)[0].ravel() for p in layout.train]).astype(np.float64)
    windowed = (np.clip(pixels, -1000, 400) + 1000) / 1400
    assert norm.mean == pytest.approx([windowed.mean()], rel=1e-3)
    assert norm.std == pytest.approx([windowed.std()], rel=1e-2)


def test_window_options_survive_the_run_config_round_trip(ct_data):
    layout = discover(ct_data)
    norm = compute_normalization(layout.train, NormalizationOptions(window=CT_WINDOW))
    config = config_from_dict(tiny_recipe(data={"normalization": norm.model_dump()}))
    stored = config_from_dict(config_to_dict(config)).data.normalization
    assert stored == norm and stored.window == CT_WINDOW
    image = read_pair(layout.pairs[-1])[0]
    np.testing.assert_array_equal(normalize(image, stored), normalize(image, norm))


def test_zscore_standardises_each_image_by_itself(ct_data):
    options = NormalizationOptions(mode="zscore", clip_percentiles=None)
    filled = compute_normalization(discover(ct_data).train, options)
    assert filled.mean is None and filled.std is None  # nothing stored: per image
    image = read_pair(discover(ct_data).pairs[0])[0]
    x = normalize(image, filled)
    assert float(x.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(x.std()) == pytest.approx(1.0, abs=1e-4)


def test_zscore_in_training_uses_the_whole_images_statistics(ct_data):
    pairs = discover(ct_data).pairs[:1]
    options = NormalizationOptions(mode="zscore", window=CT_WINDOW)
    whole = SegmentationDataset(pairs, options)[0][0].numpy()  # (C, H, W), no augmentation
    expected = normalize(read_pair(pairs[0])[0], options).transpose(2, 0, 1)
    np.testing.assert_allclose(whole, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", ["int16"])
def test_training_and_prediction_share_the_stored_window(tmp_path, dtype):
    from drunet.engine.train import train
    from drunet.inference import Predictor

    data = make_synthetic(tmp_path / "data", num_images=4, sizes=((40, 40),), dtype=dtype)
    window = CT_WINDOW
    recipe = tiny_recipe(data={"normalization": {"window": list(window)}})
    recipe["data"]["root"], recipe["runs_dir"] = str(data), str(tmp_path / "runs")
    config = config_from_dict(recipe)
    result = train(config)
    predictor = Predictor.from_run(result.run_dir)
    assert predictor.normalization.window == window
    image = read_image(data / "images" / "000.tif")
    assert image.dtype == np.dtype(dtype)
    mask = predictor.predict(image)
    assert mask.shape == image.shape[:2]


# --- TIFF files ---------------------------------------------------------------------------------


def test_a_three_page_tiff_is_a_stack(tmp_path):
    stack = RNG.integers(-500, 500, (3, 12, 9)).astype(np.int16)
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="minisblack")
    frames = read_frames(tmp_path / "stack.tif")
    assert frames.shape == (3, 12, 9, 1) and frames.dtype == np.int16
    np.testing.assert_array_equal(frames[:, :, :, 0], stack)
    assert read_image(tmp_path / "stack.tif").shape == (12, 9, 3)  # one image: pages as channels


def test_an_imagej_hyperstack_keeps_slices_and_channels_apart(tmp_path):
    stack = RNG.integers(0, 4000, (4, 2, 10, 8)).astype(np.uint16)  # Z, C, Y, X
    tifffile.imwrite(tmp_path / "zc.tif", stack, imagej=True, metadata={"axes": "ZCYX"})
    frames = read_frames(tmp_path / "zc.tif")
    assert frames.shape == (4, 10, 8, 2)
    np.testing.assert_array_equal(frames, stack.transpose(0, 2, 3, 1))


@pytest.mark.parametrize(
    "options",
    [
        {"bigtiff": True},
        {"compression": "zlib"},
        {"compression": "zlib", "predictor": True},
        {"bigtiff": True, "compression": "zlib"},
    ],
    ids=["bigtiff", "zlib", "zlib-predictor", "bigtiff-zlib"],
)
def test_bigtiff_and_compressed_tiffs(tmp_path, options):
    image = RNG.integers(-30000, 30000, (3, 14, 11)).astype(np.int16)
    tifffile.imwrite(tmp_path / "x.tif", image, photometric="minisblack", **options)
    np.testing.assert_array_equal(read_frames(tmp_path / "x.tif")[:, :, :, 0], image)


@pytest.mark.parametrize("planar", ["contig", "separate"])
def test_interleaved_and_planar_rgb_read_the_same(tmp_path, planar):
    rgb = RNG.integers(0, 255, (9, 7, 3)).astype(np.uint8)
    pixels = rgb if planar == "contig" else rgb.transpose(2, 0, 1)
    tifffile.imwrite(tmp_path / "rgb.tif", pixels, photometric="rgb", planarconfig=planar)
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.tif"), rgb)


def test_lzw_tiffs_as_opencv_writes_them_are_read(tmp_path):
    image = RNG.integers(0, 65535, (10, 12, 3)).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "lzw.tif"), image[:, :, ::-1])  # BGR; OpenCV compresses with LZW
    np.testing.assert_array_equal(read_image(tmp_path / "lzw.tif"), image)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.float32])
def test_signed_and_float_images_round_trip(tmp_path, dtype):
    image = (RNG.standard_normal((6, 5, 2)) * 100).astype(dtype)
    write_image(tmp_path / "x.tif", image)
    back = read_image(tmp_path / "x.tif")
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, image)


def test_float64_is_narrowed_and_never_becomes_infinite(tmp_path):
    fine = np.array([[0.5, -1e30]], np.float64)
    tifffile.imwrite(tmp_path / "fine.tif", fine)
    back = read_image(tmp_path / "fine.tif")
    assert back.dtype == np.float32 and np.isfinite(back).all()
    tifffile.imwrite(tmp_path / "huge.tif", np.array([[0.5, 1e300]], np.float64))
    with pytest.raises(DataError, match=r"huge\.tif.*beyond the float32 range.*rescale"):
        read_image(tmp_path / "huge.tif")


def test_unsupported_pixel_types_name_the_file(tmp_path):
    tifffile.imwrite(tmp_path / "u32.tif", np.zeros((4, 4), np.uint32))
    with pytest.raises(DataError, match=r"u32\.tif.*uint32"):
        read_image(tmp_path / "u32.tif")
