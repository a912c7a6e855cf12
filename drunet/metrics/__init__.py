"""Segmentation metrics from pixel counts: Dice, IoU, precision and recall.

Per class ``c``, with ``tp``, ``fp``, ``fn`` its pixel counts::

    dice = 2·tp / (2·tp + fp + fn)      iou = tp / (tp + fp + fn)
    precision = tp / (tp + fp)          recall = tp / (tp + fn)

Label maps (``(N, H, W)`` class indices, binary = 2 classes) score every class one-vs-rest;
multilabel ``(N, C, H, W)`` 0/1 masks score every channel. Pixels (multilabel: elements) whose
target equals ``ignore_index`` are skipped entirely, whatever their prediction.

**Empty rule.** A score whose denominator is zero is ``empty_score`` (default ``1.0``), wherever
it is computed. For Dice and IoU that happens exactly when ``tp + fp + fn == 0``: the class is
absent from both the prediction and the ground truth, and nothing to find and nothing found is a
perfect result. A class absent from the ground truth but predicted somewhere scores 0. Precision
(``tp + fp == 0``: never predicted) and recall (``tp + fn == 0``: absent from the truth) follow
the same rule. This is ``segmentation_models_pytorch.metrics`` with ``zero_division=empty_score``.

**Reductions** (:func:`reduce_stats`, :meth:`StatsMeter.compute`) use smp's names and
definitions on ``(N_images, C)`` counts, restricted to the classes scored — the foreground
classes ``1..C-1`` (all channels for multilabel) in the means reported:

* ``"micro"``: sum the counts over images and classes, then score once;
* ``"macro"``: sum over images, score each class, average the classes;
* ``"micro-imagewise"``: sum over classes, score each image, average the images;
* ``"macro-imagewise"``: score each (image, class), average the classes, then the images;
* ``"none"`` (:func:`reduce_stats` only): the ``(N, K)`` scores.

The empty rule applies where each score is computed: once for ``micro``, per class for
``macro``, per image for ``micro-imagewise`` and per (image, class) for ``macro-imagewise`` — so
an image empty of a class counts 1.0 in the imagewise means. smp's ``reduction="micro"`` skips
``zero_division`` and returns NaN when the sums are 0; here it is ``empty_score`` as everywhere.

:class:`ConfusionMeter` sums a confusion matrix over a data set and reports the per-class scores
of those sums with their foreground mean — ``"macro"`` in the vocabulary above (the counts are
accumulated over the whole set, never averaged per image). :class:`StatsMeter` keeps the counts
of every image so that any reduction can be computed.
"""

from __future__ import annotations

from drunet.metrics.confusion import ConfusionMeter, confusion_matrix, logits_to_labels
from drunet.metrics.scores import SegmentationScores, scores_from_counts, scores_from_matrix
from drunet.metrics.stats import REDUCTIONS, Reduction, Stats, StatsMeter, image_stats, reduce_stats

__all__ = [
    "REDUCTIONS",
    "ConfusionMeter",
    "Reduction",
    "SegmentationScores",
    "Stats",
    "StatsMeter",
    "confusion_matrix",
    "image_stats",
    "logits_to_labels",
    "reduce_stats",
    "scores_from_counts",
    "scores_from_matrix",
]
