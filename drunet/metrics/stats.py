"""Per-image, per-class counts (tp, fp, fn, tn) and their micro / macro / per-image reductions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple, get_args

import torch

from drunet.metrics.confusion import (
    check_ignore_index,
    check_labels,
    ignored_mask,
    per_image_confusion,
)
from drunet.metrics.scores import SegmentationScores, per_class_scores, scores_from_counts

Reduction = Literal["micro", "macro", "micro-imagewise", "macro-imagewise", "none"]
REDUCTIONS: tuple[Reduction, ...] = get_args(Reduction)


class Stats(NamedTuple):
    """Pixel counts per image and class, each ``(N, C)`` int64 (smp's ``get_stats`` layout)."""

    tp: torch.Tensor
    fp: torch.Tensor
    fn: torch.Tensor
    tn: torch.Tensor


def _multilabel_stats(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None
) -> Stats:
    if pred.shape != target.shape or pred.ndim < 2 or pred.shape[1] != num_classes:
        raise ValueError(
            f"multilabel pred and target must both be (N, C, H, W) with C = num_classes = "
            f"{num_classes}; got pred {tuple(pred.shape)} and target {tuple(target.shape)}"
        )
    check_ignore_index(ignore_index, num_classes, multilabel=True)
    ignored = ignored_mask(target, ignore_index)
    hint = " and are not ignore_index" if ignore_index is not None else ""
    check_labels("target", target, 2, ignored, hint=hint)
    check_labels("pred", pred, 2, ignored)
    keep = ~ignored.flatten(2)  # (N, C, P)
    p = (pred.flatten(2) == 1) & keep
    t = (target.flatten(2) == 1) & keep
    tp = (p & t).sum(2)
    fp = p.sum(2) - tp
    fn = t.sum(2) - tp
    return Stats(tp, fp, fn, keep.sum(2) - tp - fp - fn)


def image_stats(
    pred: torch.Tensor,
    target: torch.Tensor,
    num_classes: int,
    ignore_index: int | None = None,
    multilabel: bool = False,
) -> Stats:
    """tp, fp, fn, tn per image and class, each ``(N, C)`` int64.

    Label maps: ``pred`` and ``target`` are ``(N, H, W)`` class indices, ``num_classes`` counts
    background (binary is 2) and every class is one-vs-rest, background included. Multilabel:
    both are ``(N, C, H, W)`` of 0/1 with ``C = num_classes``. Entries whose target equals
    ``ignore_index`` are skipped (not counted, not even as tn). Equals
    ``smp.metrics.get_stats`` (which does not support ``ignore_index`` for multilabel).
    """
    if multilabel:
        return _multilabel_stats(pred, target, num_classes, ignore_index)
    return stats_from_confusion(per_image_confusion(pred, target, num_classes, ignore_index))


def stats_from_confusion(matrix: torch.Tensor) -> Stats:
    """tp, fp, fn, tn ``(N, C)`` of confusion matrices ``(N, C, C)`` (row = target class)."""
    tp = matrix.diagonal(dim1=1, dim2=2)  # (N, C)
    fp = matrix.sum(1) - tp  # column sums: predicted c
    fn = matrix.sum(2) - tp  # row sums: truly c
    kept = matrix.sum((1, 2)).unsqueeze(1)  # (N, 1) pixels counted in each image
    return Stats(tp, fp, fn, kept - tp - fp - fn)


def reduce_stats(
    stats: Stats,
    reduction: Reduction = "macro",
    classes: Sequence[int] | None = None,
    empty_score: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Dice, IoU, precision and recall of ``stats`` reduced over images and ``classes``.

    ``classes`` are the columns used (all when ``None``); the means of :class:`StatsMeter` use
    the foreground ones. Returns float64 scalars under ``dice``, ``iou``, ``precision``,
    ``recall`` — or ``(N, K)`` tensors for ``reduction="none"``. The reductions are smp's (see
    :mod:`drunet.metrics`); with no image at all every score is ``empty_score``.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}; got {reduction!r}")
    num_classes = stats.tp.shape[1]
    if classes is not None:
        classes = list(classes)
        bad = [c for c in classes if not 0 <= c < num_classes]
        if not classes or bad:
            raise ValueError(
                f"classes must be a non-empty list of columns 0..{num_classes - 1}; got {classes}"
            )
    tp, fp, fn = (s if classes is None else s[:, classes] for s in stats[:3])  # (N, K)
    if tp.shape[0] == 0 and reduction != "none":
        tp = fp = fn = torch.zeros(1, tp.shape[1], dtype=torch.long)  # one empty image
    if reduction == "micro":  # sum everything, score once
        return scores_from_counts(tp.sum(), fp.sum(), fn.sum(), empty_score)
    if reduction == "macro":  # sum over images, score per class, mean over classes
        per_class = scores_from_counts(tp.sum(0), fp.sum(0), fn.sum(0), empty_score)
        return {k: v.mean() for k, v in per_class.items()}
    if reduction == "micro-imagewise":  # sum over classes, score per image, mean over images
        per_image = scores_from_counts(tp.sum(1), fp.sum(1), fn.sum(1), empty_score)
        return {k: v.mean() for k, v in per_image.items()}
    scores = scores_from_counts(tp, fp, fn, empty_score)  # (N, K)
    if reduction == "none":
        return scores
    return {k: v.mean() for k, v in scores.items()}  # macro-imagewise: over classes and images


