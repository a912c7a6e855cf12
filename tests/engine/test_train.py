"""``train(config)`` end to end on tiny synthetic data: run folder, best/last, reproducibility."""

from __future__ import annotations

import csv
import gc
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader

from drunet.checkpoint import load_model, read_weights
from drunet.config import ExperimentConfig, config_from_dict, load_config
from drunet.datasets import compute_normalization, discover, make_synthetic
from drunet.device import select_precision
from drunet.engine.data import make_loaders, prepare_data, seed_everything
from drunet.engine.tensorboard import tensorboard_available
from drunet.engine.train import RunResult, train
from drunet.engine.trainer import Trainer, TrainerOptions
from drunet.losses import DiceCELoss
from drunet.models import DEFAULT_PRESET
from tests.conftest import TINY_PARAMS
from tests.engine.conftest import SIZES


def tiny_config(root: Path | None, runs_dir: Path, **sections: dict[str, Any]) -> ExperimentConfig:
    """A config that trains in well under a second; ``sections`` override per section."""
    raw: dict[str, Any] = {
        "name": None,
        "runs_dir": str(runs_dir),
        "model": {"params": TINY_PARAMS},
        "data": {
            "root": None if root is None else str(root),
            "augmentation": {"patch_size": 32},
            "batch_size": 2,
        },
        "train": {"epochs": 2, "steps_per_epoch": 2, "device": "cpu", "lr": 0.01, "seed": 3},
    }
    for section, values in sections.items():
        if isinstance(values, dict):
            raw[section] = {**raw.get(section, {}), **values}
        else:
            raw[section] = values
    return config_from_dict(raw)


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def run(binary_data: Path, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    runs_dir = tmp_path_factory.mktemp("runs")
    return train(tiny_config(binary_data, runs_dir, name="tiny", train={"warmup_epochs": 1}))


# ---------------------------------------------------------------- the run folder


def test_run_folder_holds_config_metrics_and_weights(run: RunResult) -> None:
    assert run.run_dir.name == "tiny"
    assert sorted(p.name for p in run.run_dir.iterdir()) == [
        "best.safetensors",
        "config.yaml",
        "last.safetensors",
        "metrics.csv",
        "postprocess.json",
        "progress.png",
        "state.pt",
        *(["tensorboard"] if tensorboard_available() else []),
    ]
    assert run.best_weights == run.run_dir / "best.safetensors"


def test_config_yaml_holds_what_the_data_decided(run: RunResult, binary_data: Path) -> None:
    config = load_config(run.run_dir / "config.yaml")
    assert config.model.in_channels == 1
    assert config.model.num_classes == 2
    assert config.model.spec().out_channels == 1
    assert config.name == "tiny"
    info = compute_normalization(discover(binary_data).train)  # measured on the training split
    assert config.data.normalization.mean == pytest.approx(info.mean)
    assert config.data.normalization.std == pytest.approx(info.std)
    assert 0.0 < config.data.normalization.mean[0] < 1.0 and config.data.normalization.std[0] > 0.0
    assert config == run.config
    assert read_weights(run.run_dir / "best.safetensors")[1] == config
    assert read_weights(run.run_dir / "last.safetensors")[1] == config


def test_metrics_csv_has_one_row_per_epoch(run: RunResult) -> None:
    rows = read_metrics(run.run_dir)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert {"train_loss", "val_loss", "lr", "seconds", "dice", "iou", "dice_1"} <= set(rows[0])
    for row, record in zip(rows, run.history, strict=True):
        assert float(row["dice"]) == pytest.approx(record.scores["dice"], rel=1e-5)
        assert float(row["val_loss"]) == pytest.approx(record.val_loss, rel=1e-5)
        assert 0.0 <= float(row["dice"]) <= 1.0
    # lr 0.01, one warm-up epoch of 2 steps: epoch 1 starts at 1/2 of it, epoch 2 at the peak.
    assert [float(r["lr"]) for r in rows] == pytest.approx([0.005, 0.01])


def test_best_score_is_the_best_dice_in_the_csv(run: RunResult) -> None:
    dice = [float(r["dice"]) for r in read_metrics(run.run_dir)]
    assert run.best_score == pytest.approx(max(dice), rel=1e-5)
    assert run.best_epoch == dice.index(max(dice)) + 1


def test_best_weights_reproduce_the_best_score(run: RunResult) -> None:
    model, config = load_model(run.best_weights)
    prepared = prepare_data(config)
    _, train_pairs, val_pairs = prepared.config, prepared.train, prepared.val
    _, val_loader = make_loaders(config, train_pairs, val_pairs)
    precision = select_precision(torch.device("cpu"), "fp32")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    trainer = Trainer(
        model, DiceCELoss(), optimizer, scheduler, [], val_loader, TrainerOptions(2, precision)
    )
    _, scores = trainer.validate()
    assert scores["dice"] == pytest.approx(run.best_score, abs=1e-9)


# ---------------------------------------------------------------- which epoch is best


def _script_validation(monkeypatch: pytest.MonkeyPatch, scores: list[dict[str, float]]) -> list:
    """Make validation return ``scores`` epoch by epoch and snapshot the weights it saw."""
    snapshots: list[dict[str, torch.Tensor]] = []

    def validate(self: Trainer) -> tuple[float, dict[str, float]]:
        snapshots.append({k: v.detach().clone() for k, v in self.model.state_dict().items()})
        return 0.5, dict(scores[len(snapshots) - 1])

    monkeypatch.setattr(Trainer, "validate", validate)
    return snapshots


def _same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("monitor", "best_epoch", "best_score"),
    [("dice", 2, 0.7), ("iou", 1, 0.6), ("image_dice", 1, 0.9)],
)
def test_best_weights_are_the_best_epochs_weights(
    binary_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    monitor: str,
    best_epoch: int,
    best_score: float,
) -> None:
    scripted = [
        {"dice": 0.3, "iou": 0.6, "image_dice": 0.9},
        {"dice": 0.7, "iou": 0.2, "image_dice": 0.1},
        {"dice": 0.5, "iou": 0.4, "image_dice": 0.4},
    ]
    snapshots = _script_validation(monkeypatch, scripted)
    config = tiny_config(binary_data, tmp_path, train={"epochs": 3, "monitor": monitor})
    result = train(config)
    assert (result.best_epoch, result.best_score) == (best_epoch, best_score)
    assert [float(r[monitor]) for r in read_metrics(result.run_dir)] == [
        s[monitor] for s in scripted
    ]
    best, _ = read_weights(result.best_weights)
    last, _ = read_weights(result.run_dir / "last.safetensors")
    assert _same_state(best, snapshots[best_epoch - 1])
    assert _same_state(last, snapshots[2])
    assert not _same_state(best, last)


