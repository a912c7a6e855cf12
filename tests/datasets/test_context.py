"""2.5D context (``data.context_slices``): neighbours' images as extra channels, edges copied."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

from drunet.config import config_from_dict
from drunet.datasets import NormalizationOptions, Pair, SegmentationDataset
from drunet.datasets.context import (
    context_indices,
    context_pairs,
    expand_normalization,
    iter_with_context,
)
from drunet.datasets.options import AugmentationOptions
from drunet.datasets.synthetic import make_synthetic
from drunet.engine.data import prepare_data
from drunet.errors import ConfigError, DataError
from tests.conftest import tiny_recipe

# Raw [0, 1] units, nothing measured: a uint8 pixel v comes out as v / 255.
RAW = NormalizationOptions(mode="none", clip_percentiles=None)


def _numbered_stack(root: Path, pages: int = 12, size: int = 8) -> list[Pair]:
    """A stack whose page p is filled with the value p; mask page p is p % 2 everywhere."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    image, mask = root / "images" / "vol.tif", root / "masks" / "vol.tif"
    values = np.arange(pages, dtype=np.uint8)[:, None, None]
    tifffile.imwrite(image, np.broadcast_to(values, (pages, size, size)), photometric="minisblack")
    tifffile.imwrite(
        mask, np.broadcast_to(values % 2, (pages, size, size)), photometric="minisblack"
    )
    return [Pair(image, mask, page=p) for p in range(pages)]


def _centre_values(dataset: SegmentationDataset, index: int) -> list[int]:
    image, _ = dataset[index]  # ((2k+1)·C, H, W)
    values = np.rint(image.numpy() * 255).astype(int)
    assert (values == values[:, :1, :1]).all()  # every channel constant
    return values[:, 0, 0].tolist()


@pytest.mark.parametrize(
    ("index", "count", "k", "expected"),
    [
        (0, 12, 1, [0, 0, 1]),
        (5, 12, 1, [4, 5, 6]),
        (11, 12, 1, [10, 11, 11]),
        (1, 12, 2, [0, 0, 1, 2, 3]),
        (0, 1, 2, [0, 0, 0, 0, 0]),  # a stack of one sees itself
        (3, 12, 0, [3]),
    ],
)
def test_neighbours_replicate_the_edge(index, count, k, expected):
    assert context_indices(index, count, k) == expected


def test_stack_slices_carry_their_neighbours_in_order(tmp_path):
    pairs = _numbered_stack(tmp_path)
    dataset = SegmentationDataset(pairs, RAW, context_slices=1)
    assert _centre_values(dataset, 0) == [0, 0, 1]
    assert _centre_values(dataset, 5) == [4, 5, 6]
    assert _centre_values(dataset, 11) == [10, 11, 11]
    assert _centre_values(SegmentationDataset(pairs, RAW, context_slices=2), 1) == [0, 0, 1, 2, 3]
    assert _centre_values(SegmentationDataset(pairs, RAW), 5) == [5]


def test_neighbours_come_from_the_file_not_the_split(tmp_path):
    pairs = _numbered_stack(tmp_path)
    dataset = SegmentationDataset(pairs[5:6], RAW, context_slices=1)  # page 5 alone
    assert _centre_values(dataset, 0) == [4, 5, 6]


def test_the_mask_is_the_centre_slice_s_only(tmp_path):
    pairs = _numbered_stack(tmp_path)
    dataset = SegmentationDataset(pairs, RAW, context_slices=1)
    for index in (0, 5, 6, 11):
        _, mask = dataset[index]
        assert mask.shape == (8, 8)
        assert (mask.numpy() == index % 2).all()


