"""`drunet evaluate --pred/--truth` scores the right pairs with the right classes (issue 25,
class 3): ambiguous names, a stray predicted value and absent classes, with Dice by hand."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from drunet.cli.main import app
from drunet.datasets import write_mask
from drunet.evaluation import evaluate_folder

runner = CliRunner()


def _mask(rows: dict[tuple[int, int, int, int], int]) -> np.ndarray:
    """A 4×4 mask: each ``(top, bottom, left, right)`` box set to its value."""
    mask = np.zeros((4, 4), np.uint8)
    for (top, bottom, left, right), value in rows.items():
        mask[top:bottom, left:right] = value
    return mask


TOP = _mask({(0, 2, 0, 4): 1})  # 8 px
FIRST_ROW = _mask({(0, 1, 0, 4): 1})  # 4 px: against TOP tp 4, fp 0, fn 4 → Dice 2/3
SEVEN = _mask({(0, 2, 0, 2): 1, (0, 2, 2, 4): 7})  # against TOP: class 1 tp 4, fn 4; a 7


def _evaluate(pred: Path, truth: Path, out: Path, *extra: str):
    args = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--out", str(out)]
    return runner.invoke(app, [*args, *extra])


def test_one_prediction_named_by_two_masks_scores_neither(tmp_path: Path) -> None:
    truth, pred = tmp_path / "truth", tmp_path / "pred"
    write_mask(truth / "a.png", TOP)
    write_mask(truth / "a_mask.png", TOP)  # a.png's and its own name both fit a_mask.png
    write_mask(pred / "a_mask.png", TOP)
    write_mask(truth / "b.png", TOP)
    write_mask(pred / "b_mask.png", FIRST_ROW)
    result = _evaluate(pred, truth, tmp_path / "out", "--json")
    assert result.exit_code == 3, result.output
    lines = [x for x in result.stderr.splitlines() if "2 truth masks" in x]
    assert len(lines) == 2  # one per mask that cannot be scored, each naming all three files
    for line in lines:
        assert str(pred / "a_mask.png") in line
        assert str(truth / "a.png") in line and str(truth / "a_mask.png") in line
    summary = json.loads(result.stdout)
    assert summary["images"] == 1 and set(summary["failed"]) == {
        str(truth / "a.png"),
        str(truth / "a_mask.png"),
    }
    assert summary["mean"]["dice"] == pytest.approx(2 / 3)  # b alone: tp 4, fp 0, fn 4


def test_a_mask_with_two_candidate_predictions_is_listed(tmp_path: Path) -> None:
    truth, pred = tmp_path / "truth", tmp_path / "pred"
    write_mask(truth / "a.png", TOP)
    write_mask(pred / "a.png", TOP)
    write_mask(pred / "a_mask.png", FIRST_ROW)
    evaluation = evaluate_folder(pred, truth)
    assert evaluation.names == []
    reason = evaluation.failed[truth / "a.png"]
    assert "matches 2 predictions" in reason
    assert str(pred / "a.png") in reason and str(pred / "a_mask.png") in reason
    assert _evaluate(pred, truth, tmp_path / "out").exit_code == 2  # nothing could be scored


@pytest.fixture
def stray(tmp_path: Path) -> tuple[Path, Path]:
    """Binary truth; prediction ``a`` holds a 7, ``b`` is plain."""
    truth, pred = tmp_path / "truth", tmp_path / "pred"
    write_mask(truth / "a.png", TOP)
    write_mask(pred / "a_mask.png", SEVEN)
    write_mask(truth / "b.png", TOP)
    write_mask(pred / "b_mask.png", FIRST_ROW)
    return pred, truth


def test_a_stray_predicted_value_is_listed_never_a_new_class(stray, tmp_path: Path) -> None:
    pred, truth = stray
    result = _evaluate(pred, truth, tmp_path / "out", "--json")
    assert result.exit_code == 3, result.output
    line = next(x for x in result.stderr.splitlines() if "outside" in x)
    assert str(pred / "a_mask.png") in line and "value(s) 7 outside the classes 0…1" in line
    summary = json.loads(result.stdout)
    assert summary["num_classes"] == 2 and summary["classes_from"] == "the truth masks"
    assert summary["images"] == 1 and summary["mean"]["dice"] == pytest.approx(2 / 3)


def test_classes_flag_scores_the_stray_value_and_absent_classes_stay_out(
    stray, tmp_path: Path
) -> None:
    pred, truth = stray
    result = _evaluate(pred, truth, tmp_path / "out", "--json", "--classes", "8")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["classes_from"] == "--classes 8" and summary["images"] == 2
    per_class = summary["per_class"]
    # class 1 summed over a and b: tp 8, fp 0, fn 8 → 16/24; class 7: tp 0, fp 4 → 0
    assert per_class["class 1"]["dice"] == pytest.approx(2 / 3)
    assert per_class["class 7"]["dice"] == 0.0 and per_class["class 7"]["absent"] is False
    for c in range(2, 7):  # in neither file: absent, no score
        assert per_class[f"class {c}"] == {
            "dice": None,
            "iou": None,
            "precision": None,
            "recall": None,
            "absent": True,
        }
    assert summary["mean"]["dice"] == pytest.approx((2 / 3 + 0) / 2)
    # per image: a (2/3 + 0) / 2, b 2/3 alone (class 7 absent from b)
    assert summary["reductions"]["macro-imagewise"]["dice"] == pytest.approx((1 / 3 + 2 / 3) / 2)
    rows = list(csv.DictReader((tmp_path / "out" / "per_image.csv").open()))
    b7 = next(r for r in rows if r["image"] == "b" and r["class"] == "7")
    assert (b7["dice"], b7["absent"], b7["tp"], b7["fp"], b7["fn"]) == ("", "1", "0", "0", "0")
    assert "absent" in _evaluate(pred, truth, tmp_path / "o2", "--classes", "8").output


def test_absent_as_one_is_the_training_rule_when_asked_for(stray, tmp_path: Path) -> None:
    pred, truth = stray
    result = _evaluate(pred, truth, tmp_path / "out", "--json", "--classes", "8", "--absent-as-one")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["per_class"]["class 3"]["dice"] == 1.0
    assert summary["per_class"]["class 3"]["absent"] is True
    # classes 2-6 enter as 1.0: (2/3 + 5 + 0) / 7 — the lift the issue reported (0.67 → 0.81)
    assert summary["mean"]["dice"] == pytest.approx(17 / 21)
    # a: (2/3 + 5·1 + 0) / 7, b: (2/3 + 6·1) / 7
    assert summary["reductions"]["macro-imagewise"]["dice"] == pytest.approx((17 + 20) / 42)


def test_a_class_absent_from_every_file_is_left_out_of_the_foreground_mean(
    tmp_path: Path,
) -> None:
    truth, pred = tmp_path / "truth", tmp_path / "pred"
    write_mask(truth / "a.png", TOP * 2)  # class 2 only; class 1 in neither file
    write_mask(pred / "a_mask.png", FIRST_ROW * 2)
    evaluation = evaluate_folder(pred, truth)  # classes 0…2 from the truth
    summary = evaluation.summary()
    assert summary["per_class"]["class 1"]["absent"] is True
    assert summary["per_class"]["class 1"]["dice"] is None
    assert summary["mean"]["dice"] == pytest.approx(2 / 3)  # class 2 alone, not (1.0 + 2/3) / 2
    one = evaluate_folder(pred, truth, absent_as_one=True).summary()
    assert one["mean"]["dice"] == pytest.approx((1.0 + 2 / 3) / 2)


def test_the_class_count_is_bounded(tmp_path: Path) -> None:
    truth, pred = tmp_path / "truth", tmp_path / "pred"
    write_mask(truth / "a.png", np.full((4, 4), 60000, np.uint16))  # an image, not a mask
    write_mask(pred / "a_mask.png", TOP)
    result = _evaluate(pred, truth, tmp_path / "out")
    assert result.exit_code == 2 and str(truth / "a.png") in result.output
    assert "60000" in result.output and "1024" in result.output
    assert not (tmp_path / "out").exists()
    result = _evaluate(pred, truth, tmp_path / "out", "--classes", "5000")
    assert result.exit_code == 2 and "--classes 5000" in result.output
