"""Augmentation presets and custom lists keep image and mask aligned; foreground oversampling works.

Alignment trick: the image's channels hold each pixel's source coordinates (y, x) and a validity
channel of ones. Bilinear interpolation reproduces a linear coordinate field exactly, so after
any geometric step the image tells where each output pixel was sampled; the mask (nearest
neighbour) must then hold the label of that place. Labels are 8×8 blocks, and a pixel is checked
only where every source pixel within 1.2 pixels of the sample point carries the same label (and
the validity channel shows no blending with the border fill): each interpolating step rounds
the mask's sample position by up to half a pixel, so two chained warps (affine, then elastic)
may legitimately differ by about one pixel.
"""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest

from drunet.datasets import (
    ALLOWED_OPS,
    AUGMENTATION_PRESETS,
    AugmentationOptions,
    build_train_transform,
    seed_transform,
)

# Each list chains at most two interpolating steps, and at most one that is not affine: the
# coordinate image stays exactly linear only through affine warps (see the module docstring).
CUSTOM = {
    "custom-affine": [
        {"name": "Transpose", "p": 0.5},
        {"name": "ShiftScaleRotate", "shift_limit": 0.1, "scale_limit": 0.2, "rotate_limit": 20},
        {"name": "GaussianBlur", "p": 1.0},
    ],
    "custom-rotate": [{"name": "Rotate", "limit": 40, "p": 1.0}, {"name": "RandomGamma"}],
    "custom-elastic": [
        {"name": "ElasticTransform", "alpha": 1000, "sigma": 20, "p": 1.0},
        {"name": "MotionBlur", "p": 1.0},
    ],
    "custom-grid": [{"name": "VerticalFlip"}, {"name": "GridDistortion", "p": 1.0}],
}


def _coordinates(height: int, width: int) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([ys, xs, np.ones_like(ys)], axis=2)  # (H, W, 3)


def _labels(ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    return (ys // 8 + 2 * (xs // 8)) % 5


def _geometry_only(transform: A.Compose) -> A.Compose:
    for step in transform.transforms:
        if isinstance(step, A.ImageOnlyTransform):
            step.p = 0.0  # intensity steps never touch the mask; they would hide the coordinates
    return transform


def _assert_aligned(image: np.ndarray, mask: np.ndarray, height: int, width: int) -> float:
    """Check the mask against the sampled coordinates; return the share of pixels checked."""
    sy, sx, valid = image[..., 0], image[..., 1], image[..., 2]

    def block(values: np.ndarray, size: int) -> np.ndarray:
        return np.clip(values, 0, size - 1) // 8

    same_y = block(np.floor(sy - 1.2), height) == block(np.ceil(sy + 1.2), height)
    same_x = block(np.floor(sx - 1.2), width) == block(np.ceil(sx + 1.2), width)
    checked = same_y & same_x & (np.abs(valid - 1) < 1e-4)
    expected = _labels(np.clip(np.round(sy), 0, height - 1), np.clip(np.round(sx), 0, width - 1))
    np.testing.assert_array_equal(mask[checked], expected[checked])
    return float(checked.mean())


@pytest.mark.parametrize("ops", [*AUGMENTATION_PRESETS, *CUSTOM])
@pytest.mark.parametrize(("height", "width"), [(60, 70), (20, 45)])
def test_mask_follows_the_image_through_presets_and_custom_lists(ops, height, width):
    options = (
        AugmentationOptions(ops=CUSTOM[ops], patch_size=32)
        if ops in CUSTOM
        else AugmentationOptions(preset=ops, patch_size=32)
    )
    transform = _geometry_only(build_train_transform(options))
    image = _coordinates(height, width)
    ys, xs = np.mgrid[0:height, 0:width]
    mask = _labels(ys, xs).astype(np.uint8)
    outcomes, checked = set(), []
    for seed in range(12):
        seed_transform(transform, seed)
        out = transform(image=image, mask=mask)
        assert out["image"].shape == (32, 32, 3) and out["mask"].shape == (32, 32)
        checked.append(_assert_aligned(out["image"], out["mask"], height, width))
        outcomes.add(out["image"][..., :2].round(2).tobytes())
    assert np.mean(checked) > 0.15  # many pixels were really compared
    assert len(outcomes) > 6  # and the augmentation really varies


def test_intensity_steps_change_the_image_but_never_the_mask():
    transform = build_train_transform(AugmentationOptions(preset="strong", patch_size=24))
    rng = np.random.default_rng(0)
    image = rng.random((40, 40, 1)).astype(np.float32)
    mask = np.zeros((40, 40), np.uint8)
    mask[10:30, 5:25] = 2
    seen_values = set()
    for seed in range(20):
        seed_transform(transform, seed)
        out = transform(image=image, mask=mask)
        seen_values |= set(np.unique(out["mask"]).tolist())
    assert seen_values <= {0, 2}


def test_ignore_index_fills_the_border_of_geometric_steps():
    ops = [{"name": "Affine", "rotate": (45, 45), "scale": (0.6, 0.6), "p": 1.0}]
    transform = build_train_transform(AugmentationOptions(ops=ops, patch_size=32), ignore_index=255)
    seed_transform(transform, 0)
    out = transform(image=_coordinates(32, 32), mask=np.ones((32, 32), np.uint8))
    outside = out["image"][..., 2] == 0  # pure fill, no image pixel involved
    assert outside.any()
    assert np.all(out["mask"][outside] == 255)
    assert np.all(out["image"][..., 2][out["mask"] == 255] < 1)  # never a real pixel
    assert set(np.unique(out["mask"]).tolist()) == {1, 255}


def test_small_images_are_padded_with_ignore_when_set():
    transform = build_train_transform(AugmentationOptions(preset="none", patch_size=16), 255)
    out = transform(image=np.ones((8, 8, 1), np.float32), mask=np.ones((8, 8), np.uint8))
    assert out["mask"].shape == (16, 16)
    assert (out["mask"] == 255).sum() == 16 * 16 - 64
    assert np.all(out["image"][out["mask"] == 255] == 0)


def _patches(mask: np.ndarray, share: float, n: int = 200, size: int = 32) -> list[np.ndarray]:
    options = AugmentationOptions(preset="none", patch_size=size, foreground_share=share)
    transform = build_train_transform(options, ignore_index=255)
    seed_transform(transform, 5)
    image = np.zeros((*mask.shape, 1), np.float32)
    return [transform(image=image, mask=mask)["mask"] for _ in range(n)]


def _sparse_mask() -> np.ndarray:
    mask = np.zeros((128, 128), np.uint8)
    mask[100:103, 20:23] = 1  # 9 of 16384 pixels
    return mask


def test_every_patch_holds_foreground_with_share_one():
    patches = _patches(_sparse_mask(), share=1.0)
    assert all(p.any() for p in patches)
    assert all(p[14:19, 14:19].any() for p in patches[:50])  # centred on the blob


def test_share_zero_samples_patches_uniformly():
    rng = np.random.default_rng(1)
    mask = (rng.random((128, 128)) < 0.03).astype(np.uint8)
    fractions = [p.mean() for p in _patches(mask, share=0.0)]
    assert np.mean(fractions) == pytest.approx(mask.mean(), abs=0.004)
    sparse = [p.any() for p in _patches(_sparse_mask(), share=0.0)]
    assert np.mean(sparse) < 0.25  # (32 + 2)² / 97² ≈ 0.12 of uniform crops meet the blob


def test_half_share_lies_between():
    hits = np.mean([p.any() for p in _patches(_sparse_mask(), share=0.5)])
    assert 0.45 < hits < 0.7  # 0.5 + 0.5 × 0.12 expected


def test_ignored_pixels_are_not_foreground():
    mask = np.zeros((128, 128), np.uint8)
    mask[0:3, 0:3] = 255
    hits = np.mean([(p == 255).any() for p in _patches(mask, share=1.0)])
    assert hits < 0.25  # no foreground at all: uniform crops, not centred on the ignore block


def test_same_seed_same_patches():
    transform = build_train_transform(AugmentationOptions(preset="strong", patch_size=16))
    image = np.random.default_rng(0).random((40, 30, 2)).astype(np.float32)
    mask = np.zeros((40, 30), np.uint8)

    def draw() -> list[np.ndarray]:
        seed_transform(transform, 9)
        return [transform(image=image, mask=mask)["image"] for _ in range(3)]

    first, again = draw(), draw()
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))


