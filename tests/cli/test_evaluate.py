"""`drunet evaluate` in-process: the files, the table, splits and errors."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch

from drunet.cli.main import app
from drunet.datasets import read_mask, write_mask
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


def test_evaluate_report_and_json(runner, trained_run, tiny_data, tmp_path) -> None:
    out = tmp_path / "eval"
    args = ["evaluate", "--model", str(trained_run), "--data", str(tiny_data), "--out", str(out)]
    result = runner.invoke(app, [*args, "--report", "--json", "--worst", "2"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)  # --json: stdout is the summary alone
    assert printed == json.loads((out / "summary.json").read_text())
    text = (out / "report.html").read_text()
    assert text.count("<tr data-name=") == 6 and 'id="worst-' in text
    assert text.count('<div class="case" id="worst-') == 2
    assert 'id="training"' in text and "config.yaml" in text  # the run's curves and config


def predictions_of(runner, trained_run, tiny_data, out) -> None:
    args = ["predict", str(tiny_data / "images"), "--model", str(trained_run), "--out", str(out)]
    result = runner.invoke(app, [*args, "--no-overlay"])
    assert result.exit_code == 0, result.output


def test_evaluate_a_folder_of_predictions_equals_the_model(
    runner, trained_run, tiny_data, tmp_path
) -> None:
    preds = tmp_path / "preds"
    predictions_of(runner, trained_run, tiny_data, preds)
    with_model = tmp_path / "model"
    args = ["evaluate", "--model", str(trained_run), "--data", str(tiny_data)]
    assert runner.invoke(app, [*args, "--out", str(with_model)]).exit_code == 0
    folder = tmp_path / "folder"
    args = ["evaluate", "--pred", str(preds), "--truth", str(tiny_data), "--out", str(folder)]
    result = runner.invoke(app, [*args, "--json", "--report"])
    assert result.exit_code == 0, result.output
    expected = json.loads((with_model / "summary.json").read_text())
    summary = json.loads(result.stdout)
    assert summary["mean"] == pytest.approx(expected["mean"])
    assert summary["images"] == 6 and summary["predictions"] == str(preds)
    assert (folder / "report.html").read_text().count("<tr data-name=") == 6


def test_folder_evaluation_failures_and_spacing(runner, tiny_data, tmp_path) -> None:
    preds = tmp_path / "preds"
    preds.mkdir()
    masks = sorted((tiny_data / "masks").iterdir())
    for mask in masks[1:]:  # the first has no prediction
        shutil.copy(mask, preds / f"{mask.stem}_mask.png")
    out = tmp_path / "eval"
    args = ["evaluate", "--pred", str(preds), "--truth", str(tiny_data / "masks")]
    result = runner.invoke(app, [*args, "--out", str(out), "--hd95"])
    assert result.exit_code == 3, result.output
    line = next(x for x in result.output.splitlines() if "no prediction" in x)
    assert str(masks[0]) in line and f"{masks[0].stem}_mask.png" in line
    assert json.loads((out / "summary.json").read_text())["images"] == len(masks) - 1

    shift = tmp_path / "shift"
    shift.mkdir()
    for mask in masks:
        write_mask(shift / mask.name, np.roll(read_mask(mask), 2, axis=1).astype(np.uint8))
    pixels = runner.invoke(
        app,
        [
            "evaluate",
            "--pred",
            str(shift),
            "--truth",
            str(tiny_data),
            "--hd95",
            "--json",
            "--out",
            str(tmp_path / "a"),
        ],
    )
    scaled = runner.invoke(
        app,
        [
            "evaluate",
            "--pred",
            str(shift),
            "--truth",
            str(tiny_data),
            "--spacing",
            "0.5",
            "0.5",
            "--json",
            "--out",
            str(tmp_path / "b"),
        ],
    )
    assert pixels.exit_code == scaled.exit_code == 0, pixels.output + scaled.output
    hd_px, hd_mm = json.loads(pixels.stdout)["hd95"], json.loads(scaled.stdout)["hd95"]
    assert hd_px["unit"] == "px" and hd_mm["unit"] == "spacing [0.5, 0.5]"
    assert hd_mm["mean"] == pytest.approx(hd_px["mean"] / 2)


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "--truth"),
        (["--truth", "T", "--model", "runs/x"], "--model"),
    ],
)
def test_folder_evaluation_usage_errors(runner, tmp_path, extra, message) -> None:
    args = ["evaluate", "--pred", str(tmp_path), *[str(tmp_path) if a == "T" else a for a in extra]]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and message in result.output


def test_no_prediction_at_all_is_exit_2(runner, tiny_data, tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--pred",
            str(tmp_path / "empty"),
            "--truth",
            str(tiny_data),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2 and "no prediction" in result.output


def test_table_in_a_log_file_keeps_every_cell(runner, trained_run, tiny_data, tmp_path) -> None:
    # CliRunner's output is not a terminal, like `drunet evaluate … > log`: a narrow width
    # must not cut numbers or names.
    args = ["evaluate", "--model", str(trained_run), "--data", str(tiny_data), "--hd95"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "e")], env={"COLUMNS": "30"})
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert "…" not in result.output
    for name, scores in summary["per_class"].items():
        assert name in result.output
        for key in ("dice", "iou", "precision", "recall"):
            value = scores[key]  # None: undefined, e.g. the precision of a class never predicted
            assert (f"{value:.4f}" if value is not None else "| — |") in result.output
    assert "| mean (foreground) |" in result.output
