"""Colours for class-index masks and their overlays on the input image."""

from __future__ import annotations

import numpy as np

# Background black; then distinct, colour-blind-friendly colours (Okabe–Ito) and a few more.
_PALETTE = np.array(
    [
        (0, 0, 0),
        (230, 159, 0),
        (86, 180, 233),
        (0, 158, 115),
        (240, 228, 66),
        (0, 114, 178),
        (213, 94, 0),
        (204, 121, 167),
        (255, 255, 255),
    ],
    dtype=np.uint8,
)


def palette(num_classes: int) -> np.ndarray:
    """``(num_classes, 3)`` RGB colours; repeats with a shift beyond the base palette."""
    index = np.arange(num_classes)
    colours = _PALETTE[index % len(_PALETTE)].astype(np.int32)
    colours[len(_PALETTE) :] = (
        colours[len(_PALETTE) :] + 97 * (index[len(_PALETTE) :, None] // len(_PALETTE))
    ) % 256
    return colours.astype(np.uint8)


def colorize(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """Class-index mask ``(H, W)`` → RGB image ``(H, W, 3)`` uint8."""
    return palette(max(num_classes, int(mask.max()) + 1))[mask]


def to_display(image: np.ndarray) -> np.ndarray:
    """Any image ``(H, W[, C])`` → RGB uint8 for viewing, stretched to its own range."""
    if image.ndim == 2:
        image = image[:, :, None]
    image = image[:, :, :3].astype(np.float32)
    lo, hi = float(image.min()), float(image.max())
    image = (image - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(image)
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.shape[2] == 2:
        image = np.concatenate([image, image[:, :, :1]], axis=2)
    return image.astype(np.uint8)


def overlay(
    image: np.ndarray, mask: np.ndarray, num_classes: int, alpha: float = 0.45
) -> np.ndarray:
    """Blend the coloured mask over the image where the mask is foreground (class > 0)."""
    base = to_display(image).astype(np.float32)
    colours = colorize(mask, num_classes).astype(np.float32)
    blend = np.where((mask > 0)[:, :, None], (1 - alpha) * base + alpha * colours, base)
    return blend.round().astype(np.uint8)
