"""`drunet evaluate` in-process: the files, the table, splits and errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from drunet.cli.main import app
from drunet.datasets import read_mask
from drunet.inference import Predictor
from drunet.metrics import StatsMeter


def test_evaluate_writes_csv_summary_and_table(runner, trained_run, tiny_data, tmp_path) -> None:
    out = tmp_path / "eval"
    args = ["evaluate", "--model", str(trained_run), "--data", str(tiny_data), "--out", str(out)]
    result = runner.invoke(app, [*args, "--hd95"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for word in ("Dice", "IoU", "precision", "recall", "HD95", "mean (foreground)", "6 image(s)"):
        assert word in result.output
    rows = list(csv.DictReader((out / "per_image.csv").open()))
    assert len(rows) == 6 * 2  # six images, two classes
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 6 and summary["split"] == "all"
    assert summary["model"] == str(trained_run / "best.safetensors")

    # The same numbers by hand: predict each image, count, score the summed counts.
    predictor = Predictor.from_run(trained_run)
    meter = StatsMeter(2)
    for image in sorted((tiny_data / "images").iterdir()):
        truth = read_mask(tiny_data / "masks" / image.name)
        meter.update(
            torch.from_numpy(predictor.predict(image).astype(np.int64))[None],
            torch.from_numpy(truth)[None],
        )
    assert summary["mean"]["dice"] == pytest.approx(meter.compute("macro").mean_dice)
    assert f"{summary['mean']['dice']:.4f}" in result.output
    per_image_dice = [float(r["dice"]) for r in rows if r["class"] == "1"]
    assert summary["reductions"]["macro-imagewise"]["dice"] == pytest.approx(
        np.mean(per_image_dice), abs=1e-6
    )


def test_evaluate_the_runs_own_validation_split(runner, trained_run, tmp_path) -> None:
    # No --data: the folder the run was trained on; --split val: its validation images.
    out = tmp_path / "eval"
    result = runner.invoke(
        app, ["evaluate", "--model", str(trained_run), "--split", "val", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["split"] == "val" and "val split" in summary["data"]
    assert 1 <= summary["images"] < 6


def test_evaluate_without_data_is_explained(runner, trained_run, tmp_path) -> None:
    result = runner.invoke(
        app, ["evaluate", "--model", str(trained_run), "--data", str(tmp_path / "missing")]
    )
    assert result.exit_code == 2
    assert "missing" in result.output and "does not exist" in result.output


def test_evaluate_help_lists_the_options(runner) -> None:
    result = runner.invoke(app, ["evaluate", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--model", "--data", "--split", "--out", "--hd95", "--tta", "--tile-size"):
        assert option in result.output
