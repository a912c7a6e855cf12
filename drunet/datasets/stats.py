"""What a set of pairs tells the model: channels, classes, normalisation and class balance."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from drunet.datasets.folder import Pair, read_pair
from drunet.datasets.io import to_float
from drunet.errors import DataError

log = logging.getLogger(__name__)

MIN_STD = 1e-6  # a constant channel would otherwise divide by zero when normalising


@dataclass(frozen=True)
class DatasetInfo:
    """Summary of a dataset, computed by ``inspect_pairs``.

    ``mean`` / ``std`` are per channel (length ``in_channels``) on ``to_float`` pixels, i.e. in
    [0, 1] units; ``class_frequencies[k]`` is the share of all mask pixels with class ``k``
    (length ``num_classes``, sums to 1); ``sizes`` holds each image's ``(H, W)`` in pair order.
    """

    in_channels: int
    num_classes: int
    mean: list[float]
    std: list[float]
    class_frequencies: list[float]
    sizes: list[tuple[int, int]]

    @property
    def num_images(self) -> int:
        return len(self.sizes)


def inspect_pairs(pairs: Sequence[Pair]) -> DatasetInfo:
    """Read every pair once and summarise it (see ``DatasetInfo``).

    ``num_classes`` is the largest mask value + 1, at least 2. Raises ``DataError`` if an image
    has a different number of channels than the first one, or an image and its mask differ in size.
    """
    if not pairs:
        raise ValueError("inspect_pairs got no pairs; call find_pairs first")
    first_channels = None
    total = 0
    sums = sq_sums = counts = None
    sizes: list[tuple[int, int]] = []
    for pair in pairs:
        image, mask = read_pair(pair)
        height, width, channels = image.shape
        if first_channels is None:
            first_channels = channels
            sums, sq_sums = np.zeros(channels), np.zeros(channels)
            counts = np.zeros(2, dtype=np.int64)
        elif channels != first_channels:
            raise DataError(
                f"image {pair.image} has {channels} channel(s) but {pairs[0].image} has "
                f"{first_channels}; all images of a dataset need the same number of channels — "
                "convert them (e.g. all to grayscale or all to RGB)"
            )
        pixels = to_float(image).reshape(-1, channels)  # (H * W, C)
        sums += pixels.sum(axis=0, dtype=np.float64)
        sq_sums += np.square(pixels).sum(axis=0, dtype=np.float64)
        total += height * width
        labels = np.bincount(mask.ravel())
        if len(labels) > len(counts):
            counts = np.pad(counts, (0, len(labels) - len(counts)))
        counts[: len(labels)] += labels
        sizes.append((height, width))
    mean = sums / total
    std = np.sqrt(np.maximum(sq_sums / total - np.square(mean), 0.0))
    absent = [k for k in range(len(counts)) if counts[k] == 0]
    if absent:
        log.warning(
            "mask classes %s never occur in %d mask(s); check that masks hold class indices "
            "0, 1, 2, … without gaps",
            format_ranges(absent),
            len(pairs),
        )
    return DatasetInfo(
        in_channels=int(first_channels),
        num_classes=len(counts),
        mean=[float(m) for m in mean],
        std=[float(max(s, MIN_STD)) for s in std],
        class_frequencies=[float(c) / total for c in counts],
        sizes=sizes,
    )


def format_ranges(values: list[int]) -> str:
    """``[0, 2, 3, 4, 7]`` → ``"0, 2-4, 7"`` (a 0/65535 mask would otherwise list 65534 values)."""
    runs: list[list[int]] = []
    for value in values:
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
