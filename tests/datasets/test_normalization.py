"""Normalisation is measured exactly, stored, and applied identically in training and prediction."""

from __future__ import annotations

import json

import numpy as np
import pytest

from drunet.datasets import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    NormalizationOptions,
    Pair,
    SegmentationDataset,
    compute_normalization,
    normalize,
    read_image,
    write_image,
    write_mask,
)
from drunet.errors import DataError


def test_eight_bit_statistics_by_hand(write_pair):
    # Pixels in [0, 1]: image a → 0, 1, 1, 0; image b → 0.2, 0.4 (51 and 102 of 255).
    a = write_pair("a", np.array([[0, 255], [255, 0]], np.uint8), np.zeros((2, 2), np.uint8))
    b = write_pair("b", np.array([[51, 102]], np.uint8), np.zeros((1, 2), np.uint8))
    norm = compute_normalization([a, b])
    assert norm.clip_percentiles is None and norm.clip_low is None  # "auto": 8-bit is not clipped
    assert norm.mean == pytest.approx([13 / 30], abs=1e-12)
    assert norm.std == pytest.approx([np.sqrt(161) / 30], abs=1e-12)


def _ramp16(write_pair, stem: str = "ramp") -> tuple[Pair, np.ndarray]:
    values = np.arange(1000, dtype=np.uint16).reshape(20, 50) * 7 + 300  # 300 … 7293
    return write_pair(stem, values, np.zeros((20, 50), np.uint8), image_suffix=".tif"), values


def test_sixteen_bit_data_is_clipped_at_exact_percentiles(write_pair):
    pair, values = _ramp16(write_pair)
    norm = compute_normalization([pair])
    assert norm.clip_percentiles == (0.5, 99.5)
    low, high = np.percentile(values, [0.5, 99.5], method="inverted_cdf") / 65535
    assert norm.clip_low == pytest.approx([low], abs=1e-12)
    assert norm.clip_high == pytest.approx([high], abs=1e-12)
    unit = (np.clip(values / 65535, low, high) - low) / (high - low)
    assert norm.mean == pytest.approx([unit.mean()], abs=1e-9)
    assert norm.std == pytest.approx([unit.std()], abs=1e-9)
    x = normalize(read_image(pair.image), norm)
    assert x.dtype == np.float32 and x.shape == (20, 50, 1)
    assert x.mean() == pytest.approx(0.0, abs=1e-5) and x.std() == pytest.approx(1.0, abs=1e-5)


def test_clipping_can_be_forced_or_switched_off(write_pair):
    pair, _ = _ramp16(write_pair)
    off = compute_normalization([pair], NormalizationOptions(clip_percentiles=None))
    assert off.clip_low is None
    gray = write_pair(
        "g", np.arange(256, dtype=np.uint8).reshape(16, 16), np.zeros((16, 16), np.uint8)
    )
    forced = compute_normalization([gray], NormalizationOptions(clip_percentiles=(10, 90)))
    assert forced.clip_low == pytest.approx([25 / 255]) and forced.clip_high == pytest.approx(
        [230 / 255]
    )


def test_prediction_normalises_exactly_like_the_training_dataset(write_pair):
    pair, _ = _ramp16(write_pair)
    stored = compute_normalization([pair]).model_dump(mode="json")  # as kept with the run
    reloaded = NormalizationOptions.model_validate(json.loads(json.dumps(stored)))
    x, _ = SegmentationDataset([pair], normalization=reloaded)[0]
    expected = normalize(read_image(pair.image), reloaded)  # what the predictor calls
    np.testing.assert_array_equal(x.numpy(), expected.transpose(2, 0, 1))


def test_imagenet_statistics_for_rgb_and_gray(write_pair):
    rgb = np.random.default_rng(0).integers(0, 256, (4, 5, 3)).astype(np.uint8)
    x = normalize(rgb, NormalizationOptions(mode="imagenet"))
    np.testing.assert_allclose(
        x, (rgb / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD), rtol=1e-5, atol=1e-6
    )
    gray = normalize(rgb[:, :, :1], NormalizationOptions(mode="imagenet"))
    np.testing.assert_allclose(
        gray[..., 0],
        (rgb[..., 0] / 255 - np.mean(IMAGENET_MEAN)) / np.mean(IMAGENET_STD),
        rtol=1e-5,
    )
    with pytest.raises(DataError, match="1 or 3 channels"):
        normalize(np.zeros((2, 2, 2), np.uint8), NormalizationOptions(mode="imagenet"))


