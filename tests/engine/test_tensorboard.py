"""TensorBoard events mirror metrics.csv, survive a resume without duplicates, and are optional."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from drunet.datasets import make_synthetic
from drunet.engine import tensorboard
from drunet.engine.train import resume, train
from tests.engine.test_train import tiny_config

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tb") / "data"
    return make_synthetic(root, num_images=4, sizes=((40, 40),), seed=1)


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run_dir / tensorboard.EVENTS_DIR))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def metrics(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_events_hold_the_csv_values_per_epoch(data: Path, tmp_path: Path) -> None:
    result = train(tiny_config(data, tmp_path / "runs", name="tb"))
    logged, rows = scalars(result.run_dir), metrics(result.run_dir)
    for tag, column in [("loss/train", "train_loss"), ("loss/val", "val_loss"), ("lr", "lr"),
                        ("val/dice", "dice"), ("val/iou", "iou")]:  # fmt: skip
        assert [step for step, _ in logged[tag]] == [1, 2]
        expected = [float(row[column]) for row in rows]
        assert [value for _, value in logged[tag]] == pytest.approx(expected, rel=1e-5)


def test_resume_appends_without_repeating_epochs(data: Path, tmp_path: Path) -> None:
    result = train(tiny_config(data, tmp_path / "runs", name="tb-resume"))
    resume(result.run_dir, epochs=4)
    logged = scalars(result.run_dir)
    assert [step for step, _ in logged["loss/train"]] == [1, 2, 3, 4]
    rows = metrics(result.run_dir)
    expected = [float(row["train_loss"]) for row in rows]
    assert [value for _, value in logged["loss/train"]] == pytest.approx(expected, rel=1e-5)


def test_switched_off_or_not_installed_writes_no_events(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    off = train(tiny_config(data, tmp_path / "runs", name="off", train={"tensorboard": False}))
    assert not (off.run_dir / tensorboard.EVENTS_DIR).exists()
    monkeypatch.setattr(tensorboard, "tensorboard_available", lambda: False)
    missing = train(tiny_config(data, tmp_path / "runs", name="missing"))
    assert not (missing.run_dir / tensorboard.EVENTS_DIR).exists()
    assert (missing.run_dir / "metrics.csv").is_file()  # the rest of the run is unchanged
