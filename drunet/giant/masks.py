"""Giant masks compared region by region: confusion counts, no whole mask held.

Two :class:`~drunet.giant.regions.RegionSource` s (the prediction and the reference mask) are
read band by band; each band adds the counts of its ``(reference value, predicted value)``
pairs. Only at the end, knowing every value of both files, are the rules of
:mod:`drunet.datasets.masks` applied as for a mask read whole — a file whose values are a
subset of {0, 255} holding 255 is a 0/255 mask (255 → 1; never for the reference when
``ignore_index`` is 255), fractional or negative values are refused — and the pairs fold into
the ``C × C`` confusion matrix that :mod:`drunet.evaluation.giant` scores. So the scores equal
those of ``drunet evaluate --pred --truth`` on files that fit in memory.

Not streamed: HD95 (a distance transform of the whole mask), colour-coded and palette masks
(a giant mask is one channel of class indices). Memory: two bands of ``rows × W`` pixels.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import torch

from drunet.datasets import MaskOptions
from drunet.errors import DataError
from drunet.giant.regions import RegionSource

BAND_ROWS = 1024
_SHIFT = 1 << 32  # pair key = reference · 2³² + prediction (values below 2³² after the checks)


def value_pairs(
    prediction: RegionSource, reference: RegionSource, band_rows: int = BAND_ROWS
) -> Counter[tuple[int, int]]:
    """Pixel counts of every ``(reference value, predicted value)`` pair, read band by band."""
    for source, what in ((prediction, "prediction"), (reference, "mask")):
        if source.channels != 1:
            raise DataError(
                f"{what} {source.path} has {source.channels} channels; a giant mask is one "
                "channel of class indices (colour-coded masks are read whole only)"
            )
    if (prediction.height, prediction.width) != (reference.height, reference.width):
        raise DataError(
            f"prediction {prediction.path} is {prediction.width}×{prediction.height} (W×H) but "
            f"its mask {reference.path} is {reference.width}×{reference.height}; predict at the "
            "mask's size"
        )
    pairs: Counter[tuple[int, int]] = Counter()
    for top in range(0, reference.height, band_rows):
        rows = min(band_rows, reference.height - top)
        truth = _indices(reference.read(top, 0, rows, reference.width)[..., 0], reference)
        pred = _indices(prediction.read(top, 0, rows, prediction.width)[..., 0], prediction)
        keys, counts = np.unique(truth * _SHIFT + pred, return_counts=True)
        for key, count in zip(keys.tolist(), counts.tolist(), strict=True):
            pairs[divmod(key, _SHIFT)] += count
    return pairs


def mask_values(source: RegionSource, band_rows: int = BAND_ROWS) -> set[int]:
    """The distinct values of a one-channel mask, read band by band."""
    values: set[int] = set()
    for top in range(0, source.height, band_rows):
        rows = min(band_rows, source.height - top)
        band = _indices(source.read(top, 0, rows, source.width)[..., 0], source)
        values.update(np.unique(band).tolist())
    return values


def _indices(band: np.ndarray, source: RegionSource) -> np.ndarray:
    """A band as int64 class values; fractional, non-finite, negative or huge ones refused."""
    whole = band.dtype.kind != "f" or (
        np.all(np.isfinite(band)) and np.array_equal(band, np.round(band))
    )
    if not whole:
        raise DataError(f"cannot use mask {source.path}: it holds fractional values")
    values = band.astype(np.int64)
    if values.size and (values.min() < 0 or values.max() >= _SHIFT):
        raise DataError(f"cannot use mask {source.path}: values outside 0 … 2³²-1")
    return values


def _binary_255(values: set[int], allowed: bool) -> bool:
    """The 0/255 rule of :mod:`drunet.datasets.masks` on a file's distinct values."""
    return allowed and 255 in values and values <= {0, 255}


def confusion_of(
    pairs: Counter[tuple[int, int]],
    num_classes: int,
    mask_options: MaskOptions | None = None,
    names: tuple[Path, Path] = (Path("prediction"), Path("mask")),
) -> torch.Tensor:
    """``(C, C)`` int64 counts, row = reference class, of :func:`value_pairs` (module rules)."""
    options = mask_options or MaskOptions()
    ignore = options.ignore_index
    truth_255 = _binary_255({t for t, _ in pairs}, options.binary_255 and ignore != 255)
    pred_255 = _binary_255({p for _, p in pairs}, True)
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)
    for (truth, pred), count in sorted(pairs.items()):
        if ignore is not None and truth == ignore:
            continue
        truth = 1 if truth_255 and truth == 255 else truth
        pred = 1 if pred_255 and pred == 255 else pred
        for value, path in ((truth, names[1]), (pred, names[0])):
            if value >= num_classes:
                raise DataError(
                    f"{path} holds value {value} outside the classes 0…{num_classes - 1}; "
                    "pass --classes N when the truth masks lack a class, or fix the file"
                )
        matrix[truth, pred] += count
    return matrix


def classes_of(
    pairs: Counter[tuple[int, int]] | set[int], mask_options: MaskOptions | None = None
) -> int:
    """The reference's largest class (``ignore_index`` aside) plus one, at least 2, from
    :func:`value_pairs` or the reference's :func:`mask_values`."""
    options = mask_options or MaskOptions()
    found = {t for t, _ in pairs} if isinstance(pairs, Counter) else set(pairs)
    truths = {t for t in found if t != options.ignore_index}
    if _binary_255(found, options.binary_255 and options.ignore_index != 255):
        truths = {1 if t == 255 else t for t in truths}
    return max(truths | {1}) + 1
