"""``metrics.csv``: one header and one row per epoch, numbers parse back."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from drunet.engine.epochs import EpochRecord
from drunet.engine.run_folder import write_metrics_csv


def _records() -> list[EpochRecord]:
    return [
        EpochRecord(1, 0.75, 0.5, 1e-3, 12.5, {"dice": 0.25, "iou": 1 / 7, "dice_1": 0.25}),
        EpochRecord(2, 0.5, 0.375, 5.05e-4, 11.0, {"dice": 0.8, "iou": 2 / 3, "dice_1": 0.8}),
    ]


def test_row_flattens_scores_after_the_fixed_columns() -> None:
    row = _records()[0].row()
    fixed = ["epoch", "train_loss", "val_loss", "lr", "seconds", "train_seconds", "samples"]
    assert list(row) == [*fixed, "dice", "iou", "dice_1"]
    assert row["epoch"] == 1 and row["iou"] == 1 / 7


def test_csv_has_the_header_and_one_row_per_epoch(tmp_path: Path) -> None:
    path = tmp_path / "run" / "metrics.csv"
    write_metrics_csv(path, _records())
    text = path.read_text(encoding="utf-8")
    header = "epoch,train_loss,val_loss,lr,seconds,train_seconds,samples,dice,iou,dice_1"
    assert text.splitlines()[0] == header
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    assert [row["epoch"] for row in rows] == ["1", "2"]
    expected = [
        {"train_loss": 0.75, "val_loss": 0.5, "lr": 1e-3, "seconds": 12.5, "dice": 0.25},
        {"train_loss": 0.5, "val_loss": 0.375, "lr": 5.05e-4, "seconds": 11.0, "dice": 0.8},
    ]
    for row, values in zip(rows, expected, strict=True):
        for key, value in values.items():
            assert float(row[key]) == pytest.approx(value, rel=1e-6), key
    assert float(rows[0]["iou"]) == pytest.approx(1 / 7, rel=1e-5)
    assert rows[0]["iou"] == "0.142857"  # six significant digits
    assert float(rows[1]["iou"]) == pytest.approx(2 / 3, rel=1e-5)


def test_rewriting_replaces_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    records = _records()
    write_metrics_csv(path, records)
    write_metrics_csv(path, records[:1])
    assert path.read_text(encoding="utf-8").count("\n") == 2  # header + one row


def test_columns_are_the_union_of_all_scores(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    records = [
        EpochRecord(1, 1.0, 1.0, 0.1, 1.0, {"dice": 0.5}),
        EpochRecord(2, 1.0, 1.0, 0.1, 1.0, {"dice": 0.6, "dice_2": 0.3}),
    ]
    write_metrics_csv(path, records)
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["dice_2"] == "" and float(rows[1]["dice_2"]) == 0.3
