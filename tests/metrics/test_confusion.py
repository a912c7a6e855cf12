"""Confusion matrices and ConfusionMeter: hand-computed counts and scores, the empty rule,
smp parity, a property."""

from __future__ import annotations

import numpy as np
import pytest
import segmentation_models_pytorch as smp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from drunet.metrics import (
    ConfusionMeter,
    SegmentationScores,
    confusion_matrix,
    logits_to_labels,
    scores_from_counts,
    scores_from_matrix,
)

IGNORE = 255

# A 3×3, 3-class example. (target, pred) pairs read row by row:
#   (0,0) (0,1) (1,1) | (1,1) (2,2) (2,0) | (0,0) (ignored) (2,2)
# rows = target:  class 0 → [2, 1, 0], class 1 → [0, 2, 0], class 2 → [1, 0, 2]
# tp = [2, 2, 2]
# fp = column sums [3, 3, 2] - tp = [1, 1, 0]
# fn = row sums [3, 2, 3] - tp = [1, 0, 1]
TARGET_3X3 = torch.tensor([[[0, 0, 1], [1, 2, 2], [0, IGNORE, 2]]])
PRED_3X3 = torch.tensor([[[0, 1, 1], [1, 2, 0], [0, 2, 2]]])


def test_logits_to_labels_binary() -> None:
    # Foreground only where the logit is strictly positive: 0 means p = 0.5 → background.
    logits = torch.tensor([[[[-1.0, 0.0], [0.5, 3.0]]]])
    labels = logits_to_labels(logits)
    assert labels.dtype == torch.int64
    assert labels.tolist() == [[[0, 0], [1, 1]]]


def test_logits_to_labels_multiclass() -> None:
    logits = torch.tensor([[[0.1, 5.0]], [[0.9, -1.0]], [[0.2, 4.0]]]).unsqueeze(0)  # (1, 3, 1, 2)
    labels = logits_to_labels(logits)
    assert labels.shape == (1, 1, 2)
    assert labels.dtype == torch.int64
    assert labels.tolist() == [[[1, 0]]]
    with pytest.raises(ValueError, match=r"\(3, 1, 2\)"):
        logits_to_labels(logits[0])


def test_logits_to_labels_modes() -> None:
    logits = torch.tensor([[[[-1.0, 2.0]], [[0.5, 0.0]]]])  # (1, 2, 1, 2)
    assert logits_to_labels(logits, mode="multilabel").tolist() == [[[[0, 1]], [[1, 0]]]]
    assert logits_to_labels(logits, mode="multiclass").tolist() == [[[1, 0]]]
    assert logits_to_labels(logits[:, :1], mode="binary").tolist() == [[[0, 1]]]
    with pytest.raises(ValueError, match=r"mode='binary' needs logits with one channel"):
        logits_to_labels(logits, mode="binary")
    with pytest.raises(ValueError, match=r"mode='multiclass' needs logits with C >= 2"):
        logits_to_labels(logits[:, :1], mode="multiclass")
    with pytest.raises(ValueError, match="mode must be one of auto, binary, multiclass"):
        logits_to_labels(logits, mode="sigmoid")


def test_confusion_matrix_by_hand() -> None:
    matrix = confusion_matrix(PRED_3X3, TARGET_3X3, num_classes=3, ignore_index=IGNORE)
    assert matrix.dtype == torch.int64
    assert matrix.tolist() == [[2, 1, 0], [0, 2, 0], [1, 0, 2]]


def test_scores_by_hand() -> None:
    meter = ConfusionMeter(3, ignore_index=IGNORE)
    meter.update(PRED_3X3, TARGET_3X3)
    scores = meter.compute()
    # dice = 2tp / (2tp + fp + fn): 4/6, 4/5, 4/5;  iou = tp / (tp + fp + fn): 2/4, 2/3, 2/3
    assert scores.dice == pytest.approx([2 / 3, 0.8, 0.8])
    assert scores.iou == pytest.approx([0.5, 2 / 3, 2 / 3])
    assert scores.precision == pytest.approx([2 / 3, 2 / 3, 1.0])  # tp / (tp + fp)
    assert scores.recall == pytest.approx([2 / 3, 1.0, 2 / 3])  # tp / (tp + fn)
    # Means over the foreground classes 1 and 2 only.
    assert scores.mean_dice == pytest.approx(0.8)
    assert scores.mean_iou == pytest.approx(2 / 3)
    assert scores.mean_precision == pytest.approx(5 / 6)  # (2/3 + 1) / 2
    assert scores.mean_recall == pytest.approx(5 / 6)  # (1 + 2/3) / 2
    assert scores.reduction == "macro"
    assert scores.as_dict() == pytest.approx(
        {"dice": 0.8, "iou": 2 / 3, "precision": 5 / 6, "recall": 5 / 6}
        | {"dice_0": 2 / 3, "dice_1": 0.8, "dice_2": 0.8}
        | {"iou_0": 0.5, "iou_1": 2 / 3, "iou_2": 2 / 3}
    )
    # The trainer and plots read these keys; their order is the CSV's column order.
    assert list(scores.as_dict())[:4] == ["dice", "iou", "precision", "recall"]


