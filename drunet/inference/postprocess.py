"""Probabilities → class-index mask, and the mask clean-ups users ask for.

Order of operations (each optional except the first):

1. **threshold** — binary models: foreground where ``p > threshold`` (0.5 = the training
   metrics' rule ``logit > 0``); multi-class models take the most probable class.
2. the clean-ups of :mod:`drunet.cleanup`: remove small objects (``min_size``), fill holes,
   keep the largest component, empty a prediction of fewer than ``empty_below`` foreground
   pixels.

A clean-up left ``None`` in :class:`PostprocessOptions` is the one stored with the weights
(``postprocess`` in the run's configuration: chosen on the validation split at the end of
training, see :mod:`drunet.plan.postprocess`), and none when none is stored; ``0`` / ``False``
turns it off.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from drunet.cleanup import Cleanup, clean
from drunet.errors import OptionError


@dataclass
class Prediction:
    """A class-index mask ``(H, W)`` and, when asked for, the probabilities ``(K, H, W)``."""

    mask: np.ndarray
    probabilities: np.ndarray | None = None


@dataclass(frozen=True)
class PostprocessOptions:
    """See the module docstring; the defaults change nothing beyond ``p > 0.5`` / argmax and
    the clean-ups stored with the weights."""

    threshold: float = 0.5
    min_size: int | None = None
    fill_holes: bool | None = None
    largest_component: bool | None = None
    empty_below: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold < 1.0:
            raise OptionError(
                f"threshold must be in [0, 1) (a foreground probability), got {self.threshold}"
            )
        for name in ("min_size", "empty_below"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise OptionError(f"{name} must be >= 0 pixels, got {value}")

    def resolved(self, stored: Cleanup) -> PostprocessOptions:
        """These options with every clean-up left ``None`` taken from ``stored``."""
        given = {k: getattr(stored, k) for k in _STEPS if getattr(self, k) is None}
        return replace(self, **given)

    @property
    def cleanup(self) -> Cleanup:
        """The clean-ups to run (``None`` counts as off)."""
        return Cleanup(
            min_size=self.min_size or 0,
            fill_holes=bool(self.fill_holes),
            largest_component=bool(self.largest_component),
            empty_below=self.empty_below or 0,
        )

    @property
    def changes_mask(self) -> bool:
        """True when a clean-up step is on."""
        return self.cleanup.changes_mask


_STEPS = ("min_size", "fill_holes", "largest_component", "empty_below")


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
    """Apply the clean-ups of ``options`` to an ``(H, W)`` class-index mask (a new array)."""
    return clean(mask, options.cleanup)
