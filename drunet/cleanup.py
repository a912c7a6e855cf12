"""Mask clean-ups on ``(H, W)`` class-index masks, shared by prediction (``drunet.inference``
applies them after the threshold) and training (``drunet.plan.postprocess`` chooses them on the
validation split at the end of a run). numpy and scipy only.

The steps, in the order :func:`clean` applies them (each off by default):

1. **remove small objects** — connected components of a class smaller than ``min_size`` pixels
   become background.
2. **fill holes** — background pixels enclosed by one class become that class (pixels of other
   classes inside it are kept).
3. **keep the largest component** — per class, only the largest connected component stays; the
   others become background (nnU-Net's "remove all but the largest component").
4. **empty small predictions** — a mask with fewer than ``empty_below`` foreground pixels in
   total (all classes but 0) becomes all background: for data where many images hold nothing,
   a few scattered pixels on an empty image are more likely noise than an object.

Objects are 8-connected (diagonal neighbours touch); a hole is a 4-connected background region
that does not reach the image border, the matching definition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

_EIGHT = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class Cleanup:
    """Which steps of the module docstring run; the defaults change nothing."""

    min_size: int = 0
    fill_holes: bool = False
    largest_component: bool = False
    empty_below: int = 0

    def __post_init__(self) -> None:
        for name in ("min_size", "empty_below"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 pixels, got {getattr(self, name)}")

    @property
    def changes_mask(self) -> bool:
        """True when a step is on."""
        return (
            self.min_size > 0 or self.fill_holes or self.largest_component or self.empty_below > 0
        )


def clean(mask: np.ndarray, cleanup: Cleanup) -> np.ndarray:
    """Apply the steps of ``cleanup`` to an ``(H, W)`` class-index mask (a new array)."""
    mask = mask.copy()
    if cleanup.min_size > 0:
        remove_small_objects(mask, cleanup.min_size)
    if cleanup.fill_holes:
        fill_holes(mask)
    if cleanup.largest_component:
        keep_largest_component(mask)
    if cleanup.empty_below > 0:
        empty_if_small(mask, cleanup.empty_below)
    return mask


def _classes(mask: np.ndarray) -> list[int]:
    return [int(c) for c in np.unique(mask) if c != 0]


def remove_small_objects(mask: np.ndarray, min_size: int) -> np.ndarray:
    """In place: components of each class with fewer than ``min_size`` pixels → 0."""
    for c in _classes(mask):
        labels, _ = ndimage.label(mask == c, structure=_EIGHT)
        sizes = np.bincount(labels.ravel())
        small = sizes < min_size
        small[0] = False  # label 0 is everything that is not class c
        mask[small[labels]] = 0
    return mask


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """In place: background pixels enclosed by a class take that class."""
    for c in _classes(mask):
        filled = ndimage.binary_fill_holes(mask == c)
        mask[filled & (mask == 0)] = c
    return mask


def keep_largest_component(mask: np.ndarray) -> np.ndarray:
    """In place: per class, every component but the largest (the first on ties) → 0."""
    for c in _classes(mask):
        labels, count = ndimage.label(mask == c, structure=_EIGHT)
        if count <= 1:
            continue
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        mask[(labels != int(sizes.argmax())) & (labels > 0)] = 0
    return mask


def empty_if_small(mask: np.ndarray, empty_below: int) -> np.ndarray:
    """In place: every pixel → 0 when fewer than ``empty_below`` pixels are foreground."""
    if np.count_nonzero(mask) < empty_below:
        mask[...] = 0
    return mask


def object_areas(mask: np.ndarray, ignore_index: int | None = None) -> np.ndarray:
    """Areas (px) of the 8-connected objects of every foreground class of ``mask`` (1-D)."""
    areas = []
    for c in _classes(mask):
        if c == ignore_index:
            continue
        labels, count = ndimage.label(mask == c, structure=_EIGHT)
        if count:
            areas.append(np.bincount(labels.ravel())[1:])
    return np.concatenate(areas) if areas else np.zeros(0, np.int64)
