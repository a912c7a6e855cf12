"""`drunet verify`: one line per problem, a summary, JSON, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from drunet.cli.main import app
from drunet.datasets import write_image, write_mask

ISBI = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "isbi2012" / "train"


def test_clean_folder_passes_with_a_summary(runner, tiny_data) -> None:
    result = runner.invoke(app, ["verify", str(tiny_data)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "error" not in result.output  # notes (images smaller than the patch) are fine
    assert "pairs: 6 (6 usable" in result.output
    assert "classes: 2" in result.output


def test_messy_folder_gets_one_line_per_problem(runner, tiny_data, tmp_path) -> None:
    root = tmp_path / "messy"
    shutil.copytree(tiny_data, root)
    (root / "images" / "lonely.png").write_bytes((root / "images" / "000.png").read_bytes())
    write_mask(root / "masks" / "orphan.png", np.zeros((8, 8), np.uint8))
    (root / "images" / "001.png").write_bytes(b"")  # zero bytes
    write_image(root / "images" / "002.png", np.zeros((10, 12, 1), np.uint8))  # size mismatch
    result = runner.invoke(app, ["verify", str(root), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    errors = [p for p in report["problems"] if p["severity"] == "error"]
    by_file = {Path(p["path"]).name: p for p in errors}
    assert set(by_file) == {"lonely.png", "orphan.png", "001.png", "002.png"}
    assert len(errors) == 4  # exactly one line per problem
    assert "0 bytes" in by_file["001.png"]["message"] or "empty" in by_file["001.png"]["message"]


def test_mask_values_beyond_the_classes_are_listed(runner, tiny_data, tmp_path) -> None:
    root = tmp_path / "seven"
    shutil.copytree(tiny_data, root)
    mask = np.zeros((48, 48), np.uint8)
    mask[:4, :4] = 7
    write_mask(root / "masks" / "000.png", mask)
    result = runner.invoke(app, ["verify", str(root), "--num-classes", "3"], env={"COLUMNS": "250"})
    assert result.exit_code == 1
    assert "value 7" in result.output and "000.png" in result.output
    assert "training would refuse to start" in result.output


def test_missing_folder_is_reported(runner, tmp_path) -> None:
    result = runner.invoke(app, ["verify", str(tmp_path / "nope")], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "nope" in result.output and "Traceback" not in result.output


@pytest.mark.skipif(not ISBI.is_dir(), reason="ISBI 2012 not beside the repository")
def test_isbi_summary(runner) -> None:
    result = runner.invoke(app, ["verify", str(ISBI), "--json"])
    assert result.exit_code == 0
    summary = json.loads(result.output)["summary"]
    assert summary["pairs"] == 30 and summary["num_classes"] == 2
    assert summary["class_frequencies"][1] == pytest.approx(0.2196, abs=5e-4)
