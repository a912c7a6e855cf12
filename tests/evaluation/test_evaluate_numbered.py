"""``evaluate_folder(..., stack=PATTERN)`` / ``drunet evaluate --pred --truth --stack``: 2D masks
named as numbered slices are scored per stack exactly as the same slices in multi-page TIFFs
(the stacks and hand-computed counts of tests/evaluation/test_evaluate_stacks.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from drunet.cli.main import app
from drunet.datasets import write_mask
from drunet.errors import DrunetError
from drunet.evaluation.folder import evaluate_folder
from tests.evaluation.test_evaluate_stacks import STACKS

PATTERN = "{name}_z{index}"


def numbered_folders(tmp_path: Path) -> tuple[Path, Path]:
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    pred.mkdir()
    truth.mkdir()
    for name, (predicted, reference) in STACKS.items():
        for k, (p, t) in enumerate(zip(predicted, reference, strict=True)):
            write_mask(truth / f"{name}_z{k + 1}.png", t)
            write_mask(pred / f"{name}_z{k + 1}_mask.png", p)
    return pred, truth


def test_numbered_slices_are_scored_per_stack_like_a_tiff_stack(tmp_path: Path) -> None:
    pred, truth = numbered_folders(tmp_path)
    evaluation = evaluate_folder(pred, truth, stack=PATTERN)
    assert evaluation.failed == {}
    assert evaluation.stacks == ["a"] * 3 + ["b"] * 3 and evaluation.slices == [1, 2, 3] * 2
    stacks = {s.name: s for s in evaluation.stack_scores()}
    a, b = stacks["a"], stacks["b"]
    assert (a.counts["tp"][1], a.counts["fp"][1], a.counts["fn"][1]) == (20, 4, 5)
    assert a.per_class["dice"][1] == pytest.approx(40 / 49)
    assert b.per_class["dice"][1] == pytest.approx(48 / 56)
    # Without the pattern the same files are 2D images: no stacks.
    assert evaluate_folder(pred, truth).stack_scores() == []


def test_a_pattern_without_a_name_makes_the_folder_one_stack(tmp_path: Path) -> None:
    pred, truth = numbered_folders(tmp_path)
    for path in [*truth.iterdir(), *pred.iterdir()]:
        if path.name.startswith("b_"):
            path.unlink()
    evaluation = evaluate_folder(pred, truth, stack="a_z{index}")
    (only,) = evaluation.stack_scores()
    assert only.name == "a_z*" and only.slices == 3
    assert only.per_class["dice"][1] == pytest.approx(40 / 49)


def test_a_mask_off_the_pattern_fails_naming_it_and_the_rest_are_scored(tmp_path: Path) -> None:
    pred, truth = numbered_folders(tmp_path)
    write_mask(truth / "overview.png", np.ones((4, 4), np.uint8))
    write_mask(pred / "overview_mask.png", np.ones((4, 4), np.uint8))
    evaluation = evaluate_folder(pred, truth, stack=PATTERN)
    assert evaluation.failed == {
        truth / "overview.png": (
            "overview.png does not match --stack '{name}_z{index}'; name the slices by the "
            "pattern or choose one that fits them"
        )
    }
    assert len(evaluation.names) == 6


@pytest.mark.parametrize("pattern", ["{name}_z", "{name}_{index}_{index}", "{name}_{slice}"])
def test_a_malformed_pattern_is_an_error_naming_the_flag(tmp_path: Path, pattern: str) -> None:
    pred, truth = numbered_folders(tmp_path)
    with pytest.raises(DrunetError, match=r"^--stack .* e\.g\."):
        evaluate_folder(pred, truth, stack=pattern)


def test_cli_stack_writes_per_stack_csv(tmp_path: Path) -> None:
    runner = CliRunner()
    pred, truth = numbered_folders(tmp_path)
    out = tmp_path / "eval"
    args = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--out", str(out)]
    result = runner.invoke(app, [*args, "--stack", PATTERN])
    assert result.exit_code == 0, result.output
    with (out / "per_stack.csv").open() as file:
        rows = {(r["stack"], r["class"]): r for r in csv.DictReader(file)}
    assert float(rows[("a", "1")]["dice"]) == pytest.approx(40 / 49, abs=1e-6)
    assert rows[("a", "1")]["slices"] == "3"
    bad = runner.invoke(app, [*args, "--stack", "{name}"])
    assert bad.exit_code == 2 and "--stack '{name}' needs exactly one {index}" in bad.output
    model_mode = runner.invoke(app, ["evaluate", "--stack", PATTERN, "--out", str(out)])
    assert model_mode.exit_code == 2 and "--stack goes with --pred" in model_mode.output
