"""Probabilities → class-index mask, and the mask clean-ups users ask for.

Order of operations (each optional except the first):

1. **threshold** — binary models: foreground where ``p > threshold`` (0.5 = the training
   metrics' rule ``logit > 0``); multi-class models take the most probable class.
2. **remove small objects** — connected components of a class smaller than ``min_size`` pixels
   become background.
3. **fill holes** — background pixels enclosed by one class become that class (pixels of other
   classes inside it are kept).
4. **keep the largest component** — per class, only the largest connected component stays; the
   others become background (nnU-Net's "remove all but the largest component").

Objects are 8-connected (diagonal neighbours touch); a hole is a 4-connected background region
that does not reach the image border, the matching definition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from drunet.errors import OptionError

_EIGHT = np.ones((3, 3), dtype=bool)


@dataclass
class Prediction:
    """A class-index mask ``(H, W)`` and, when asked for, the probabilities ``(K, H, W)``."""

    mask: np.ndarray
    probabilities: np.ndarray | None = None


@dataclass(frozen=True)
class PostprocessOptions:
    """See the module docstring; the defaults change nothing beyond ``p > 0.5`` / argmax."""

    threshold: float = 0.5
    min_size: int = 0
    fill_holes: bool = False
    largest_component: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold < 1.0:
            raise OptionError(
                f"threshold must be in [0, 1) (a foreground probability), got {self.threshold}"
            )
        if self.min_size < 0:
            raise OptionError(f"min_size must be >= 0 pixels, got {self.min_size}")

    @property
    def changes_mask(self) -> bool:
        """True when a clean-up step (2–4) is on."""
        return self.min_size > 0 or self.fill_holes or self.largest_component


def mask_dtype(num_classes: int) -> type[np.integer]:
    return np.uint8 if num_classes <= 256 else np.uint16


def to_mask(scores: torch.Tensor, num_classes: int, threshold: float = 0.5) -> np.ndarray:
    """``(K', H, W)`` probabilities → ``(H, W)`` class indices (uint8; uint16 past 256 classes).

    Binary models give one row (the foreground probability), others one row per class.
    """
    if scores.shape[0] == 1:
        return (scores[0] > threshold).numpy().astype(np.uint8)
    if threshold != 0.5:
        raise ValueError(
            f"threshold {threshold} applies to binary models only; this model has "
            f"{num_classes} classes and takes the most probable one — drop the threshold"
        )
    return scores.argmax(0).numpy().astype(mask_dtype(num_classes))


def postprocess(mask: np.ndarray, options: PostprocessOptions) -> np.ndarray:
    """Apply steps 2–4 of the module docstring to an ``(H, W)`` class-index mask (a new array)."""
    mask = mask.copy()
    if not options.changes_mask:
        return mask
    if options.min_size > 0:
        remove_small_objects(mask, options.min_size)
    if options.fill_holes:
        fill_holes(mask)
    if options.largest_component:
        keep_largest_component(mask)
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
