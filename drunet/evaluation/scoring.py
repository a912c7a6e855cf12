"""Evaluate's reporting rule for scores with nothing to score: absent classes, undefined ratios.

Per class, from pixel counts: Dice, IoU, precision and recall as :mod:`drunet.metrics` defines
them. A class is **absent** where ``tp + fp + fn == 0``: neither the prediction nor the truth
holds it (in that image, or in the summed counts of a reduction). Training validation scores
such a class 1.0 (:mod:`drunet.metrics`' empty rule); ``drunet evaluate`` reports it as absent
instead: its scores are NaN (empty in the CSV files, ``null`` in ``summary.json``) and it is left
out of every mean, so a class nobody drew never lifts a mean. Likewise a precision of a class
never predicted (``tp + fp == 0``) and a recall of a class absent from the truth
(``tp + fn == 0``) are undefined: NaN, left out of the means. With ``absent_as_one`` (the flag
``--absent-as-one``) every such score is 1.0 and enters the means: the training rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from drunet.metrics import scores_from_counts

SCORES = ("dice", "iou", "precision", "recall")
COUNTS = ("tp", "fp", "fn")
Reduction = str  # "micro", "macro", "micro-imagewise" or "macro-imagewise"
REDUCTIONS: tuple[Reduction, ...] = ("micro", "macro", "micro-imagewise", "macro-imagewise")


def class_scores(
    tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, absent_as_one: bool = False
) -> dict[str, np.ndarray]:
    """Scores of counts of any (equal) shape, float64; NaN where the score's denominator is
    zero (see the module), 1.0 there with ``absent_as_one``."""
    scores = scores_from_counts(tp, fp, fn)
    if absent_as_one:
        return {key: scores[key].numpy() for key in SCORES}
    empty = {
        "dice": tp + fp + fn == 0,
        "iou": tp + fp + fn == 0,
        "precision": tp + fp == 0,
        "recall": tp + fn == 0,
    }
    out = {}
    for key in SCORES:
        values = scores[key].numpy().copy()
        values[empty[key].numpy()] = math.nan
        out[key] = values
    return out


def nanmean(values: np.ndarray | Sequence[float]) -> float:
    """The mean of the finite values; NaN when there is none."""
    array = np.asarray(values, dtype=np.float64)
    finite = array[~np.isnan(array)]
    return float(finite.mean()) if finite.size else math.nan


def reduce_counts(
    tp: torch.Tensor,
    fp: torch.Tensor,
    fn: torch.Tensor,
    reduction: Reduction,
    absent_as_one: bool = False,
) -> dict[str, float]:
    """Foreground means of ``(N, K)`` counts (the classes already chosen) by ``reduction``
    (smp's names, as :func:`drunet.metrics.reduce_stats`), absent entries left out."""
    if reduction == "micro":  # sum everything, score once
        parts = class_scores(tp.sum(), fp.sum(), fn.sum(), absent_as_one)
        return {k: float(v) for k, v in parts.items()}
    if reduction == "macro":  # sum over images, score per class, mean over classes
        parts = class_scores(tp.sum(0), fp.sum(0), fn.sum(0), absent_as_one)
        return {k: nanmean(v) for k, v in parts.items()}
    if reduction == "micro-imagewise":  # sum over classes, score per image, mean over images
        parts = class_scores(tp.sum(1), fp.sum(1), fn.sum(1), absent_as_one)
        return {k: nanmean(v) for k, v in parts.items()}
    if reduction == "macro-imagewise":  # score (image, class), mean over classes, then images
        parts = class_scores(tp, fp, fn, absent_as_one)
        return {k: nanmean([nanmean(row) for row in v]) for k, v in parts.items()}
    raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}; got {reduction!r}")


def json_number(value: float) -> float | None:
    """``value`` for ``summary.json``: NaN (absent or undefined) becomes ``null``."""
    return None if math.isnan(value) else float(value)
