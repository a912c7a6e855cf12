"""Augmentations (albumentations 2.0): random aligned patches for training, none for validation."""

from __future__ import annotations

import random

import albumentations as A
import cv2
import numpy as np


def train_transform(patch_size: int) -> A.Compose:
    """Random ``patch_size × patch_size`` patches with flips and 90° rotations.

    Images smaller than the patch are first padded by reflection (``BORDER_REFLECT_101``).
    albumentations 2.0 pads masks with the same border mode (``fill_mask`` only applies to
    ``BORDER_CONSTANT``), so padded labels mirror the padded pixels exactly. Every geometric step
    is exact (crop, flip, rot90: no interpolation), so image and mask stay aligned pixel for pixel
    and images of different sizes in one folder batch together.

    Call as ``transform(image=image, mask=mask)`` with image ``(H, W, C)`` and mask ``(H, W)``;
    the result holds ``(P, P, C)`` and ``(P, P)`` arrays, ``P = patch_size``.
    """
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
        raise ValueError(f"patch_size must be a positive integer, got {patch_size!r}")
    return A.Compose(
        [
            A.PadIfNeeded(
                min_height=patch_size, min_width=patch_size, border_mode=cv2.BORDER_REFLECT_101
            ),
            A.RandomCrop(height=patch_size, width=patch_size),
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.RandomRotate90(p=1.0),
        ]
    )


def seed_transform(transform: A.Compose, seed: int) -> None:
    """Make ``transform``'s draws reproducible from ``seed``.

    Uses one shared generator for all steps. albumentations 2.0's own ``Compose(seed=…)`` /
    ``set_random_seed`` give every step an identically seeded generator, so the horizontal and
    vertical flips always agree and half of the eight flip/rotation outcomes never occur.
    """
    transform.set_random_state(np.random.default_rng(seed), random.Random(seed))


def val_transform() -> None:
    """No transform: validation sees whole images (batch size 1, since sizes may differ)."""
    return None
