"""Resume: a run stopped after epoch 2 and resumed equals an uninterrupted run."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from drunet import checkpoint as runs
from drunet.config import config_from_dict
from drunet.datasets import make_synthetic
from drunet.engine.epochs import EpochRecord
from drunet.engine.state import load_state
from drunet.engine.train import resume, train
from drunet.engine.trainer import Trainer
from drunet.errors import DrunetError
from tests.conftest import TINY_PARAMS


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("resume") / "data"
    return make_synthetic(root, num_images=6, sizes=((48, 48), (40, 56)), seed=1)


def config(data: Path, runs_dir: Path, name: str, **train: Any):
    return config_from_dict(
        {
            "name": name,
            "runs_dir": str(runs_dir),
            "model": {"params": TINY_PARAMS},
            "data": {"root": str(data), "augmentation": {"patch_size": 32}, "batch_size": 2},
            "train": {
                "epochs": 4,
                "steps_per_epoch": 3,
                "device": "cpu",
                "lr": 0.01,
                "warmup_epochs": 1,
                "seed": 5,
                **train,
            },
        }
    )


class StopBefore:
    """A reporter that interrupts training when ``epoch`` starts (like Ctrl-C or a kill)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.lrs: list[float] = []

    def start_epoch(self, epoch: int, epochs: int, steps: int) -> None:
        if epoch == self.epoch:
            raise KeyboardInterrupt

    def step(self, loss: float) -> None:
        pass

    def end_epoch(self, record: EpochRecord) -> None:
        pass


class StopAt:
    """A reporter that interrupts training (like Ctrl-C) at ``step`` of ``epoch``."""

    def __init__(self, epoch: int, step: int = 1) -> None:
        self.epoch, self.stop_step = epoch, step
        self.current, self.steps = 0, 0

    def start_epoch(self, epoch: int, epochs: int, steps: int) -> None:
        self.current, self.steps = epoch, 0

    def step(self, loss: float) -> None:
        self.steps += 1
        if (self.current, self.steps) == (self.epoch, self.stop_step):
            raise KeyboardInterrupt

    def end_epoch(self, record: EpochRecord) -> None:
        pass


def digests(run: Path) -> dict[str, str]:
    """Every file in the run folder → its SHA-256."""
    return {
        str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run.rglob("*"))
        if p.is_file()
    }


def csv_column(run: Path, name: str) -> list[str]:
    with (run / "metrics.csv").open(newline="") as handle:
        return [row[name] for row in csv.DictReader(handle)]


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / runs.LAST))


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-6, rtol=1e-5), key


def test_stop_and_resume_equals_straight_run(data: Path, tmp_path: Path) -> None:
    straight = train(config(data, tmp_path, "straight"))
    with pytest.raises(KeyboardInterrupt):
        train(config(data, tmp_path, "split"), reporter=StopBefore(3))
    assert load_state(tmp_path / "split" / "state.pt").epoch == 2
    resumed = resume(tmp_path / "split")
    assert [r.epoch for r in resumed.history] == [1, 2, 3, 4]
    # The LR at the start of every epoch is identical (no jump after resume).
    assert [r.lr for r in resumed.history] == pytest.approx([r.lr for r in straight.history])
    assert [r.train_loss for r in resumed.history] == pytest.approx(
        [r.train_loss for r in straight.history], rel=1e-5
    )
    assert_same_weights(weights(straight.run_dir), weights(resumed.run_dir))
    assert resumed.best_epoch == straight.best_epoch
    assert (tmp_path / "split" / "metrics.csv").read_text().count("\n") == 5  # header + 4


def test_resume_can_raise_the_epoch_count_without_an_lr_jump(data: Path, tmp_path: Path) -> None:
    first = train(config(data, tmp_path, "short", epochs=2))
    resumed = resume(tmp_path / "short", epochs=4)
    lrs = [r.lr for r in resumed.history]
    assert [r.epoch for r in resumed.history] == [1, 2, 3, 4]
    assert lrs[:2] == pytest.approx([r.lr for r in first.history])
    # After the warm-up the decay is monotone through the resume point: no restart upwards.
    assert lrs[1] >= lrs[2] >= lrs[3] > 0
    # And the stored config now says 4 epochs.
    assert "epochs: 4" in (tmp_path / "short" / "config.yaml").read_text()