def test_ignore_index_changes_the_scores() -> None:
    # Count the ignored pixel as class 1 (it is predicted 2) instead: class 1 gains a fn and
    # class 2 a fp → dice_1 = 4 / (4 + 1 + 1) = 2/3 and dice_2 = 4 / (4 + 1 + 1) = 2/3.
    counted = TARGET_3X3.clone()
    counted[counted == IGNORE] = 1
    scores = scores_from_matrix(confusion_matrix(PRED_3X3, counted, 3))
    assert scores.dice == pytest.approx([2 / 3, 2 / 3, 2 / 3])
    assert scores.mean_dice == pytest.approx(2 / 3)  # was 0.8 with the pixel ignored


def test_binary_scores_by_hand_from_logits() -> None:
    # 4 foreground pixels in the top-right 2×2 block; the prediction finds 3 of them
    # (misses (1, 3)) and adds one false positive at (0, 1): tp 3, fp 1, fn 1.
    target = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]]])
    pred = torch.tensor([[[0, 1, 1, 1], [0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]]])
    meter = ConfusionMeter(2)
    meter.update(logits_to_labels(2.0 * pred.unsqueeze(1) - 1), target)
    scores = meter.compute()
    # foreground: dice 6/8, iou 3/5; background: tp 16 - 5 = 11, fp 1, fn 1 → dice 22/24
    assert scores.dice == pytest.approx([22 / 24, 0.75])
    assert scores.iou == pytest.approx([11 / 13, 0.6])
    assert scores.mean_dice == pytest.approx(0.75)  # binary: just the foreground class
    assert scores.mean_iou == pytest.approx(0.6)


def test_empty_rule() -> None:
    empty = torch.zeros(1, 4, 4, dtype=torch.long)
    # Nothing to find, nothing found: perfect by default, empty_score otherwise.
    both_empty = scores_from_matrix(confusion_matrix(empty, empty, 2))
    assert both_empty.dice[1] == both_empty.iou[1] == both_empty.mean_dice == 1.0
    assert scores_from_matrix(confusion_matrix(empty, empty, 2), empty_score=0.0).dice[1] == 0.0
    # Empty target, one false positive: a real 0 (recall has no denominator → empty_score).
    pred = empty.clone()
    pred[0, 1, 2] = 1
    fp_only = scores_from_matrix(confusion_matrix(pred, empty, 2))
    assert fp_only.dice[1] == fp_only.iou[1] == fp_only.precision[1] == 0.0
    assert fp_only.recall[1] == 1.0


def test_scores_from_counts_elementwise() -> None:
    tp, fp, fn = torch.tensor([2, 0, 0]), torch.tensor([1, 0, 3]), torch.tensor([1, 0, 0])
    scores = scores_from_counts(tp, fp, fn)
    assert scores["dice"].dtype == torch.float64
    assert scores["dice"].tolist() == pytest.approx([2 / 3, 1.0, 0.0])
    assert scores["iou"].tolist() == pytest.approx([0.5, 1.0, 0.0])
    assert scores["precision"].tolist() == pytest.approx([2 / 3, 1.0, 0.0])
    assert scores["recall"].tolist() == pytest.approx([2 / 3, 1.0, 1.0])
    assert scores_from_counts(tp, fp, fn, empty_score=0.5)["dice"][1].item() == 0.5
    with pytest.raises(ValueError, match="got 2"):
        scores_from_counts(tp, fp, fn, empty_score=2)


def test_bad_inputs_are_named() -> None:
    ok = torch.zeros(1, 2, 2, dtype=torch.long)
    with pytest.raises(ValueError, match=r"target values \[5, 7\]"):
        confusion_matrix(ok, torch.tensor([[[0, 5], [7, 1]]]), num_classes=3)
    with pytest.raises(ValueError, match=r"target values \[-1\]"):
        confusion_matrix(ok, torch.tensor([[[0, -1], [IGNORE, 1]]]), 3, ignore_index=IGNORE)
    with pytest.raises(ValueError, match=r"pred values \[3\]"):
        confusion_matrix(torch.tensor([[[0, 3], [0, 0]]]), ok, num_classes=3)
    with pytest.raises(ValueError, match="ignore_index=1"):
        confusion_matrix(ok, ok, num_classes=3, ignore_index=1)
    with pytest.raises(ValueError, match=r"\(1, 2, 2\).*\(1, 2, 3\)"):
        confusion_matrix(ok, torch.zeros(1, 2, 3, dtype=torch.long), num_classes=3)
    with pytest.raises(ValueError, match="logits_to_labels"):
        confusion_matrix(ok.float(), ok, num_classes=3)
    with pytest.raises(ValueError, match="got 1"):
        ConfusionMeter(1)