# ---------------------------------------------------------------- reproducibility


def test_seeded_training_is_reproducible(binary_data: Path, tmp_path: Path) -> None:
    first = train(tiny_config(binary_data, tmp_path))
    second = train(tiny_config(binary_data, tmp_path))
    other_seed = train(tiny_config(binary_data, tmp_path, train={"seed": 4}))
    # Automatic names never collide, and the stored config names the folder it lives in.
    assert len({first.run_dir, second.run_dir, other_seed.run_dir}) == 3
    assert first.run_dir.name.endswith(f"-{DEFAULT_PRESET}")  # "drunet" pinned to its preset
    assert load_config(first.run_dir / "config.yaml").name == first.run_dir.name

    a, _ = read_weights(first.run_dir / "last.safetensors")
    b, _ = read_weights(second.run_dir / "last.safetensors")
    c, _ = read_weights(other_seed.run_dir / "last.safetensors")
    assert _same_state(a, b)
    assert not _same_state(a, c)
    losses = [[r.train_loss for r in res.history] for res in (first, second)]
    assert losses[0] == losses[1]


def test_seeded_training_with_a_loader_worker_is_reproducible(
    binary_data: Path, tmp_path: Path
) -> None:
    config = tiny_config(binary_data, tmp_path, data={"num_workers": 1}, train={"epochs": 1})
    gc.collect()
    gc.disable()
    try:
        first = train(config)
        # Freed by reference counting: a cycle would leave the persistent workers to the cyclic
        # collector, whose shutdown of them waits 5 s for each loader.
        alive = [o for o in gc.get_objects() if type(o) is DataLoader]
    finally:
        gc.enable()
    assert alive == []
    second = train(config)
    a, _ = read_weights(first.run_dir / "last.safetensors")
    b, _ = read_weights(second.run_dir / "last.safetensors")
    assert _same_state(a, b)


def test_seed_everything_returns_a_seeded_generator() -> None:
    first = torch.randint(0, 1000, (5,), generator=seed_everything(7))
    second = torch.randint(0, 1000, (5,), generator=seed_everything(7))
    assert torch.equal(first, second)
    seed_everything(7)
    a = torch.rand(3)
    seed_everything(7)
    assert torch.equal(a, torch.rand(3))


# ---------------------------------------------------------------- multi-class


def test_multiclass_rgb_data_trains_one_logit_per_class(tmp_path: Path) -> None:
    data = make_synthetic(
        tmp_path / "data", num_images=6, num_classes=3, sizes=SIZES, channels=3, seed=2
    )
    result = train(tiny_config(data, tmp_path / "runs", train={"epochs": 1}))
    config = load_config(result.run_dir / "config.yaml")
    assert (config.model.in_channels, config.model.num_classes) == (3, 3)
    assert len(config.data.normalization.mean) == len(config.data.normalization.std) == 3
    state, _ = read_weights(result.best_weights)
    assert state["head.weight"].shape == (3, 4, 1, 1)
    assert state["encoder.stem.0.0.weight"].shape == (4, 3, 3, 3)
    model, _ = load_model(result.best_weights)
    assert model(torch.zeros(1, 3, 20, 28)).shape == (1, 3, 20, 28)
    rows = read_metrics(result.run_dir)
    assert len(rows) == 1 and {"dice_0", "dice_1", "dice_2", "iou_2"} <= set(rows[0])
    mean_fg = (float(rows[0]["dice_1"]) + float(rows[0]["dice_2"])) / 2
    assert float(rows[0]["dice"]) == pytest.approx(mean_fg, abs=2e-6)