def test_unknown_step_lists_the_allowed_ones():
    with pytest.raises(
        ValueError, match=r"ops\[1\]: unknown augmentation 'Mosaic'; allowed: "
    ) as info:
        AugmentationOptions(ops=[{"name": "HorizontalFlip"}, {"name": "Mosaic"}])
    assert all(name in str(info.value) for name in ALLOWED_OPS)


@pytest.mark.parametrize(
    ("op", "match"),
    [
        ({"name": "Affine", "rotation": 10}, r"unknown argument\(s\) \['rotation'\]"),
        ({"name": "HorizontalFlip", "p": 1.5}, r"p must be a probability"),
        ({"p": 0.5}, r"must be a mapping with a 'name'"),
    ],
)
def test_bad_steps_are_explained(op, match):
    with pytest.raises(ValueError, match=match):
        AugmentationOptions(ops=[op])


def test_interpolated_masks_are_refused():
    options = AugmentationOptions(ops=[{"name": "Rotate", "mask_interpolation": 1}])
    with pytest.raises(ValueError, match="mask_interpolation must be nearest"):
        build_train_transform(options)


def test_bad_argument_values_name_the_step():
    options = AugmentationOptions(ops=[{"name": "Affine", "rotate": "a lot"}])
    with pytest.raises(ValueError, match=r"ops\[0\] \(Affine\): invalid arguments"):
        build_train_transform(options)


def test_ops_alone_replace_the_preset_and_extend_an_explicit_one():
    ops = [{"name": "Transpose", "p": 1.0}]
    alone = build_train_transform(AugmentationOptions(ops=ops, patch_size=8))
    assert [type(t).__name__ for t in alone.transforms][2:] == ["Transpose"]
    both = build_train_transform(AugmentationOptions(preset="light", ops=ops, patch_size=8))
    names = [type(t).__name__ for t in both.transforms][2:]
    assert names == [op["name"] for op in AUGMENTATION_PRESETS["light"]] + ["Transpose"]
    default = build_train_transform(AugmentationOptions(patch_size=8))
    assert len(default.transforms) == 2 + len(AUGMENTATION_PRESETS["light"])
