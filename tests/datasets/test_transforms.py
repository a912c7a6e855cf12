"""Training augmentation moves image and mask identically and always yields full patches.

Exact steps only here (pad, crop, flips, 90° rotations: no interpolation), so every pixel is
checked; ``test_augmentation.py`` covers the interpolating presets.
"""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest

from drunet.datasets import AugmentationOptions, build_train_transform, seed_transform

FLIPS = [
    {"name": "HorizontalFlip", "p": 0.5},
    {"name": "VerticalFlip", "p": 0.5},
    {"name": "RandomRotate90", "p": 1.0},
]


def flips(patch_size: int) -> A.Compose:
    """Random ``patch_size`` patches with flips and 90° rotations."""
    return build_train_transform(AugmentationOptions(ops=FLIPS, patch_size=patch_size))


def _coordinate_image(height: int, width: int) -> np.ndarray:
    """``(H, W, 3)`` float32: channels hold y, x and a unique id ``y * W + x``."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([ys, xs, ys * width + xs], axis=2)


def _label_of(image: np.ndarray) -> np.ndarray:
    """The known mask function: a class index from each pixel's coordinates."""
    ys, xs = image[..., 0].astype(np.int64), image[..., 1].astype(np.int64)
    return (3 * ys + 5 * xs) % 7


@pytest.mark.parametrize(("height", "width"), [(20, 30), (48, 48), (70, 53), (9, 100)])
def test_mask_follows_the_image_through_every_augmentation(height, width):
    transform = flips(48)
    image = _coordinate_image(height, width)
    mask = _label_of(image)
    seen = set()
    for seed in range(25):
        seed_transform(transform, seed)
        out = transform(image=image, mask=mask)
        assert out["image"].shape == (48, 48, 3) and out["mask"].shape == (48, 48)
        np.testing.assert_array_equal(out["mask"], _label_of(out["image"]))
        seen.add(out["image"][..., 2].tobytes())
    assert len(seen) > 5  # the augmentation really varies


def test_seeded_transform_reaches_all_eight_flips_and_rotations():
    transform = flips(8)
    seed_transform(transform, 0)
    image = _coordinate_image(8, 8)
    outcomes = {transform(image=image)["image"].tobytes() for _ in range(200)}
    assert len(outcomes) == 8  # the dihedral group of the square


def test_padding_reflects_so_padded_labels_are_real_labels():
    image = _coordinate_image(10, 12)
    out = flips(32)(image=image, mask=_label_of(image))
    ids = out["image"][..., 2]
    assert set(np.unique(ids).tolist()) <= set(range(10 * 12))  # no invented pixels
    assert len(np.unique(ids)) == 10 * 12  # every source pixel is still there


def test_mixed_sizes_all_become_patches():
    transform = flips(32)
    for height, width in [(5, 7), (31, 40), (32, 32), (100, 33), (64, 200)]:
        image = np.random.default_rng(0).random((height, width, 1), dtype=np.float32)
        out = transform(image=image, mask=np.zeros((height, width), np.int64))
        assert out["image"].shape == (32, 32, 1)
        assert out["mask"].shape == (32, 32)
