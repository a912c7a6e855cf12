"""Boundary distances between a predicted and a reference mask: the 95th-percentile Hausdorff
distance (HD95), in pixels, computed with scipy's exact Euclidean distance transform.

For one class, the boundary of a mask is its pixels with a 4-neighbour outside it (or on the
image border). Every boundary pixel of the prediction has a distance to the nearest boundary
pixel of the reference, and the other way round; HD95 is the larger of the two 95th percentiles
(linear interpolation) — MONAI's ``HausdorffDistanceMetric(percentile=95)`` definition. With
``percentile=100`` it is the classic Hausdorff distance.

Empty masks: both empty → 0.0 (nothing to find, nothing found); exactly one empty → NaN, since
no distance is defined. Means over images skip NaN and say how many were skipped.

``spacing=(sy, sx)`` measures in physical units (the pixel's height and width, e.g. mm): the
distance transform is sampled at that spacing, so anisotropic pixels are measured exactly.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage


def boundary(mask: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool → its boundary pixels (4-connectivity, image border counts as outside)."""
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


Spacing = tuple[float, float]


def hausdorff(
    prediction: np.ndarray,
    reference: np.ndarray,
    percentile: float = 95.0,
    spacing: Spacing | None = None,
) -> float:
    """Symmetric percentile Hausdorff distance between two ``(H, W)`` bool masks, in pixels
    or, with ``spacing=(sy, sx)``, in the spacing's unit."""
    if prediction.shape != reference.shape:
        raise ValueError(
            f"prediction {prediction.shape} and reference {reference.shape} differ in shape"
        )
    prediction, reference = prediction.astype(bool), reference.astype(bool)
    has_prediction, has_reference = prediction.any(), reference.any()
    if not has_prediction and not has_reference:
        return 0.0
    if not has_prediction or not has_reference:
        return math.nan
    edge_p, edge_r = boundary(prediction), boundary(reference)
    to_reference = ndimage.distance_transform_edt(~edge_r, sampling=spacing)[edge_p]
    to_prediction = ndimage.distance_transform_edt(~edge_p, sampling=spacing)[edge_r]
    return float(
        max(np.percentile(to_reference, percentile), np.percentile(to_prediction, percentile))
    )


def hd95_per_class(
    prediction: np.ndarray,
    reference: np.ndarray,
    num_classes: int,
    ignore_index: int | None = None,
    spacing: Spacing | None = None,
) -> list[float]:
    """HD95 of every class ``0..num_classes-1`` of two ``(H, W)`` class-index masks.

    Pixels whose reference is ``ignore_index`` belong to no class in either mask.
    """
    keep = reference != ignore_index if ignore_index is not None else True
    return [
        hausdorff((prediction == c) & keep, (reference == c) & keep, spacing=spacing)
        for c in range(num_classes)
    ]
