"""``drunet evaluate --pred --truth`` on multi-page mask stacks: per-slice rows, per-stack table
and file, a page count mismatch listed (exit 3). The counts are those of
tests/evaluation/test_evaluate_stacks.py."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from drunet.cli.main import app
from drunet.datasets import write_mask
from tests.evaluation.test_evaluate_stacks import ONES, write_stacks


def folders(tmp_path: Path) -> tuple[Path, Path]:
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    pred.mkdir()
    write_stacks(None, truth, pred)
    return pred, truth


def test_stacks_get_a_per_stack_table_and_file(runner, tmp_path) -> None:
    pred, truth = folders(tmp_path)
    write_mask(truth / "c.tif", np.stack([ONES, ONES, ONES]))
    write_mask(pred / "c_mask.tif", np.stack([ONES, ONES]))
    out = tmp_path / "eval"
    args = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--out", str(out)]
    result = runner.invoke(app, [*args, "--report"])
    assert result.exit_code == 3, result.output
    lines = result.output.splitlines()
    assert "6 slice(s) of 2 stack(s)" in lines
    assert "| a | 3 | 0.8163 | 0.6897 | 0.8333 | 0.8000 |" in lines  # 40/49, 20/29, 20/24, 20/25
    assert "| b | 3 | 0.8571 | 0.7500 | 1.0000 | 0.7500 |" in lines  # 6/7
    failure = next(line for line in lines if "page(s)" in line)
    assert str(pred / "c_mask.tif") in failure and str(truth / "c.tif") in failure
    assert str(out / "per_stack.csv") in next(line for line in lines if "wrote" in line)
    with (out / "per_stack.csv").open() as file:
        assert [r["stack"] for r in csv.DictReader(file)] == ["a", "a", "b", "b"]
    assert "Per stack" in (out / "report.html").read_text()

    as_json = runner.invoke(app, [*args, "--json"])
    assert as_json.exit_code == 3
    summary = json.loads(as_json.stdout)
    assert summary["per_stack"]["stacks"]["b"]["mean"]["dice"] == 6 / 7
    assert list(summary["failed"]) == [str(truth / "c.tif")]


def test_one_stack_prints_no_per_stack_table(runner, tmp_path) -> None:
    pred, truth = folders(tmp_path)
    for path in (pred / "b_mask.tif", truth / "b.tif"):
        path.unlink()
    out = tmp_path / "eval"
    args = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "3 slice(s) of 1 stack(s)" in result.output and "per stack" not in result.output
    assert (out / "per_stack.csv").is_file()


def test_many_stacks_show_the_ten_worst(runner, tmp_path) -> None:
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    pred.mkdir()
    for i in range(12):
        # page 1 predicts i of 16 true pixels: tp 16 + i, fn 16 - i → Dice (32 + 2i) / (48 + i),
        # growing with i: s00 … s09 are the ten lowest.
        partial = (np.arange(16) < i).reshape(4, 4).astype(np.uint8)
        write_mask(pred / f"s{i:02d}_mask.tif", np.stack([ONES, partial]))
        write_mask(truth / f"s{i:02d}.tif", np.stack([ONES, ONES]))
    args = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--out", str(tmp_path / "e")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    rows = [line.split(" | ")[0][2:] for line in lines if line.startswith(("| s0", "| s1"))]
    assert rows == [f"s{i:02d}" for i in range(10)]
    assert "per stack (12)" in result.output and "the 10 lowest Dice" in result.output
    assert f"| s00 | 2 | {32 / 48:.4f} |" in result.output