class StatsMeter:
    """Keeps tp/fp/fn/tn of every image (``N_images × C``) over many batches.

    ``update(pred, target)`` takes label maps ``(N, H, W)`` (see :func:`logits_to_labels`) or,
    with ``multilabel=True``, 0/1 masks ``(N, C, H, W)``. ``compute(reduction)`` gives
    :class:`SegmentationScores`: per-class scores of the counts summed over images (``micro``,
    ``macro``) or averaged over images (``*-imagewise``), and means over the foreground classes
    (``1..C-1``; all channels for multilabel) by ``reduction``.
    ``StatsMeter(C).compute("macro")`` equals ``ConfusionMeter(C).compute()``.
    """

    def __init__(
        self, num_classes: int, ignore_index: int | None = None, multilabel: bool = False
    ) -> None:
        if num_classes < (1 if multilabel else 2):
            raise ValueError(
                f"num_classes must be >= 2 (binary is 2); got {num_classes}"
                if not multilabel
                else f"num_classes (channels) must be >= 1; got {num_classes}"
            )
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.multilabel = multilabel
        self.foreground = tuple(range(0 if multilabel else 1, num_classes))
        self._batches: list[torch.Tensor] = []  # (n, 4, C) per update, on the CPU

    def reset(self) -> None:
        """Forget every image."""
        self._batches = []

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add the images of one batch."""
        stats = image_stats(pred, target, self.num_classes, self.ignore_index, self.multilabel)
        self._batches.append(torch.stack(stats, dim=1).cpu())

    def add_confusion(self, matrix: torch.Tensor) -> None:
        """Add images given by their confusion matrices ``(N, C, C)`` int64 (row = target class,
        ignored pixels already left out), e.g. counted region by region over a giant mask."""
        if self.multilabel or matrix.ndim != 3 or matrix.shape[1:] != (self.num_classes,) * 2:
            raise ValueError(
                f"expected label-map confusion matrices (N, {self.num_classes}, "
                f"{self.num_classes}); got {tuple(matrix.shape)}"
            )
        self._batches.append(torch.stack(stats_from_confusion(matrix.long()), dim=1).cpu())

    @property
    def num_images(self) -> int:
        return sum(batch.shape[0] for batch in self._batches)

    @property
    def stats(self) -> Stats:
        """Counts of every image seen since the last :meth:`reset`, each ``(N_images, C)``."""
        if not self._batches:
            return Stats(*torch.zeros(4, 0, self.num_classes, dtype=torch.long))
        return Stats(*torch.cat(self._batches).unbind(1))

    def compute(
        self, reduction: Reduction = "macro", empty_score: float = 1.0
    ) -> SegmentationScores:
        """Per-class scores and foreground means (see the class docstring)."""
        if reduction == "none" or reduction not in REDUCTIONS:
            choices = ", ".join(r for r in REDUCTIONS if r != "none")
            raise ValueError(f"reduction must be one of {choices}; got {reduction!r}")
        stats = self.stats
        means = reduce_stats(stats, reduction, self.foreground, empty_score)
        if reduction in ("micro", "macro") or stats.tp.shape[0] == 0:
            tp, fp, fn = (s.sum(0) for s in stats[:3])
            per_class = scores_from_counts(tp, fp, fn, empty_score)
        else:  # imagewise: each class' score averaged over the images
            per_image = scores_from_counts(*stats[:3], empty_score)  # (N, C)
            per_class = {k: v.mean(0) for k, v in per_image.items()}
        return per_class_scores(per_class, {k: v.item() for k, v in means.items()}, reduction)