def test_a_folder_of_numbered_slices_is_a_series(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    pairs = []
    for n in (0, 1, 2, 3, 10):  # "10" after "3": numeric order, gaps ignored
        name = f"{n:02d}.png"
        cv2.imwrite(str(tmp_path / "images" / name), np.full((8, 8), n, np.uint8))
        cv2.imwrite(str(tmp_path / "masks" / name), np.zeros((8, 8), np.uint8))
        pairs.append(Pair(tmp_path / "images" / name, tmp_path / "masks" / name))
    dataset = SegmentationDataset(pairs, RAW, context_slices=1)
    assert [_centre_values(dataset, i) for i in range(5)] == [
        [0, 0, 1],
        [0, 1, 2],
        [1, 2, 3],
        [2, 3, 10],
        [3, 10, 10],
    ]


def test_a_2d_image_without_neighbours_is_an_error(tmp_path):
    root = make_synthetic(tmp_path / "data", 2, sizes=((16, 16),))
    (root / "images" / "cat.png").write_bytes((root / "images" / "000.png").read_bytes())
    pairs = [Pair(root / "images" / "000.png", root / "masks" / "000.png")]
    with pytest.raises(DataError, match=r"000\.png: data\.context_slices=1 .*numbered slices"):
        SegmentationDataset(pairs, RAW, context_slices=1)
    SegmentationDataset(pairs, RAW)  # without context nothing changes


def test_every_block_is_normalised_with_the_stored_statistics(tmp_path):
    pairs = _numbered_stack(tmp_path)
    stored = NormalizationOptions(mean=[4 / 255], std=[2 / 255], clip_percentiles=None)
    image, _ = SegmentationDataset(pairs, stored, context_slices=1)[5]
    np.testing.assert_allclose(image[:, 0, 0].numpy(), [0.0, 0.5, 1.0], atol=1e-5)
    rgb = NormalizationOptions(mean=[0.1, 0.2, 0.3], std=[1.0, 2.0, 3.0], clip_percentiles=None)
    tiled = expand_normalization(rgb, 3, 3)
    assert tiled.mean == [0.1, 0.2, 0.3] * 3 and tiled.std == [1.0, 2.0, 3.0] * 3
    assert expand_normalization(rgb, 1, 3) is rgb
    imagenet = expand_normalization(NormalizationOptions(mode="imagenet"), 3, 1)
    assert imagenet.mode == "dataset" and len(imagenet.mean or []) == 3


def test_augmentation_moves_every_slice_alike(tmp_path):
    """Page p = pattern + p: after any geometry, every channel is the centre + a constant."""
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    pattern = np.random.default_rng(0).integers(0, 200, (48, 48), dtype=np.uint8)
    pages = np.stack([pattern + p for p in range(6)])
    tifffile.imwrite(tmp_path / "images" / "v.tif", pages, photometric="minisblack")
    tifffile.imwrite(tmp_path / "masks" / "v.tif", (pages > 100).astype(np.uint8))
    pairs = [
        Pair(tmp_path / "images" / "v.tif", tmp_path / "masks" / "v.tif", page=p) for p in range(6)
    ]
    ops = [
        {"name": "HorizontalFlip", "p": 0.5},
        {"name": "RandomRotate90", "p": 1.0},
        {"name": "Affine", "rotate": [-30, 30], "scale": [0.8, 1.2], "p": 1.0},
        {"name": "ElasticTransform", "alpha": 50, "sigma": 5, "p": 1.0},
    ]
    augmentation = AugmentationOptions(preset="none", ops=ops, patch_size=32)
    dataset = SegmentationDataset(pairs, RAW, augmentation=augmentation, seed=0, context_slices=2)
    for index in range(6):
        image, mask = dataset[index]
        assert image.shape == (5, 32, 32) and mask.shape == (32, 32)
        shifts = (image - image[2]).numpy() * 255
        offsets = [min(max(index + d, 0), 5) - index for d in range(-2, 3)]
        np.testing.assert_allclose(
            shifts, np.broadcast_to(np.array(offsets)[:, None, None], shifts.shape), atol=1e-3
        )


def test_a_series_is_read_once_with_context(tmp_path):
    reads: list[int] = []

    def read(i: int) -> np.ndarray:
        reads.append(i)
        return np.full((2, 2, 1), i, np.uint8)

    stacked = [image[0, 0].tolist() for image in iter_with_context(4, read, 1)]
    assert stacked == [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 3]]
    assert reads == [0, 1, 2, 3]


def test_neighbour_pairs_point_at_neighbour_pages(tmp_path):
    pairs = _numbered_stack(tmp_path, pages=3)
    (first,) = context_pairs(pairs[:1], 1)
    assert [p.page for p in first] == [0, 0, 1]
    assert {p.mask for p in first} == {pairs[0].mask}


def test_the_model_takes_every_slice_s_channels(tmp_path):
    root = make_synthetic(tmp_path / "data", 12, sizes=((40, 48),), stack_slices=12)
    recipe = tiny_recipe(data={"root": str(root), "context_slices": 1})
    prepared = prepare_data(config_from_dict(recipe))
    assert prepared.config.model.in_channels == 3
    assert prepared.config.data.normalization.channels == 1  # stored for one slice
    recipe = tiny_recipe(data={"root": str(root), "context_slices": 9})
    with pytest.raises(ConfigError, match="context_slices"):
        config_from_dict(recipe)