def test_resume_below_finished_epochs_is_refused(data: Path, tmp_path: Path) -> None:
    train(config(data, tmp_path, "done", epochs=2))
    with pytest.raises(DrunetError, match="below the 2 epochs"):
        resume(tmp_path / "done", epochs=1)


def test_resume_of_a_non_run_folder_names_it(tmp_path: Path) -> None:
    with pytest.raises(DrunetError, match="not a run folder"):
        resume(tmp_path)


def test_crash_while_writing_a_checkpoint_keeps_the_previous_one(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import drunet.atomic as atomic

    real_replace = atomic.os.replace
    calls = {"n": 0}

    def crash_on_epoch_two(src: str, dst: str) -> None:
        # Epoch 1 writes best, last, state, csv, png, config (6 renames); crash in epoch 2.
        calls["n"] += 1
        if calls["n"] > 8 and str(dst).endswith("state.pt"):
            raise OSError("simulated crash (disk full) during the write")
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", crash_on_epoch_two)
    with pytest.raises(OSError, match="simulated crash"):
        train(config(data, tmp_path, "crash"))
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    run = tmp_path / "crash"
    assert load_state(run / "state.pt").epoch == 1  # the previous state, still loadable
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    resumed = resume(run)
    assert [r.epoch for r in resumed.history] == [1, 2, 3, 4]


def test_early_stopping_stops_after_patience(data: Path, tmp_path: Path) -> None:
    result = train(config(data, tmp_path, "early", epochs=30, lr=1e-9, early_stopping=2))
    # With a near-zero LR nothing improves after epoch 1, so training stops at epoch 3.
    assert result.stopped_early
    assert [r.epoch for r in result.history][-1] == result.best_epoch + 2


def test_time_budget_stops_training_early(data: Path, tmp_path: Path) -> None:
    # A budget of 0.6 s: far fewer than the 50 allowed epochs fit, and the run says so.
    result = train(config(data, tmp_path, "budget", epochs=50, max_minutes=0.01))
    assert result.stopped_early
    assert 1 <= len(result.history) < 50


def test_a_resume_that_fails_before_its_first_epoch_leaves_the_run_as_it_was(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = train(config(data, tmp_path, "kept", epochs=2)).run_dir
    before = digests(run)

    def disk_full(self: Trainer) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "validate", disk_full)  # the first new epoch trains, then fails
        with pytest.raises(OSError, match="No space left"):
            resume(run, epochs=4)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C in the middle of the first new epoch
        resume(run, epochs=4, reporter=StopAt(3, step=2))
    assert digests(run) == before  # config.yaml still says 2 epochs; no TensorBoard file either


def test_an_interrupted_extension_resumed_again_trains_like_an_uninterrupted_one(
    data: Path, tmp_path: Path
) -> None:
    runs_made = []
    for name in ("straight", "split"):  # both stopped after epoch 2 of 4: the LR is mid-decay
        with pytest.raises(KeyboardInterrupt):
            train(config(data, tmp_path, name), reporter=StopBefore(3))
        runs_made.append(tmp_path / name)
    straight, split = runs_made
    uninterrupted = resume(straight, epochs=6)
    with pytest.raises(KeyboardInterrupt):
        resume(split, epochs=6, reporter=StopAt(3, step=2))  # nothing new saved
    with pytest.raises(KeyboardInterrupt):
        resume(split, epochs=6, reporter=StopAt(5))  # epochs 3 and 4 saved
    assert load_state(split / "state.pt").schedule.epochs == 6
    assert "epochs: 6" in (split / "config.yaml").read_text()  # came with epoch 3's checkpoint
    resumed = resume(split)  # no --epochs: the stored total and anchor carry the schedule
    assert csv_column(split, "epoch") == ["1", "2", "3", "4", "5", "6"]
    assert csv_column(split, "lr") == csv_column(straight, "lr")
    assert [r.lr for r in resumed.history] == [r.lr for r in uninterrupted.history]  # exactly
    lrs = [r.lr for r in resumed.history]
    assert lrs[1] > lrs[2] > lrs[3] > lrs[4] > lrs[5] > 0.01 * 0.01  # one decay, no restart
    assert_same_weights(weights(straight), weights(split))
