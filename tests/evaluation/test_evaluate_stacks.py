"""Evaluation of multi-page TIFF stacks: every slice scored, every stack from its summed counts.

Two 3-page 4×4 stacks, foreground (class 1) counts by hand:

* ``a``: top half predicted on the left half (tp 4, fp 4, fn 4: Dice 1/2), all foreground
  found (tp 16: 1), one true pixel missed on an empty prediction (fn 1: 0). Summed: tp 20, fp 4,
  fn 5 → Dice 40/49, while the slices' Dice average 1/2.
* ``b``: all found (1), the top half of an all-foreground slice (tp 8, fn 8: 2/3), empty in
  both (the empty rule: 1). Summed: tp 24, fn 8 → Dice 48/56 = 6/7; the slices average 8/9.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from drunet.datasets import write_mask
from drunet.evaluation import evaluate, evaluation_pairs, write_evaluation
from drunet.evaluation.folder import evaluate_folder
from drunet.inference import Predictor
from tests.evaluation.test_evaluate import LEFT, TOP
from tests.inference.test_predictor import MinusHalf, make_config

ONES = np.ones((4, 4), np.uint8)
ZEROS = np.zeros((4, 4), np.uint8)
PIXEL = ZEROS.copy()
PIXEL[3, 3] = 1

# stack → (predictions, truths), one 4×4 page each
STACKS = {
    "a": ([TOP, ONES, ZEROS], [LEFT, ONES, PIXEL]),
    "b": ([ONES, TOP, ZEROS], [ONES, ONES, ZEROS]),
}
SLICE_DICE = {"a": [0.5, 1.0, 0.0], "b": [1.0, 2 / 3, math.nan]}  # b's last: class 1 in neither
STACK_DICE = {"a": 40 / 49, "b": 48 / 56}
NAMES = [f"{s}#{k:04d}" for s in "ab" for k in range(3)]


def write_stacks(images: Path | None, masks: Path, predictions: Path | None = None) -> None:
    """The stacks as a dataset (``images``: 0/255 stacks MinusHalf predicts as wanted) and/or
    as a folder of predicted mask stacks ``<stem>_mask.tif`` (``predictions``)."""
    for name, (predicted, truth) in STACKS.items():
        write_mask(masks / f"{name}.tif", np.stack(truth))
        if images is not None:
            write_mask(images / f"{name}.tif", np.stack(predicted) * 255)
        if predictions is not None:
            write_mask(predictions / f"{name}_mask.tif", np.stack(predicted))


def check_stack_scores(evaluation, out: Path) -> None:
    """Everything the two stacks must give, whichever way they were scored."""
    assert evaluation.failed == {} and evaluation.names == NAMES
    assert evaluation.stacks == ["a"] * 3 + ["b"] * 3 and evaluation.slices == [0, 1, 2] * 2
    rows = {(r["image"], r["class"]): r for r in evaluation.rows()}
    for i, name in enumerate(NAMES):
        assert rows[(name, 1)]["dice"] == pytest.approx(SLICE_DICE[name[0]][i % 3], nan_ok=True)
    assert rows[("b#0002", 1)]["absent"] == 1 and rows[("b#0001", 1)]["absent"] == 0

    stacks = {s.name: s for s in evaluation.stack_scores()}
    assert [s.slices for s in stacks.values()] == [3, 3]
    a, b = stacks["a"], stacks["b"]
    assert (a.counts["tp"][1], a.counts["fp"][1], a.counts["fn"][1]) == (20, 4, 5)
    assert a.per_class["dice"][1] == pytest.approx(40 / 49)
    assert a.per_class["dice"][1] != pytest.approx(np.mean(SLICE_DICE["a"]))  # not the mean
    assert a.per_class["iou"][1] == pytest.approx(20 / 29)
    assert a.per_class["precision"][1] == pytest.approx(20 / 24)
    assert a.per_class["recall"][1] == pytest.approx(20 / 25)
    # background of a: tp 4 + 0 + 15, fp 4 + 0 + 1, fn 4 + 0 + 0
    assert (a.counts["tp"][0], a.counts["fp"][0], a.counts["fn"][0]) == (19, 5, 4)
    assert a.per_class["dice"][0] == pytest.approx(38 / 47)
    assert (b.counts["tp"][1], b.counts["fp"][1], b.counts["fn"][1]) == (24, 0, 8)
    assert b.mean == pytest.approx({"dice": 6 / 7, "iou": 0.75, "precision": 1.0, "recall": 0.75})
    assert b.mean["dice"] != pytest.approx(np.nanmean(SLICE_DICE["b"]))

    write_evaluation(evaluation, out)
    with (out / "per_image.csv").open() as file:
        table = list(csv.DictReader(file))
    assert list(table[0]) == [
        "image", "stack", "slice", "class", "name",
        "dice", "iou", "precision", "recall", "tp", "fp", "fn", "absent",
    ]  # fmt: skip
    assert [(r["image"], r["stack"], r["slice"]) for r in table if r["class"] == "1"] == [
        (name, name[0], str(int(name[2:]))) for name in NAMES
    ]
    with (out / "per_stack.csv").open() as file:
        per_stack = list(csv.DictReader(file))
    assert list(per_stack[0]) == [
        "stack", "slices", "class", "name",
        "dice", "iou", "precision", "recall", "tp", "fp", "fn",
    ]  # fmt: skip
    assert [(r["stack"], r["class"], r["dice"], r["tp"], r["fp"], r["fn"]) for r in per_stack] == [
        ("a", "0", f"{38 / 47:.6f}", "19", "5", "4"),
        ("a", "1", f"{40 / 49:.6f}", "20", "4", "5"),
        ("b", "0", "0.800000", "16", "8", "0"),  # background: fp 8 on page 1, tp 16 on page 2
        ("b", "1", f"{6 / 7:.6f}", "24", "0", "8"),
    ]
    assert {r["slices"] for r in per_stack} == {"3"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 6
    assert summary["mean"]["dice"] == pytest.approx(88 / 105)  # tp 44, fp 4, fn 13
    section = summary["per_stack"]
    assert section["count"] == 2 and set(section["stacks"]) == {"a", "b"}
    assert section["stacks"]["a"]["slices"] == 3
    assert section["stacks"]["a"]["mean"]["dice"] == pytest.approx(40 / 49)
    assert section["stacks"]["b"]["per_class"]["class 1"]["recall"] == pytest.approx(0.75)
    assert section["mean"]["dice"] == pytest.approx((40 / 49 + 6 / 7) / 2)


def test_a_dataset_of_stacks_is_scored_per_slice_and_per_stack(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_stacks(root / "images", root / "masks")
    config = make_config()
    pairs, _ = evaluation_pairs(root, config, "all")
    evaluation = evaluate(Predictor(MinusHalf(), config), pairs)
    check_stack_scores(evaluation, tmp_path / "eval")


def test_a_folder_of_predicted_stacks_is_scored_the_same(tmp_path: Path) -> None:
    (tmp_path / "pred").mkdir()
    write_stacks(None, tmp_path / "truth", tmp_path / "pred")
    evaluation = evaluate_folder(tmp_path / "pred", tmp_path / "truth")
    check_stack_scores(evaluation, tmp_path / "eval")


def test_a_page_count_mismatch_fails_that_stack_only(tmp_path: Path) -> None:
    (tmp_path / "pred").mkdir()
    write_stacks(None, tmp_path / "truth", tmp_path / "pred")
    write_mask(tmp_path / "truth" / "c.tif", np.stack([ONES, ONES, ONES]))
    write_mask(tmp_path / "pred" / "c_mask.tif", np.stack([ONES, ONES]))
    evaluation = evaluate_folder(tmp_path / "pred", tmp_path / "truth")
    assert evaluation.names == NAMES
    reason = evaluation.failed[tmp_path / "truth" / "c.tif"]
    assert str(tmp_path / "pred" / "c_mask.tif") in reason and "has 2 page(s)" in reason
    assert str(tmp_path / "truth" / "c.tif") in reason and "has 3" in reason


def test_without_stacks_nothing_changes(tmp_path: Path) -> None:
    (tmp_path / "pred").mkdir()
    write_mask(tmp_path / "truth" / "x.png", LEFT)
    write_mask(tmp_path / "pred" / "x_mask.png", TOP)
    evaluation = evaluate_folder(tmp_path / "pred", tmp_path / "truth")
    assert not evaluation.has_stacks and evaluation.stack_scores() == []
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "per_stack.csv").write_text("an earlier evaluation's\n")
    csv_path, json_path = write_evaluation(evaluation, tmp_path / "eval")
    header = csv_path.read_text().splitlines()[0]
    assert header == "image,class,name,dice,iou,precision,recall,tp,fp,fn,absent"
    assert not (tmp_path / "eval" / "per_stack.csv").exists()
    assert "per_stack" not in json.loads(json_path.read_text())


def test_2d_images_beside_stacks_are_no_stack(tmp_path: Path) -> None:
    (tmp_path / "pred").mkdir()
    write_stacks(None, tmp_path / "truth", tmp_path / "pred")
    write_mask(tmp_path / "truth" / "x.png", LEFT)
    write_mask(tmp_path / "pred" / "x_mask.png", TOP)
    evaluation = evaluate_folder(tmp_path / "pred", tmp_path / "truth")
    assert evaluation.names == [*NAMES, "x"] and evaluation.stacks[-1] is None
    assert [s.name for s in evaluation.stack_scores()] == ["a", "b"]
    write_evaluation(evaluation, tmp_path / "eval")
    with (tmp_path / "eval" / "per_image.csv").open() as file:
        x = [r for r in csv.DictReader(file) if r["image"] == "x"]
    assert [(r["stack"], r["slice"], r["dice"]) for r in x] == [("", "", "0.500000")] * 2
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["images"] == 7 and summary["per_stack"]["count"] == 2
    # x adds tp 4, fp 4, fn 4 to the stacks' tp 44, fp 4, fn 13
    assert summary["mean"]["dice"] == pytest.approx(96 / 121)
