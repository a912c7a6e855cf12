"""Augmentations (albumentations 2.0): random aligned patches for training, none for validation.

``build_train_transform(options)`` is the configurable pipeline: pad to the patch size, crop a
patch (a share of them centred on foreground), then the preset's steps and the user's ops. Image and
mask always go through the same geometry; masks are never interpolated (nearest neighbour), and
pixels that a rotation or shift brings in from outside the image are mirrored from the image
(``BORDER_REFLECT_101``) — or, when an ``ignore_index`` is set, filled with 0 in the image and
``ignore_index`` in the mask so that losses skip them.
"""

from __future__ import annotations

import inspect
import random
import warnings
from typing import Any

import albumentations as A
import cv2
import numpy as np
from albumentations.augmentations.crops.transforms import BaseCrop

from drunet.datasets.options import GEOMETRIC_OPS, AugmentationOptions, check_op

_FLIPS = [
    {"name": "HorizontalFlip", "p": 0.5},
    {"name": "VerticalFlip", "p": 0.5},
    {"name": "RandomRotate90", "p": 1.0},
]
AUGMENTATION_PRESETS: dict[str, list[dict[str, Any]]] = {
    "none": [],
    "light": [
        *_FLIPS,
        {
            "name": "RandomBrightnessContrast",
            "brightness_limit": 0.1,
            "contrast_limit": 0.1,
            "p": 0.3,
        },
    ],
    "strong": [
        *_FLIPS,
        {
            "name": "Affine",
            "scale": (0.85, 1.15),
            "rotate": (-30, 30),
            "translate_percent": (-0.05, 0.05),
            "p": 0.5,
        },
        {"name": "ElasticTransform", "alpha": 1000, "sigma": 20, "p": 0.2},  # ~2.5 px shifts
        {
            "name": "RandomBrightnessContrast",
            "brightness_limit": 0.2,
            "contrast_limit": 0.2,
            "p": 0.5,
        },
        {"name": "RandomGamma", "gamma_limit": (80, 120), "p": 0.3},
        {"name": "GaussNoise", "std_range": (0.01, 0.05), "p": 0.2},
        {"name": "GaussianBlur", "blur_limit": (3, 5), "p": 0.2},
    ],
}


class ForegroundCrop(BaseCrop):
    """A ``size × size`` crop, centred on a random foreground pixel with ``foreground_share``.

    Foreground is every mask value other than 0 and ``ignore_index``. Otherwise (or when the
    mask holds no foreground) the crop is placed uniformly at random. The input must be at
    least ``size`` on each side (pad first). Centres near the border shift the crop inwards.
    """

    def __init__(
        self,
        size: int,
        foreground_share: float = 0.33,
        ignore_index: int | None = None,
        p: float = 1.0,
    ) -> None:
        super().__init__(p=p)
        self.size = size
        self.foreground_share = foreground_share
        self.ignore_index = ignore_index

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        height, width = params["shape"][:2]
        size = self.size
        if height < size or width < size:
            raise ValueError(f"ForegroundCrop({size}) got a {height}×{width} input; pad it first")
        mask = data.get("mask")
        if mask is not None and self.py_random.random() < self.foreground_share:
            foreground = mask > 0
            if self.ignore_index is not None:
                foreground &= mask != self.ignore_index
            indices = np.flatnonzero(foreground)
            if indices.size:
                y, x = divmod(int(indices[self.py_random.randrange(indices.size)]), width)
                top = min(max(y - size // 2, 0), height - size)
                left = min(max(x - size // 2, 0), width - size)
                return {"crop_coords": (left, top, left + size, top + size)}
        top = self.py_random.randint(0, height - size)
        left = self.py_random.randint(0, width - size)
        return {"crop_coords": (left, top, left + size, top + size)}

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("size", "foreground_share", "ignore_index")


def build_train_transform(
    options: AugmentationOptions, ignore_index: int | None = None
) -> A.Compose:
    """The training pipeline for ``options`` (see the module docstring).

    Call as ``transform(image=(H, W, C) float32 in [0, 1], mask=(H, W) uint8/uint16)``; returns
    ``(P, P, C)`` and ``(P, P)`` arrays, ``P = options.patch_size``. Raises ``ValueError`` naming
    the step if an augmentation cannot be built. Seed it with ``seed_transform``.
    """
    size = options.patch_size
    border = _border(ignore_index)
    steps: list[A.BasicTransform] = [
        A.PadIfNeeded(min_height=size, min_width=size, **border),
        ForegroundCrop(size, options.foreground_share, ignore_index),
    ]
    ops = AUGMENTATION_PRESETS[options.effective_preset] + (options.ops or [])
    steps += [make_op(op, border, f"ops[{i}]") for i, op in enumerate(ops)]
    return A.Compose(steps, mask_interpolation=cv2.INTER_NEAREST)


def make_op(op: dict[str, Any], border: dict[str, Any] | None = None, where: str = "op") -> Any:
    """One albumentations transform from ``{"name": …, **arguments}`` (whitelisted names only).

    Geometric steps get ``border`` (border mode and fills) unless the step sets its own, and
    always nearest-neighbour mask interpolation.
    """
    check_op(op, where)
    name, kwargs = op["name"], {k: v for k, v in op.items() if k != "name"}
    if kwargs.get("mask_interpolation", cv2.INTER_NEAREST) != cv2.INTER_NEAREST:
        raise ValueError(
            f"{where} ({name}): mask_interpolation must be nearest (0): class indices cannot be "
            "interpolated; remove the argument"
        )
    cls = getattr(A, name)
    if name in GEOMETRIC_OPS and border and "border_mode" in _arguments(cls):
        kwargs = {**border, **kwargs}
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="ShiftScaleRotate is a special case")
            return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where} ({name}): invalid arguments {kwargs}: {err}") from None


def _arguments(cls: type) -> set[str]:
    return set(inspect.signature(cls).parameters)


def _border(ignore_index: int | None) -> dict[str, Any]:
    if ignore_index is None:
        return {"border_mode": cv2.BORDER_REFLECT_101}
    return {"border_mode": cv2.BORDER_CONSTANT, "fill": 0, "fill_mask": ignore_index}


def seed_transform(transform: A.Compose, seed: int) -> None:
    """Make ``transform``'s draws reproducible from ``seed``.

    Uses one shared generator for all steps. albumentations 2.0's own ``Compose(seed=…)`` /
    ``set_random_seed`` give every step an identically seeded generator, so the horizontal and
    vertical flips always agree and half of the eight flip/rotation outcomes never occur.
    """
    transform.set_random_state(np.random.default_rng(seed), random.Random(seed))