def test_meter_accumulates_like_one_big_update() -> None:
    gen = torch.Generator().manual_seed(0)
    pred = torch.randint(0, 4, (6, 8, 8), generator=gen)
    target = torch.randint(0, 4, (6, 8, 8), generator=gen)
    target[torch.rand(6, 8, 8, generator=gen) < 0.1] = IGNORE
    split, whole = ConfusionMeter(4, IGNORE), ConfusionMeter(4, IGNORE)
    split.update(pred[:2], target[:2])
    split.update(pred[2:], target[2:])
    whole.update(pred, target)
    assert torch.equal(split.matrix, whole.matrix)
    assert split.compute() == whole.compute()
    split.reset()
    assert split.matrix.sum().item() == 0


# --- parity with segmentation_models_pytorch.metrics --------------------------------------------


def test_binary_scores_match_smp_micro() -> None:
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 1, 16, 16, generator=gen)
    target = (torch.rand(4, 16, 16, generator=gen) < 0.3).long()
    pred = logits_to_labels(logits)
    meter = ConfusionMeter(2)
    meter.update(pred, target)
    ours = meter.compute()
    stats = smp.metrics.get_stats(pred.unsqueeze(1), target.unsqueeze(1), mode="binary")
    for name, value in [("f1_score", ours.dice[1]), ("iou_score", ours.iou[1])]:
        ref = getattr(smp.metrics, name)(*stats, reduction="micro", zero_division=1)
        assert value == pytest.approx(ref.item(), abs=1e-6)
    for name, value in [("precision", ours.precision[1]), ("recall", ours.recall[1])]:
        ref = getattr(smp.metrics, name)(*stats, reduction="micro", zero_division=1)
        assert value == pytest.approx(ref.item(), abs=1e-6)


def test_multiclass_scores_match_smp_per_class() -> None:
    # 5 classes; class 4 is never in the target nor predicted (its logit is -100), so it goes
    # through the zero-division path of both implementations.
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(3, 5, 12, 12, generator=gen)
    logits[:, 4] = -100
    target = torch.randint(0, 4, (3, 12, 12), generator=gen)
    target[torch.rand(3, 12, 12, generator=gen) < 0.15] = IGNORE
    pred = logits_to_labels(logits)
    meter = ConfusionMeter(5, ignore_index=IGNORE)
    meter.update(pred, target)
    ours = meter.compute()

    stats = smp.metrics.get_stats(pred, target, "multiclass", ignore_index=IGNORE, num_classes=5)
    tp, fp, fn, tn = (s.sum(dim=0, keepdim=True) for s in stats)  # (N, C) → (1, C): micro
    matrix = meter.matrix
    assert tp[0].tolist() == matrix.diagonal().tolist()
    assert fp[0].tolist() == (matrix.sum(0) - matrix.diagonal()).tolist()
    assert fn[0].tolist() == (matrix.sum(1) - matrix.diagonal()).tolist()
    for name, value in [
        ("f1_score", ours.dice),
        ("iou_score", ours.iou),
        ("precision", ours.precision),
        ("recall", ours.recall),
    ]:
        ref = getattr(smp.metrics, name)(tp, fp, fn, tn, reduction=None, zero_division=1)
        assert value == pytest.approx(ref[0].tolist(), abs=1e-6)
    assert ours.dice[4] == 1.0


def test_scores_is_frozen() -> None:
    scores = scores_from_matrix(torch.eye(2, dtype=torch.long))
    assert isinstance(scores, SegmentationScores)
    with pytest.raises(AttributeError):
        scores.mean_dice = 0.0  # type: ignore[misc]


# --- property -------------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    num_classes=st.integers(2, 4),
    shape=st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5)),
    seed=st.integers(0, 2**31 - 1),
    ignore=st.booleans(),
)
def test_confusion_matrix_matches_numpy(
    num_classes: int, shape: tuple[int, int, int], seed: int, ignore: bool
) -> None:
    rng = np.random.default_rng(seed)
    target = rng.integers(0, num_classes, size=shape)
    if ignore:
        target[rng.random(shape) < 0.3] = IGNORE
    pred = rng.integers(0, num_classes, size=shape)
    index = IGNORE if ignore else None
    matrix = confusion_matrix(torch.from_numpy(pred), torch.from_numpy(target), num_classes, index)

    expected = np.zeros((num_classes, num_classes), dtype=np.int64)
    for t, p in zip(target.ravel(), pred.ravel(), strict=True):
        if t != IGNORE:
            expected[t, p] += 1
    assert matrix.sum().item() == int((target != IGNORE).sum())
    np.testing.assert_array_equal(matrix.numpy(), expected)