def test_mode_none_only_scales():
    image = np.array([[[0], [65535]]], np.uint16)
    stored = NormalizationOptions(mode="none", clip_percentiles=None)
    np.testing.assert_array_equal(normalize(image, stored), [[[0.0], [1.0]]])


def test_float_images_are_estimated_from_samples(tmp_path):
    rng = np.random.default_rng(3)
    image = rng.normal(100.0, 20.0, (300, 300)).astype(np.float32)
    write_image(tmp_path / "images" / "f.tif", image)
    write_mask(tmp_path / "masks" / "f.png", np.zeros((300, 300), np.uint8))
    norm = compute_normalization(
        [Pair(tmp_path / "images" / "f.tif", tmp_path / "masks" / "f.png")]
    )
    low, high = np.percentile(image, [0.5, 99.5])
    assert norm.clip_low[0] == pytest.approx(low, rel=0.01)
    assert norm.clip_high[0] == pytest.approx(high, rel=0.01)
    x = normalize(image[:, :, None], norm)
    assert abs(float(x.mean())) < 0.02 and float(x.std()) == pytest.approx(1.0, abs=0.02)


def test_per_channel_statistics_of_a_multi_file_case(tmp_path):
    first = np.full((4, 4), 51, np.uint8)
    second = np.tile(np.array([0, 255], np.uint8), (4, 2))
    write_image(tmp_path / "c_0000.png", first)
    write_image(tmp_path / "c_0001.png", second)
    write_mask(tmp_path / "c.png", np.zeros((4, 4), np.uint8))
    pair = Pair(tmp_path / "c_0000.png", tmp_path / "c.png", (tmp_path / "c_0001.png",))
    norm = compute_normalization([pair])
    assert norm.mean == pytest.approx([0.2, 0.5]) and norm.std == pytest.approx([1e-6, 0.5])


def test_constant_sixteen_bit_channel_keeps_a_usable_window(write_pair):
    pair = write_pair(
        "flat", np.full((3, 3), 1000, np.uint16), np.zeros((3, 3), np.uint8), image_suffix=".tif"
    )
    norm = compute_normalization([pair])
    assert norm.clip_high[0] > norm.clip_low[0] and norm.std[0] > 0
    assert np.all(np.isfinite(normalize(read_image(pair.image), norm)))


def test_unfilled_options_say_to_compute_them_first():
    with pytest.raises(ValueError, match="compute_normalization"):
        normalize(np.zeros((2, 2, 1), np.uint8), NormalizationOptions())
    with pytest.raises(ValueError, match="compute_normalization"):  # 16-bit: clipping applies
        normalize(np.zeros((2, 2, 1), np.uint16), NormalizationOptions(mode="none"))


def test_channel_mismatch_names_the_source():
    stored = NormalizationOptions(mean=[0.5], std=[0.2], clip_percentiles=None)
    with pytest.raises(DataError, match=r"photo\.png has 3 channel\(s\) but .* computed for 1"):
        normalize(np.zeros((2, 2, 3), np.uint8), stored, source="photo.png")


def test_mixed_channel_counts_are_refused(write_pair):
    gray = write_pair("a", np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8))
    rgb = write_pair("b", np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2), np.uint8))
    with pytest.raises(DataError, match=r"b\.png has 3 channel\(s\) but earlier images have 1"):
        compute_normalization([gray, rgb])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mean": [0.5]},
        {"mean": [0.5], "std": [0.0]},
        {"mean": [0.5, 0.1], "std": [0.2]},
        {"clip_low": [0.2], "clip_high": [0.1]},
        {"clip_percentiles": (99, 1)},
        {"mode": "standard"},
        {"window": (400, -1000)},
        {"window": (-1000, 400), "clip_percentiles": (1, 99)},
        {"std": [float("nan")], "mean": [0.5]},
        {"scale": 2},
    ],
)
def test_bad_options_are_rejected(kwargs):
    with pytest.raises(ValueError):
        NormalizationOptions(**kwargs)
