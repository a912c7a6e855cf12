"""Post-processing chosen on validation: the per-image score and each step's keep-or-reject
decision on hand-built predictions whose scores are computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from drunet.cleanup import Cleanup
from drunet.config import compose_config
from drunet.plan.postprocess import (
    MIN_GAIN,
    Selection,
    candidates,
    image_scores,
    select_postprocessing,
)
from drunet.plan.text import selection_lines


def blank(size: int = 12) -> np.ndarray:
    return np.zeros((size, size), np.int32)


def square(top: int, left: int, side: int, size: int = 12) -> np.ndarray:
    mask = blank(size)
    mask[top : top + side, left : left + side] = 1
    return mask


def dominoes(count: int, size: int = 12) -> np.ndarray:
    """``count`` separate 1×2 objects (2 px each), on every other row and column pair."""
    mask = blank(size)
    for i in range(count):
        row, column = 2 * (i // 4), 3 * (i % 4)
        mask[row, column : column + 2] = 1
    return mask


def steps(selection: Selection) -> dict[str, int | bool]:
    return {s.key.removeprefix("postprocess."): s.value for s in selection.steps}


def test_an_empty_prediction_of_an_empty_mask_scores_one() -> None:
    false_pixel = blank()
    false_pixel[5, 5] = 1
    scores = image_scores(
        [blank(), false_pixel, square(0, 0, 2)], [blank()] * 2 + [square(0, 0, 4)], 2
    )
    # Empty vs empty: 1; one false pixel on an empty mask: 0; 4 of 16 pixels: 2·4 / 20 = 0.4.
    np.testing.assert_allclose(scores, [1.0, 0.0, 0.4])
    iou = image_scores([square(0, 0, 2)], [square(0, 0, 4)], 2, metric="iou")
    np.testing.assert_allclose(iou, [4 / 16])


def test_ignored_pixels_and_classes_absent_from_an_image() -> None:
    truth = blank(4)
    truth[0, :2] = 1
    truth[3, 3] = 255  # ignored, whatever is predicted there
    pred = truth.copy()
    pred[3, 3] = 2
    # Class 1 found exactly; class 2 absent from the truth, predicted only on the ignored pixel
    # (left out): absent from both → 1. Mean over the two foreground classes: 1.
    assert image_scores([pred], [truth], 3, ignore_index=255).tolist() == [1.0]
    pred[2, 2] = 2  # now a false class-2 pixel: class 2 scores 0, the mean 0.5
    assert image_scores([pred], [truth], 3, ignore_index=255).tolist() == [0.5]


def test_removing_small_components_is_kept_when_it_raises_the_per_image_dice() -> None:
    truth = square(2, 2, 4)  # one 16-px object: every candidate min_size is 16
    pred = truth.copy()
    pred[10, 10] = 1  # a 1-px false object
    selection = select_postprocessing([pred], [truth], 2)
    assert candidates([truth])["min_size"][0] == [16]
    assert selection.baseline == pytest.approx(2 * 16 / 33)
    assert selection.score == 1.0
    assert steps(selection) == {
        "min_size": 16,
        "fill_holes": False,
        "largest_component": False,
        "empty_below": 0,
    }
    first = selection.steps[0]
    assert first.kept and first.before == pytest.approx(32 / 33) and first.after == 1.0
    assert first.reason.startswith("kept: per-image Dice 0.9697 → 1.0000 (tried 16 px: 1.0000")
    assert selection.steps[1].reason.startswith("off: per-image Dice 1.0000 not raised")
    assert selection.steps[3].reason == (
        "not tried: no validation mask is empty: emptying can only lose"
    )
    assert selection.cleanup() == Cleanup(min_size=16)


@pytest.mark.parametrize(("stray", "kept"), [(3, False), (500, True)])
def test_a_gain_below_min_gain_keeps_nothing(stray: int, kept: bool) -> None:
    # 20 images, each a 50×50 square (2,500 px); one prediction adds a stray object of `stray`
    # px. Removing it raises that image's Dice from 5000 / (5000 + stray) to 1: the mean per
    # image rises by 0.00003 for 3 px (noise: below MIN_GAIN, nothing kept) and by 0.0045 for
    # 500 px (kept). min_size's candidates are the quantiles of 2,500 px objects: 2,500.
    truth = np.zeros((100, 100), np.uint8)
    truth[10:60, 10:60] = 1
    truths = [truth] * 20
    noisy = truth.copy()
    if stray == 3:
        noisy[80, 87:90] = 1
    else:
        noisy[70:90, 70:95] = 1  # 20 × 25 = 500 px
    assert int(noisy.sum()) == 2500 + stray
    predictions = [noisy] + [truth] * 19
    gain = (1 - 5000 / (5000 + stray)) / 20
    assert (gain >= MIN_GAIN) is kept
    selection = select_postprocessing(predictions, truths, 2)
    assert selection.baseline == pytest.approx(1 - gain)
    first = selection.steps[0]
    assert first.key == "postprocess.min_size" and first.tried == [(2500, pytest.approx(1.0))]
    assert first.kept is kept and (first.value == 2500) is kept
    assert selection.score == pytest.approx(1.0 if kept else 1 - gain)
    assert not any(step.kept for step in selection.steps[1:])


def test_filling_holes_is_kept_for_any_rise() -> None:
    # One prediction of 20 has a 1-px hole in its 2,500-px square: filling it raises the mean
    # per-image Dice by (1 − 4998/4999) / 20 ≈ 0.00001, below MIN_GAIN — kept all the same, as
    # a hole filled costs at most the hole (min_size 2,500 would remove the holed square: off).
    truth = np.zeros((100, 100), np.uint8)
    truth[10:60, 10:60] = 1
    holed = truth.copy()
    holed[30, 30] = 0
    selection = select_postprocessing([holed] + [truth] * 19, [truth] * 20, 2)
    steps = {step.key: step for step in selection.steps}
    gain = (1 - 4998 / 4999) / 20
    assert 0 < gain < MIN_GAIN and selection.baseline == pytest.approx(1 - gain)
    assert not steps["postprocess.min_size"].kept
    assert steps["postprocess.fill_holes"].kept and selection.score == pytest.approx(1.0)


def test_removing_small_components_is_rejected_when_real_objects_are_small() -> None:
    truth = square(2, 2, 4)
    truth[10, 10:12] = 1  # a real 2-px object beside the 16-px one
    # Areas [2, 16]: the 1/5/10/25 % quantiles 2.14, 2.7, 3.4, 5.5 → 3, 4, 6 px.
    assert candidates([truth])["min_size"][0] == [3, 4, 6]
    selection = select_postprocessing([truth.copy()], [truth], 2)  # a perfect prediction
    assert selection.baseline == 1.0 and selection.score == 1.0
    first = selection.steps[0]
    assert not first.kept and first.value == 0
    # Each candidate removes the 2-px object: 2·16 / (16 + 18) = 16/17.
    assert [score for _, score in first.tried] == pytest.approx([16 / 17] * 3)


def test_a_tiny_false_blob_on_an_empty_mask_is_emptied_when_that_helps() -> None:
    # Image 1: an empty mask, a 4-px false blob (Dice 0). Image 2: ten 2-px objects, found.
    # min_size's candidates are all 2 px (removing nothing); empty_below's is 20 px, the
    # foreground of the one mask holding any: the blob (4 px) goes, image 2 (20 px) stays.
    truths = [blank(), dominoes(10)]
    predictions = [square(8, 8, 2), dominoes(10)]
    selection = select_postprocessing(predictions, truths, 2)
    assert selection.baseline == 0.5 and selection.score == 1.0
    assert selection.empty_masks == 1
    assert steps(selection) == {
        "min_size": 0,
        "fill_holes": False,
        "largest_component": False,
        "empty_below": 20,
    }
    assert [s.reason.split(":")[0] for s in selection.steps] == ["off", "off", "off", "kept"]


def test_emptying_is_rejected_when_it_empties_real_small_objects_too() -> None:
    # Image 1: empty mask, 4-px false blob (0). Images 2 and 3: a 5-px object predicted as 4 of
    # its pixels (2·4 / 9 = 8/9 each). Image 4: a 100-px object, found (1).
    # Baseline (0 + 8/9 + 8/9 + 1) / 4 = 25/36. Both min_size and empty_below have the one
    # candidate 5 px (areas and totals 5, 5, 100): each removes the blob (+1) and the two small
    # predictions (−8/9 each): (1 + 0 + 0 + 1) / 4 = 0.5 < 25/36, so neither is kept.
    small_truth, small_pred = blank(), blank()
    small_truth[0, :5], small_pred[0, :4] = 1, 1
    truths = [blank(), small_truth, small_truth, square(1, 1, 10)]
    predictions = [square(8, 8, 2), small_pred, small_pred, square(1, 1, 10)]
    selection = select_postprocessing(predictions, truths, 2)
    assert selection.baseline == pytest.approx(25 / 36) and selection.score == pytest.approx(
        25 / 36
    )
    by_key = {s.key: s for s in selection.steps}
    for key in ("postprocess.min_size", "postprocess.empty_below"):
        assert by_key[key].tried == [(5, pytest.approx(0.5))] and by_key[key].value == 0


def test_filling_holes_and_keeping_the_largest_component() -> None:
    ring = square(1, 1, 5)
    ring[2:5, 2:5] = 0  # the 5×5 square's 16-px border
    # min_size's candidate is 25 px (the one real object): it would remove the ring (Dice 0),
    # so it is off; filling the hole gives the square back (32/41 → 1).
    holes = select_postprocessing([ring], [square(1, 1, 5)], 2)
    assert steps(holes)["min_size"] == 0 and steps(holes)["fill_holes"] is True
    assert holes.baseline == pytest.approx(32 / 41) and holes.score == 1.0
    # Two 9-px squares predicted, the first (top-left) real: the largest component (the first
    # on ties) keeps it, 2·9 / 27 = 2/3 → 1; min_size 9 removes neither.
    twin = square(0, 0, 3) + square(8, 8, 3)
    largest = select_postprocessing([twin], [square(0, 0, 3)], 2)
    assert steps(largest)["min_size"] == 0 and steps(largest)["largest_component"] is True
    assert largest.baseline == pytest.approx(2 / 3) and largest.score == 1.0


def test_the_lines_say_each_step_with_its_scores() -> None:
    truth = square(2, 2, 4)
    pred = truth.copy()
    pred[10, 10] = 1
    lines = selection_lines(select_postprocessing([pred], [truth], 2))
    assert lines[0] == (
        "post-processing chosen on 1 validation image(s) (0 empty), per-image Dice 0.9697 → "
        "1.0000 (an empty prediction of an empty mask scores 1)"
    )
    assert lines[1].startswith("  postprocess.min_size = 16  (kept: per-image Dice 0.9697")
    assert lines[2].startswith("  postprocess.fill_holes = false  (off: ")
    assert len(lines) == 5


def test_no_validation_image_is_an_error() -> None:
    with pytest.raises(ValueError, match="no validation image"):
        select_postprocessing([], [], 2)


def test_a_step_written_by_hand_is_kept_unless_select_is_set() -> None:
    assert compose_config(overrides=["postprocess.min_size=20"]).postprocess.select is False
    both = ["postprocess.min_size=20", "postprocess.select=true"]
    assert compose_config(overrides=both).postprocess.select is True
    assert compose_config().postprocess.select is True
