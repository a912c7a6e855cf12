"""``SegmentationDataset`` yields normalised ``(C, H, W)`` images and aligned ``(H, W)`` masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from drunet.datasets import (
    AugmentationOptions,
    MaskOptions,
    NormalizationOptions,
    Pair,
    SegmentationDataset,
    write_image,
)
from drunet.errors import DataError

FLIPS = [
    {"name": "HorizontalFlip", "p": 0.5},
    {"name": "VerticalFlip", "p": 0.5},
    {"name": "RandomRotate90", "p": 1.0},
]


def scale(mean: list[float], std: list[float]) -> NormalizationOptions:
    """``(to_float(x) - mean) / std`` per channel, no clipping."""
    return NormalizationOptions(mode="dataset", clip_percentiles=None, mean=mean, std=std)


def flips(patch_size: int) -> AugmentationOptions:
    """Random patches with flips and 90° rotations: exact steps, so ids survive unchanged."""
    return AugmentationOptions(ops=FLIPS, patch_size=patch_size)


def test_tensors_have_the_right_types_shapes_and_normalisation(write_pair):
    image = np.zeros((2, 3, 3), np.uint8)
    image[..., 0] = [[0, 51, 102], [153, 204, 255]]  # 0.0 … 1.0 in steps of 0.2
    image[..., 1] = 255
    image[..., 2] = 51
    mask = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    dataset = SegmentationDataset(
        [write_pair("a", image, mask)], scale([0.5, 0.5, 0.2], [0.25, 0.5, 1])
    )
    x, y = dataset[0]
    assert len(dataset) == 1
    assert x.dtype == torch.float32 and x.shape == (3, 2, 3)
    assert y.dtype == torch.int64 and y.shape == (2, 3)
    expected_red = (np.array([[0.0, 0.2, 0.4], [0.6, 0.8, 1.0]]) - 0.5) / 0.25
    np.testing.assert_allclose(x[0].numpy(), expected_red, atol=1e-6)
    np.testing.assert_allclose(x[1].numpy(), np.full((2, 3), 1.0), atol=1e-6)  # (1 - 0.5) / 0.5
    np.testing.assert_allclose(x[2].numpy(), np.zeros((2, 3)), atol=1e-6)  # (0.2 - 0.2) / 1
    np.testing.assert_array_equal(y.numpy(), mask)


def _id_pair(write_pair, height: int = 40, width: int = 50, stem: str = "ids"):
    """A 16-bit image whose value is each pixel's id ``y * W + x`` and a mask derived from it."""
    ids = np.arange(height * width, dtype=np.uint16).reshape(height, width)
    return write_pair(stem, ids, (ids.astype(np.int64) * 7) % 5)


def test_augmented_items_keep_mask_aligned_end_to_end(write_pair):
    pair = _id_pair(write_pair)
    # Undo normalisation exactly: x = (id / 65535 - 0) / (1 / 65535) = id.
    dataset = SegmentationDataset([pair], scale([0.0], [1 / 65535]), augmentation=flips(32))
    for _ in range(10):
        x, y = dataset[0]
        assert x.shape == (1, 32, 32) and y.shape == (32, 32) and y.dtype == torch.int64
        ids = x[0].round().long()
        assert torch.equal(y, (ids * 7) % 5)


def test_augmentation_is_reproducible_after_manual_seed(write_pair):
    pair = _id_pair(write_pair)

    def draw() -> list[torch.Tensor]:
        torch.manual_seed(123)
        dataset = SegmentationDataset([pair], scale([0.0], [1.0]), augmentation=flips(16))
        return [dataset[0][0] for _ in range(3)]

    first, second = draw(), draw()
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert not torch.equal(first[0], first[1])


def test_loader_workers_draw_different_augmentations(write_pair):
    pair = _id_pair(write_pair, 64, 64)
    dataset = SegmentationDataset([pair] * 4, scale([0.0], [1.0]), augmentation=flips(16))
    torch.manual_seed(0)
    loader = DataLoader(dataset, batch_size=1, num_workers=2, shuffle=False)
    patches = [x for x, _ in loader]  # worker 0 serves items 0 and 2, worker 1 items 1 and 3
    assert not torch.equal(patches[0], patches[1])


def test_size_mismatch_names_both_files(write_pair):
    pair = write_pair("scan", np.zeros((4, 6), np.uint8), np.zeros((5, 6), np.uint8))
    with pytest.raises(DataError) as info:
        SegmentationDataset([pair], scale([0.0], [1.0]))[0]
    assert str(pair.image) in str(info.value) and str(pair.mask) in str(info.value)


def test_channel_count_must_match_the_normalisation(write_pair):
    pair = write_pair("rgb", np.zeros((4, 6, 3), np.uint8), np.zeros((4, 6), np.uint8))
    with pytest.raises(DataError, match=r"rgb\.png has 3 channel"):
        SegmentationDataset([pair], scale([0.0], [1.0]))[0]


def test_cache_keeps_decoded_files(write_pair):
    pair = write_pair("a", np.full((3, 3), 255, np.uint8), np.ones((3, 3), np.uint8))
    dataset = SegmentationDataset([pair], scale([0.0], [1.0]), cache=True)
    first = dataset[0]
    pair.image.unlink()
    pair.mask.unlink()
    again = dataset[0]
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])


def test_stored_normalisation_and_colour_masks(tmp_path):
    image = np.arange(48, dtype=np.uint16).reshape(6, 8) * 1000  # 0 … 47000
    colours = np.zeros((6, 8, 3), np.uint8)
    colours[:, 4:] = (0, 255, 0)
    colours[0, 0] = (255, 255, 255)  # the ignore colour
    write_image(tmp_path / "images" / "a.tif", image)
    write_image(tmp_path / "masks" / "a.png", colours)
    pair = Pair(tmp_path / "images" / "a.tif", tmp_path / "masks" / "a.png")
    masks = MaskOptions(colour_map={"0,0,0": 0, "0,255,0": 1, "#ffffff": 255}, ignore_index=255)
    norm = NormalizationOptions(mode="none", clip_low=[0.0], clip_high=[47000 / 65535])
    x, y = SegmentationDataset([pair], normalization=norm, masks=masks)[0]
    np.testing.assert_allclose(x[0].numpy(), image / 47000, atol=1e-6)  # window → [0, 1]
    expected = np.zeros((6, 8), np.int64)
    expected[:, 4:] = 1
    expected[0, 0] = 255
    np.testing.assert_array_equal(y.numpy(), expected)


def test_augmentation_options_keep_items_aligned(write_pair):
    pair = _id_pair(write_pair, 50, 60)
    options = AugmentationOptions(preset="none", patch_size=24, foreground_share=1.0)
    dataset = SegmentationDataset([pair], scale([0.0], [1 / 65535]), augmentation=options)
    for _ in range(10):
        x, y = dataset[0]
        ids = x[0].round().long()
        assert x.shape == (1, 24, 24) and torch.equal(y, (ids * 7) % 5)
        assert (y > 0).any()


def test_preload_fills_the_cache_before_workers_start(write_pair):
    pair = write_pair("a", np.full((3, 3), 255, np.uint8), np.ones((3, 3), np.uint8))
    dataset = SegmentationDataset([pair], scale([0.0], [1.0]), cache=True)
    dataset.preload()
    pair.image.unlink()
    pair.mask.unlink()
    x, y = dataset[0]
    assert float(x.max()) == 1.0 and int(y.max()) == 1
    with pytest.raises(ValueError, match="cache=True"):
        SegmentationDataset([pair], scale([0.0], [1.0])).preload()
