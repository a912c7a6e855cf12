"""Per-image measurements behind the fingerprint: structure widths, objects, pixel samples.

Structure width (scipy only, no skeletonisation): for each class, the Euclidean distance
transform ``d`` of its mask (distance from a class pixel to the nearest pixel centre of another
class) is read on its *ridge*, the class pixels where ``d`` is a local maximum of its 3×3
neighbourhood; the width there is ``2·d``. This approximates "twice the distance along the
skeleton" without the skeleton's spurs into corners (which would read small widths on every
wide object). Because ``d`` counts to the nearest outside pixel *centre*, an even width ``w``
reads exactly ``w`` (a 2-px line has ``d = 1`` on both of its pixels) and an odd width reads
``w + 1`` (a 1-px line reads 2); a filled OpenCV disc of radius 10 reads 20.1 (its centre is
√101 px from the nearest pixel centre outside it). The image
border does not bound a structure: a line leaving the image keeps its width.

Objects are 8-connected components of each class (``scipy.ndimage.label``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

_EIGHT = np.ones((3, 3), bool)
SAMPLES_PER_IMAGE = 4096  # ridge widths, object areas and intensity values kept per image


@dataclass
class ClassSamples:
    """What one class showed over the sampled images."""

    pixels: int = 0
    images_with: int = 0  # images where the class occurs
    widths: list[np.ndarray] = field(default_factory=list)  # ridge widths (px)
    areas: list[np.ndarray] = field(default_factory=list)  # component areas (px)
    components: list[int] = field(default_factory=list)  # components per image holding it


def centre_crop(array: np.ndarray, side: int) -> np.ndarray:
    """The centre ``min(H, side) × min(W, side)`` window of ``(H, W, …)``."""
    height, width = array.shape[:2]
    top, left = max((height - side) // 2, 0), max((width - side) // 2, 0)
    return array[top : top + side, left : left + side]


def strided(values: np.ndarray, limit: int = SAMPLES_PER_IMAGE) -> np.ndarray:
    """At most ``limit`` of ``values`` (1-D), evenly strided: deterministic and spread out."""
    if values.size <= limit:
        return values
    return values[:: -(-values.size // limit)]


def ridge_widths(region: np.ndarray) -> np.ndarray:
    """Widths ``2·d`` on the ridge of a boolean ``(H, W)`` region (see the module docstring).

    Empty when the region is empty or covers the whole image (no boundary to measure from).
    """
    if not region.any() or region.all():
        return np.zeros(0)
    distance = ndimage.distance_transform_edt(region)  # (H, W), 0 outside the region
    ridge = region & (distance >= ndimage.maximum_filter(distance, size=3))
    return 2.0 * distance[ridge]


def component_areas(region: np.ndarray) -> np.ndarray:
    """Areas (px) of the 8-connected components of a boolean ``(H, W)`` region."""
    labels, count = ndimage.label(region, structure=_EIGHT)
    if count == 0:
        return np.zeros(0, np.int64)
    return np.bincount(labels.ravel(), minlength=count + 1)[1:]


def measure_mask(
    mask: np.ndarray, num_classes: int, ignore_index: int | None, classes: list[ClassSamples]
) -> np.ndarray:
    """Add one ``(H, W)`` mask of class indices to ``classes`` (one entry per class, grown as
    needed); return its per-class pixel counts ``(K,)`` (ignored pixels left out)."""
    valid = mask if ignore_index is None else mask[mask != ignore_index]
    counts = np.bincount(valid.ravel(), minlength=num_classes)
    while len(classes) < counts.size:
        classes.append(ClassSamples())
    for k, count in enumerate(counts):
        if count == 0:
            continue
        region = mask == k
        samples = classes[k]
        samples.pixels += int(count)
        samples.images_with += 1
        samples.widths.append(strided(ridge_widths(region)))
        if k > 0:  # background "objects" are the gaps between objects: not counted
            areas = component_areas(region)
            samples.components.append(int(areas.size))
            samples.areas.append(strided(areas))
    return counts


def intensity_sample(image: np.ndarray) -> np.ndarray:
    """At most ``SAMPLES_PER_IMAGE`` pixels of a raw ``(H, W, C)`` image as float64 ``(n, C)``,
    evenly strided over the image."""
    flat = image.reshape(-1, image.shape[2])
    step = max(1, -(-flat.shape[0] // SAMPLES_PER_IMAGE))
    return flat[::step].astype(np.float64)


def percentile(values: list[np.ndarray], q: float) -> float | None:
    """The ``q``-th percentile of the concatenated samples (None when there are none)."""
    joined = np.concatenate(values) if values else np.zeros(0)
    return float(np.percentile(joined, q)) if joined.size else None
