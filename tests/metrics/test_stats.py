"""Per-image statistics and their reductions: hand-computed counts and scores, the empty rule
in every reduction, multilabel, StatsMeter."""

from __future__ import annotations

import pytest
import torch

from drunet.metrics import (
    REDUCTIONS,
    ConfusionMeter,
    Stats,
    StatsMeter,
    image_stats,
    logits_to_labels,
    reduce_stats,
)

IGNORE = 255

# Two 2×2 images, 3 classes.
#   image A: target [[0, 1], [1, 2]], pred [[0, 1], [2, 2]]
#     class 0: tp 1;  class 1: tp 1, fn 1 (the 1 predicted 2);  class 2: tp 1, fp 1
#   image B: target [[0, 0], [0, ignored]], pred [[1, 0], [0, 2]] — 3 pixels count
#     class 0: tp 2, fn 1;  class 1: fp 1;  class 2: nothing (predicted only on the ignored pixel)
#   tn = counted pixels - tp - fp - fn: A (4 - 1, 4 - 2, 4 - 2), B (3 - 3, 3 - 1, 3 - 0)
TARGET = torch.tensor([[[0, 1], [1, 2]], [[0, 0], [0, IGNORE]]])
PRED = torch.tensor([[[0, 1], [2, 2]], [[1, 0], [0, 2]]])
TP = [[1, 1, 1], [2, 0, 0]]
FP = [[0, 0, 1], [0, 1, 0]]
FN = [[0, 1, 0], [1, 0, 0]]
TN = [[3, 2, 2], [0, 2, 3]]
FOREGROUND = (1, 2)

# Expected foreground (classes 1, 2) scores, computed by hand:
EXPECTED = {
    # micro: tp 1+1+0+0 = 2, fp 0+1+1+0 = 2, fn 1+0+0+0 = 1
    #   dice 4 / (4 + 2 + 1), iou 2 / 5, precision 2 / 4, recall 2 / 3
    "micro": {"dice": 4 / 7, "iou": 2 / 5, "precision": 1 / 2, "recall": 2 / 3},
    # macro: class 1 summed tp 1, fp 1, fn 1 → dice 1/2, iou 1/3, precision 1/2, recall 1/2
    #        class 2 summed tp 1, fp 1, fn 0 → dice 2/3, iou 1/2, precision 1/2, recall 1
    "macro": {"dice": 7 / 12, "iou": 5 / 12, "precision": 1 / 2, "recall": 3 / 4},
    # micro-imagewise: A tp 2, fp 1, fn 1 → dice 2/3, iou 1/2, precision 2/3, recall 2/3
    #                  B tp 0, fp 1, fn 0 → dice 0, iou 0, precision 0, recall empty → 1
    "micro-imagewise": {"dice": 1 / 3, "iou": 1 / 4, "precision": 1 / 3, "recall": 5 / 6},
    # macro-imagewise: A class 1 (1, 0, 1): dice 2/3, iou 1/2, precision 1, recall 1/2
    #                  A class 2 (1, 1, 0): dice 2/3, iou 1/2, precision 1/2, recall 1
    #                  B class 1 (0, 1, 0): 0, 0, 0, recall empty → 1
    #                  B class 2 (0, 0, 0): empty → 1, 1, 1, 1
    #   image means A: 2/3, 1/2, 3/4, 3/4;  B: 1/2, 1/2, 1/2, 1  → mean over the two images
    "macro-imagewise": {"dice": 7 / 12, "iou": 1 / 2, "precision": 5 / 8, "recall": 7 / 8},
}


def _stats() -> Stats:
    return image_stats(PRED, TARGET, num_classes=3, ignore_index=IGNORE)


def test_image_stats_by_hand() -> None:
    stats = _stats()
    assert all(s.dtype == torch.int64 for s in stats)
    assert [s.tolist() for s in stats] == [TP, FP, FN, TN]


@pytest.mark.parametrize("reduction", EXPECTED)
def test_reductions_by_hand(reduction: str) -> None:
    scores = reduce_stats(_stats(), reduction, classes=FOREGROUND)
    assert {k: v.item() for k, v in scores.items()} == pytest.approx(EXPECTED[reduction])
    assert all(v.dtype == torch.float64 and v.ndim == 0 for v in scores.values())


