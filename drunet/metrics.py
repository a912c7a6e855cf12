"""Segmentation metrics from a confusion matrix accumulated over a whole data set.

Scores are *micro* averages: true/false positives and false negatives are summed over every pixel
of every image first (:class:`ConfusionMeter`), and Dice, IoU, precision and recall are computed
once from those sums — not averaged per image.

Per class ``c``, with ``tp``, ``fp``, ``fn`` its pixel counts::

    dice = 2·tp / (2·tp + fp + fn)      iou = tp / (tp + fp + fn)
    precision = tp / (tp + fp)          recall = tp / (tp + fn)

**Empty rule.** When a denominator is zero the score is ``empty_score`` (default ``1.0``). For
Dice and IoU that happens exactly when the class is absent from both the prediction and the ground
truth: nothing to find and nothing found is a perfect result. A class absent from the ground truth
but predicted somewhere scores 0. (Precision's denominator is zero when the class is never
predicted, recall's when it is absent from the ground truth; they follow the same rule.) This is
``segmentation_models_pytorch.metrics`` with ``zero_division=1``.

Pixels whose target equals ``ignore_index`` are skipped entirely.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "ConfusionMeter",
    "SegmentationScores",
    "confusion_matrix",
    "logits_to_labels",
    "scores_from_counts",
    "scores_from_matrix",
]


def logits_to_labels(logits: torch.Tensor) -> torch.Tensor:
    """Hard labels from logits: ``(N, C, H, W) → (N, H, W)`` int64.

    ``C == 1``: foreground where the logit is > 0 (probability > 0.5). ``C >= 2``: argmax.
    """
    if logits.ndim != 4:
        raise ValueError(f"expected logits of shape (N, C, H, W); got {tuple(logits.shape)}")
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(dim=1)


def _check_labels(name: str, labels: torch.Tensor, num_classes: int, skip: torch.Tensor) -> None:
    if labels.is_floating_point() or labels.is_complex():
        raise ValueError(
            f"{name} must hold integer class indices, got dtype {labels.dtype}; "
            "convert logits with logits_to_labels()"
        )
    bad = ((labels < 0) | (labels >= num_classes)) & ~skip
    if bool(bad.any()):
        values = torch.unique(labels[bad]).tolist()[:10]
        raise ValueError(
            f"{name} values {values} are outside the classes 0..{num_classes - 1}"
            + (" and are not ignore_index" if name == "target" else "")
        )


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None
) -> torch.Tensor:
    """Pixel counts ``(num_classes, num_classes)`` int64: row = target class, column = predicted.

    ``pred`` and ``target`` are integer label maps of the same shape, usually ``(N, H, W)``.
    ``num_classes`` counts background (binary is 2). Pixels whose target is ``ignore_index`` are
    skipped whatever their prediction.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2 (binary is 2); got {num_classes}")
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape; got pred {tuple(pred.shape)} and "
            f"target {tuple(target.shape)}"
        )
    if ignore_index is not None and 0 <= ignore_index < num_classes:
        raise ValueError(
            f"ignore_index={ignore_index} is a real class (classes are 0..{num_classes - 1}); "
            "use a value outside that range such as 255 or -1"
        )
    ignored = (
        torch.zeros_like(target, dtype=torch.bool)
        if ignore_index is None
        else target == ignore_index
    )
    _check_labels("target", target, num_classes, ignored)
    _check_labels("pred", pred, num_classes, ignored)
    keep = ~ignored
    index = target[keep].long() * num_classes + pred[keep].long()  # (P,) flat cell index
    counts = torch.bincount(index, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def scores_from_counts(
    tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, empty_score: float = 1.0
) -> dict[str, torch.Tensor]:
    """Dice, IoU, precision and recall from counts of any (equal) shape, e.g. ``(C,)``.

    Returns float64 tensors of that shape under the keys ``dice``, ``iou``, ``precision`` and
    ``recall``. A zero denominator gives ``empty_score`` (see the module docstring).
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
    """Per-class scores (list index = class, background is 0) and their foreground means.

    ``mean_dice`` and ``mean_iou`` average classes ``1..C-1`` only — background is excluded. For
    binary segmentation (``C == 2``) they are simply the foreground class' score. Foreground
    classes absent from both prediction and ground truth count as ``empty_score`` in the means.
    """

    dice: list[float]
    iou: list[float]
    precision: list[float]
    recall: list[float]
    mean_dice: float
    mean_iou: float

    def as_dict(self) -> dict[str, float]:
        """Flat mapping for logging: ``dice``, ``iou`` (the means), ``dice_<c>``, ``iou_<c>``."""
        out = {"dice": self.mean_dice, "iou": self.mean_iou}
        out.update({f"dice_{c}": v for c, v in enumerate(self.dice)})
        out.update({f"iou_{c}": v for c, v in enumerate(self.iou)})
        return out


def scores_from_matrix(matrix: torch.Tensor, empty_score: float = 1.0) -> SegmentationScores:
    """:class:`SegmentationScores` from a ``(C, C)`` confusion matrix (rows = target)."""
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2:
        raise ValueError(
            f"expected a (C, C) confusion matrix with C >= 2; got {tuple(matrix.shape)}"
        )
    tp = matrix.diagonal()
    fp = matrix.sum(dim=0) - tp  # predicted as c, truly another class
    fn = matrix.sum(dim=1) - tp  # truly c, predicted as another class
    scores = {k: v.tolist() for k, v in scores_from_counts(tp, fp, fn, empty_score).items()}
    return SegmentationScores(
        dice=scores["dice"],
        iou=scores["iou"],
        precision=scores["precision"],
        recall=scores["recall"],
        mean_dice=sum(scores["dice"][1:]) / (len(scores["dice"]) - 1),
        mean_iou=sum(scores["iou"][1:]) / (len(scores["iou"]) - 1),
    )


class ConfusionMeter:
    """Accumulates a confusion matrix over many batches (micro averaging over a data set).

    ``update(pred, target)`` takes integer label maps ``(N, H, W)`` — use
    :func:`logits_to_labels` on model output first.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2 (binary is 2); got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)

    def reset(self) -> None:
        """Forget every count."""
        self.matrix = torch.zeros(self.num_classes, self.num_classes, dtype=torch.long)

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch: ``pred`` and ``target`` are ``(N, H, W)`` integer label maps."""
        counts = confusion_matrix(pred, target, self.num_classes, self.ignore_index)
        # Accumulate on the batches' device; compute() moves the small matrix to the CPU.
        self.matrix = self.matrix.to(counts.device) + counts

    def compute(self, empty_score: float = 1.0) -> SegmentationScores:
        """Scores of everything seen since the last :meth:`reset`."""
        return scores_from_matrix(self.matrix.cpu(), empty_score)
