"""Evaluating a folder of existing predictions: matching, failures naming both files, spacing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from drunet.datasets import write_mask
from drunet.errors import DrunetError
from drunet.evaluation.folder import count_classes, evaluate_folder, folder_cases
from tests.evaluation.conftest import make_folder_case, square


def test_predictions_match_by_mask_suffix_or_own_name(tmp_path: Path) -> None:
    make_folder_case(tmp_path, "a", square(8, 0, 0, 4), square(8, 0, 0, 4))
    write_mask(tmp_path / "masks" / "b.png", square(8, 0, 0, 4))
    write_mask(tmp_path / "pred" / "b.png", square(8, 0, 0, 2))  # the mask's own name
    cases = {c.name: c for c in folder_cases(tmp_path / "pred", tmp_path)}
    assert cases["a"].prediction == tmp_path / "pred" / "a_mask.png"
    assert cases["a"].image == tmp_path / "images" / "a.png"
    assert cases["b"].prediction == tmp_path / "pred" / "b.png" and cases["b"].image is None
    evaluation = evaluate_folder(tmp_path / "pred", tmp_path)
    rows = {(r["image"], r["class"]): r for r in evaluation.rows()}
    assert rows[("a", 1)]["dice"] == 1.0
    assert rows[("b", 1)]["dice"] == pytest.approx(2 * 4 / (4 + 16))  # tp 4, fp 0, fn 12


def test_a_masks_folder_alone_works(tmp_path: Path) -> None:
    make_folder_case(tmp_path, "a", square(8, 0, 0, 4), square(8, 0, 0, 4), image=False)
    evaluation = evaluate_folder(tmp_path / "pred", tmp_path / "masks")
    assert evaluation.names == ["a"] and evaluation.summary()["mean"]["dice"] == 1.0


def test_missing_prediction_and_size_mismatch_fail_naming_both_files(tmp_path: Path) -> None:
    make_folder_case(tmp_path, "good", square(8, 0, 0, 4), square(8, 0, 0, 4))
    write_mask(tmp_path / "masks" / "lonely.png", square(8, 0, 0, 4))
    make_folder_case(tmp_path, "small", square(8, 0, 0, 4), square(6, 0, 0, 4))
    evaluation = evaluate_folder(tmp_path / "pred", tmp_path)
    assert evaluation.names == ["good"]
    failed = {p.name: reason for p, reason in evaluation.failed.items()}
    assert set(failed) == {"lonely.png", "small.png"}
    assert "no prediction" in failed["lonely.png"] and "lonely_mask.png" in failed["lonely.png"]
    assert str(tmp_path / "masks" / "lonely.png") in failed["lonely.png"]
    reason = failed["small.png"]
    assert "small_mask.png" in reason and str(tmp_path / "masks" / "small.png") in reason
    assert "6×6" in reason and "8×8" in reason and "\n" not in reason


def test_classes_come_from_the_truth_masks_never_from_predictions(tmp_path: Path) -> None:
    make_folder_case(tmp_path, "a", square(8, 0, 0, 4, 2), square(8, 0, 0, 4, 3))
    assert count_classes(tmp_path) == 3  # truth holds 0 and 2: classes 0…2
    evaluation = evaluate_folder(tmp_path / "pred", tmp_path)  # predicted 3: listed, not a class
    assert evaluation.class_names == ["background", "class 1", "class 2"]
    assert (
        evaluation.names == []
        and "value(s) 3 outside" in evaluation.failed[tmp_path / "masks" / "a.png"]
    )
    named = evaluate_folder(tmp_path / "pred", tmp_path, num_classes=4, class_names=list("abcd"))
    assert named.class_names == ["a", "b", "c", "d"] and named.names == ["a"]


def test_spacing_gives_hd95_in_its_unit(tmp_path: Path) -> None:
    make_folder_case(tmp_path, "a", square(20, 2, 2, 6), square(20, 2, 5, 6))  # 3 px right
    pixels = evaluate_folder(tmp_path / "pred", tmp_path, hd95=True)
    assert pixels.hd95 is not None and pixels.hd95[0][1] == 3.0
    assert pixels.summary()["hd95"]["unit"] == "px"
    physical = evaluate_folder(tmp_path / "pred", tmp_path, hd95=True, spacing=(0.5, 2.0))
    assert physical.hd95 is not None and physical.hd95[0][1] == 6.0  # along x: 3 × 2.0
    assert physical.summary()["hd95"]["unit"] == "spacing [0.5, 2.0]"


def test_bad_folders_are_explained(tmp_path: Path) -> None:
    with pytest.raises(DrunetError, match="--pred .* does not exist"):
        folder_cases(tmp_path / "nope", tmp_path)
    (tmp_path / "pred").mkdir()
    with pytest.raises(DrunetError, match="no masks in"):
        folder_cases(tmp_path / "pred", tmp_path)


def test_binary_255_masks_are_read_as_classes(tmp_path: Path) -> None:
    make_folder_case(tmp_path, "a", square(8, 0, 0, 4) * 255, square(8, 0, 0, 4))
    evaluation = evaluate_folder(tmp_path / "pred", tmp_path)
    assert evaluation.num_classes == 2 and evaluation.summary()["mean"]["dice"] == 1.0
    assert np.isclose(evaluation.summary()["per_class"]["background"]["dice"], 1.0)
