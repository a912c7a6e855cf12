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


# Rows converted at a time: keeps the float temporaries of a 10 000-pixel-wide image near 100 MB.
_BAND_ROWS = 1024


def to_display(image: np.ndarray) -> np.ndarray:
    """Any image ``(H, W[, C])`` → RGB uint8 for viewing, stretched to its own range."""
    if image.ndim == 2:
        image = image[:, :, None]
    image = image[:, :, :3]
    lo, hi = float(image.min()), float(image.max())
    out = np.empty((*image.shape[:2], 3), dtype=np.uint8)
    for top in range(0, image.shape[0], _BAND_ROWS):
        band = image[top : top + _BAND_ROWS].astype(np.float32)
        band = (band - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(band)
        if band.shape[2] == 1:
            band = np.repeat(band, 3, axis=2)
        elif band.shape[2] == 2:
            band = np.concatenate([band, band[:, :, :1]], axis=2)
        out[top : top + _BAND_ROWS] = band.astype(np.uint8)
    return out


def overlay(
    image: np.ndarray, mask: np.ndarray, num_classes: int, alpha: float = 0.45
) -> np.ndarray:
    """Blend the coloured mask over the image where the mask is foreground (class > 0)."""
    out = to_display(image)  # blended in place, band by band
    colours = palette(max(num_classes, int(mask.max()) + 1)).astype(np.float32)
    for top in range(0, mask.shape[0], _BAND_ROWS):
        rows = slice(top, top + _BAND_ROWS)
        base, band = out[rows].astype(np.float32), mask[rows]
        blend = (1 - alpha) * base + alpha * colours[band]
        out[rows] = np.where((band > 0)[:, :, None], blend, base).round().astype(np.uint8)
    return out
