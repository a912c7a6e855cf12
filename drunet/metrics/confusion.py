"""Hard labels from logits, integer-label checks and confusion matrices (whole set or per image)."""

from __future__ import annotations

import torch

from drunet.metrics.scores import SegmentationScores, scores_from_matrix

_LABEL_MODES = ("auto", "binary", "multiclass", "multilabel")


def logits_to_labels(logits: torch.Tensor, mode: str = "auto") -> torch.Tensor:
    """Hard labels from logits ``(N, C, H, W)``, int64.

    ``"auto"``: ``C == 1`` → foreground where the logit is > 0 (probability > 0.5), else argmax;
    both give ``(N, H, W)``. ``"binary"`` and ``"multiclass"`` are those two cases, checked.
    ``"multilabel"``: every channel thresholded at logit 0 → ``(N, C, H, W)`` of 0/1.
    """
    if mode not in _LABEL_MODES:
        raise ValueError(f"mode must be one of {', '.join(_LABEL_MODES)}; got {mode!r}")
    if logits.ndim != 4:
        raise ValueError(f"expected logits of shape (N, C, H, W); got {tuple(logits.shape)}")
    channels = logits.shape[1]
    if (mode == "binary" and channels != 1) or (mode == "multiclass" and channels < 2):
        need = "one channel" if mode == "binary" else "C >= 2 channels"
        raise ValueError(f"mode={mode!r} needs logits with {need}; got {tuple(logits.shape)}")
    if mode == "multilabel":
        return (logits > 0).long()
    if channels == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(dim=1)


def check_labels(
    name: str, labels: torch.Tensor, num_values: int, skip: torch.Tensor, hint: str = ""
) -> None:
    """Integer (or bool) ``labels`` in ``0..num_values-1`` wherever ``skip`` is False."""
    if labels.is_floating_point() or labels.is_complex():
        raise ValueError(
            f"{name} must hold integer class indices, got dtype {labels.dtype}; "
            "convert logits with logits_to_labels()"
        )
    bad = ((labels < 0) | (labels >= num_values)) & ~skip
    if bool(bad.any()):
        values = torch.unique(labels[bad]).tolist()[:10]
        allowed = "0/1" if num_values == 2 else f"the classes 0..{num_values - 1}"
        raise ValueError(f"{name} values {values} are outside {allowed}{hint}")


def ignored_mask(target: torch.Tensor, ignore_index: int | None) -> torch.Tensor:
    if ignore_index is None:
        return torch.zeros_like(target, dtype=torch.bool)
    return target == ignore_index


def check_ignore_index(
    ignore_index: int | None, num_classes: int, multilabel: bool = False
) -> None:
    """A label that is also a real class (or a multilabel 0/1 target) cannot be ignored.

    The one check for metrics and losses alike (``drunet.losses`` imports it from here).
    """
    if ignore_index is None:
        return
    if multilabel and ignore_index in (0, 1):
        raise ValueError(
            f"ignore_index={ignore_index} is a multilabel target value (targets are 0/1); "
            "use a value such as 255 or -1"
        )
    if not multilabel and 0 <= ignore_index < num_classes:
        raise ValueError(
            f"ignore_index={ignore_index} is a real class (classes are 0..{num_classes - 1}); "
            "use a value outside that range such as 255 or -1"
        )


def _check_same_shape(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape or pred.ndim < 1:
        raise ValueError(
            f"pred and target must have the same shape; got pred {tuple(pred.shape)} and "
            f"target {tuple(target.shape)}"
        )


def per_image_confusion(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None
) -> torch.Tensor:
    """Confusion matrices ``(N, C, C)`` int64 of label maps ``(N, ...)``; row = target class."""
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2 (binary is 2); got {num_classes}")
    _check_same_shape(pred, target)
    check_ignore_index(ignore_index, num_classes)
    ignored = ignored_mask(target, ignore_index)
    hint = " and are not ignore_index" if ignore_index is not None else ""
    check_labels("target", target, num_classes, ignored, hint=hint)
    check_labels("pred", pred, num_classes, ignored)
    num_images = pred.shape[0]
    keep = ~ignored.reshape(num_images, -1)  # (N, P)
    image = torch.arange(num_images, device=pred.device).unsqueeze(1).expand_as(keep)
    cells = num_classes * num_classes
    # One flat cell index per kept pixel: image, then target row, then predicted column.
    index = (
        image[keep] * cells
        + target.reshape(num_images, -1)[keep].long() * num_classes
        + pred.reshape(num_images, -1)[keep].long()
    )
    counts = torch.bincount(index, minlength=num_images * cells)
    return counts.reshape(num_images, num_classes, num_classes)


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None
) -> torch.Tensor:
    """Pixel counts ``(num_classes, num_classes)`` int64: row = target class, column = predicted.

    ``pred`` and ``target`` are integer label maps of the same shape, usually ``(N, H, W)``.
    ``num_classes`` counts background (binary is 2). Pixels whose target is ``ignore_index`` are
    skipped whatever their prediction.
    """
    _check_same_shape(pred, target)
    return per_image_confusion(
        pred.reshape(1, -1), target.reshape(1, -1), num_classes, ignore_index
    )[0]


class ConfusionMeter:
    """Accumulates a confusion matrix over many batches (counts summed over a data set).

    ``update(pred, target)`` takes integer label maps ``(N, H, W)`` — use
    :func:`logits_to_labels` on model output first. ``compute()`` gives the per-class scores of
    the summed counts and their foreground mean: ``reduction="macro"`` in smp's vocabulary.
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
