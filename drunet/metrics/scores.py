"""Dice, IoU, precision and recall from counts, and the per-class result the trainer logs."""

from __future__ import annotations

from dataclasses import dataclass

import torch


def scores_from_counts(
    tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, empty_score: float = 1.0
) -> dict[str, torch.Tensor]:
    """Dice, IoU, precision and recall from counts of any (equal) shape, e.g. ``(C,)``.

    Returns float64 tensors of that shape under the keys ``dice``, ``iou``, ``precision`` and
    ``recall``. A zero denominator gives ``empty_score`` (the empty rule of :mod:`drunet.metrics`).
    """
    if not 0.0 <= empty_score <= 1.0:
        raise ValueError(f"empty_score must be in [0, 1]; got {empty_score}")
    # float64: float32 counts are exact only up to 2**24 pixels, a few hundred images.
    tp, fp, fn = (x.to(torch.float64) for x in (tp, fp, fn))

    def ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
        empty = torch.full_like(den, empty_score)
        return torch.where(den > 0, num / den.clamp_min(1), empty)

    return {
        "dice": ratio(2 * tp, 2 * tp + fp + fn),
        "iou": ratio(tp, tp + fp + fn),
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
    }


@dataclass(frozen=True)
class SegmentationScores:
    """Per-class scores (list index = class; background is 0) and their foreground means.

    The means average the foreground classes ``1..C-1`` (background is excluded; binary, with
    ``C == 2``, is simply the foreground class) or, for multilabel, every channel.
    ``reduction`` says how they were computed (see :mod:`drunet.metrics`); ``"macro"``, the
    default, is the mean of the per-class scores listed here, empty classes counting as
    ``empty_score``.
    """

    dice: list[float]
    iou: list[float]
    precision: list[float]
    recall: list[float]
    mean_dice: float
    mean_iou: float
    mean_precision: float
    mean_recall: float
    reduction: str = "macro"

    def as_dict(self) -> dict[str, float]:
        """Flat mapping for logging: the means ``dice``, ``iou``, ``precision``, ``recall``,
        then ``dice_<c>`` and ``iou_<c>`` per class."""
        out = {
            "dice": self.mean_dice,
            "iou": self.mean_iou,
            "precision": self.mean_precision,
            "recall": self.mean_recall,
        }
        out.update({f"dice_{c}": v for c, v in enumerate(self.dice)})
        out.update({f"iou_{c}": v for c, v in enumerate(self.iou)})
        return out


def scores_from_matrix(matrix: torch.Tensor, empty_score: float = 1.0) -> SegmentationScores:
    """:class:`SegmentationScores` (``reduction="macro"``) from a ``(C, C)`` confusion matrix
    (rows = target)."""
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2:
        raise ValueError(
            f"expected a (C, C) confusion matrix with C >= 2; got {tuple(matrix.shape)}"
        )
    tp = matrix.diagonal()
    fp = matrix.sum(dim=0) - tp  # predicted as c, truly another class
    fn = matrix.sum(dim=1) - tp  # truly c, predicted as another class
    per_class = scores_from_counts(tp, fp, fn, empty_score)
    means = {k: v[1:].mean().item() for k, v in per_class.items()}  # foreground only
    return per_class_scores(per_class, means, "macro")


def per_class_scores(
    per_class: dict[str, torch.Tensor], means: dict[str, float], reduction: str
) -> SegmentationScores:
    """Assemble :class:`SegmentationScores` from ``(C,)`` tensors and the four means."""
    lists = {k: v.tolist() for k, v in per_class.items()}
    return SegmentationScores(
        dice=lists["dice"],
        iou=lists["iou"],
        precision=lists["precision"],
        recall=lists["recall"],
        mean_dice=means["dice"],
        mean_iou=means["iou"],
        mean_precision=means["precision"],
        mean_recall=means["recall"],
        reduction=reduction,
    )