def test_reduction_none_keeps_images_and_classes() -> None:
    scores = reduce_stats(_stats(), "none", classes=FOREGROUND)
    expected_dice = torch.tensor([[2 / 3, 2 / 3], [0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(scores["dice"], expected_dice)
    expected_recall = torch.tensor([[0.5, 1.0], [1.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(scores["recall"], expected_recall)


def test_empty_rule_in_every_reduction() -> None:
    # Image B has no class 2 at all; with empty_score 0 it scores 0 instead of 1 where it is
    # scored alone (macro-imagewise): dice (A 2/3, B (0 + 0)/2 = 0) → 1/3.
    scores = reduce_stats(_stats(), "macro-imagewise", FOREGROUND, empty_score=0.0)
    assert scores["dice"].item() == pytest.approx(1 / 3)
    # Nothing anywhere: every reduction gives empty_score, never NaN.
    empty = torch.zeros(2, 4, 4, dtype=torch.long)
    stats = image_stats(empty, empty, num_classes=2)
    for reduction in ("micro", "macro", "micro-imagewise", "macro-imagewise"):
        for empty_score in (1.0, 0.0, 0.5):
            scores = reduce_stats(stats, reduction, [1], empty_score)
            assert {k: v.item() for k, v in scores.items()} == dict.fromkeys(
                ("dice", "iou", "precision", "recall"), empty_score
            )
    # No image at all is empty too.
    none = Stats(*torch.zeros(4, 0, 2, dtype=torch.long))
    assert reduce_stats(none, "macro-imagewise")["dice"].item() == 1.0


def test_multilabel_stats_by_hand() -> None:
    # channel 0: pred [[1, 0], [1, 0]], target [[1, 1], [0, 0]] → tp 1, fp 1, fn 1, tn 1
    # channel 1: pred [[1, 1], [0, 0]], target [[1, ign], [0, ign]] → 2 kept: tp 1, tn 1
    pred = torch.tensor([[[[1, 0], [1, 0]], [[1, 1], [0, 0]]]])
    target = torch.tensor([[[[1, 1], [0, 0]], [[1, IGNORE], [0, IGNORE]]]])
    stats = image_stats(pred, target, num_classes=2, ignore_index=IGNORE, multilabel=True)
    assert [s.tolist() for s in stats] == [[[1, 1]], [[1, 0]], [[1, 0]], [[1, 1]]]
    # macro dice (channel 0: 2/4, channel 1: 2/2) → 3/4; micro: tp 2, fp 1, fn 1 → 4/6
    assert reduce_stats(stats, "macro")["dice"].item() == pytest.approx(0.75)
    assert reduce_stats(stats, "micro")["dice"].item() == pytest.approx(2 / 3)


def test_meter_accumulates_and_reduces() -> None:
    meter = StatsMeter(3, ignore_index=IGNORE)
    meter.update(PRED[:1], TARGET[:1])
    meter.update(PRED[1:], TARGET[1:])
    assert meter.num_images == 2
    assert [s.tolist() for s in meter.stats] == [TP, FP, FN, TN]
    for reduction, expected in EXPECTED.items():
        scores = meter.compute(reduction)
        assert scores.reduction == reduction
        means = [scores.mean_dice, scores.mean_iou, scores.mean_precision, scores.mean_recall]
        assert means == pytest.approx(list(expected.values()))
    # imagewise per-class values average the images:
    # class 1 dice (2/3 + 0) / 2, class 2 (2/3 + 1) / 2
    assert meter.compute("macro-imagewise").dice[1:] == pytest.approx([1 / 3, 5 / 6])
    meter.reset()
    assert meter.num_images == 0
    assert meter.compute("micro").mean_dice == 1.0  # nothing seen: empty


def test_meter_macro_equals_confusion_meter() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, 8, 8, generator=gen)
    target = torch.randint(0, 4, (6, 8, 8), generator=gen)
    target[torch.rand(6, 8, 8, generator=gen) < 0.1] = IGNORE
    stats_meter, confusion_meter = StatsMeter(4, IGNORE), ConfusionMeter(4, IGNORE)
    for batch in (slice(0, 2), slice(2, 6)):
        stats_meter.update(logits_to_labels(logits[batch]), target[batch])
        confusion_meter.update(logits_to_labels(logits[batch]), target[batch])
    assert stats_meter.compute("macro") == confusion_meter.compute()
    assert stats_meter.compute("macro").as_dict() == confusion_meter.compute().as_dict()


def test_multilabel_meter_means_every_channel() -> None:
    gen = torch.Generator().manual_seed(1)
    pred = torch.randint(0, 2, (3, 3, 6, 6), generator=gen)
    target = torch.randint(0, 2, (3, 3, 6, 6), generator=gen)
    meter = StatsMeter(3, multilabel=True)
    meter.update(pred, target)
    scores = meter.compute("macro")
    assert meter.foreground == (0, 1, 2)
    assert scores.mean_dice == pytest.approx(sum(scores.dice) / 3)
    assert set(scores.as_dict()) >= {"dice", "iou", "dice_0", "dice_2", "iou_2"}


# --- errors ---------------------------------------------------------------------------------------


def test_bad_inputs_are_named() -> None:
    stats = _stats()
    with pytest.raises(ValueError, match="reduction must be one of micro, macro, micro-imagewise"):
        reduce_stats(stats, "weighted")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"columns 0..2; got \[1, 3\]"):
        reduce_stats(stats, "macro", classes=[1, 3])
    with pytest.raises(ValueError, match=r"got 'none'"):
        StatsMeter(3).compute("none")  # type: ignore[arg-type]
    ok = torch.zeros(1, 2, 2, 2, dtype=torch.long)
    with pytest.raises(ValueError, match=r"C = num_classes = 3; got pred \(1, 2, 2, 2\)"):
        image_stats(ok, ok, num_classes=3, multilabel=True)
    with pytest.raises(ValueError, match=r"target values \[2\] are outside 0/1"):
        image_stats(ok, ok + 2, num_classes=2, multilabel=True)
    with pytest.raises(ValueError, match="ignore_index=1 is a multilabel target value"):
        image_stats(ok, ok, num_classes=2, ignore_index=1, multilabel=True)
    with pytest.raises(ValueError, match="logits_to_labels"):
        image_stats(ok.float(), ok, num_classes=2, multilabel=True)
    with pytest.raises(ValueError, match="got 1"):
        StatsMeter(1)
    assert set(REDUCTIONS) == {"micro", "macro", "micro-imagewise", "macro-imagewise", "none"}
