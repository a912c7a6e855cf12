"""Loaders from the configuration, and user mistakes ``train`` refuses before a run folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from drunet.datasets import make_synthetic
from drunet.engine.data import make_loaders, prepare_data
from drunet.engine.train import train
from drunet.errors import DrunetError
from tests.engine.conftest import SIZES
from tests.engine.test_train import tiny_config

# ---------------------------------------------------------------- loaders


def test_loaders_follow_steps_per_epoch_and_batch_size(binary_data: Path, tmp_path: Path) -> None:
    prepared = prepare_data(tiny_config(binary_data, tmp_path))
    config, train_pairs, val_pairs = prepared.config, prepared.train, prepared.val
    assert (len(train_pairs), len(val_pairs)) == (5, 1)  # round(6 × 0.2) = 1 validation image
    train_loader, val_loader = make_loaders(config, train_pairs, val_pairs)
    batches = list(train_loader)
    assert len(train_loader) == len(batches) == 2
    assert all(x.shape == (2, 1, 32, 32) and y.shape == (2, 32, 32) for x, y in batches)
    (x, y), *rest = list(val_loader)
    assert rest == [] and x.shape[:2] == (1, 1) and tuple(x.shape[2:]) in SIZES

    config.train.steps_per_epoch = None  # one pass: 5 images in full batches of 2 …
    config.train.min_steps_per_epoch = 1
    train_loader, _ = make_loaders(config, train_pairs, val_pairs)
    assert len(train_loader) == len(list(train_loader)) == 2
    assert config.train.epoch_batches(5, 2) == 2  # the count the plan weighs a budget by
    assert config.train.epoch_batches(5, 2, world_size=2) == 1  # 5 // 4: the min of 1
    config.train.min_steps_per_epoch = 7  # … unless that is fewer steps than the minimum
    train_loader, _ = make_loaders(config, train_pairs, val_pairs)
    assert len(train_loader) == len(list(train_loader)) == 7 == config.train.epoch_batches(5, 2)
    assert config.train.epoch_draws(5, 2) == 7 and config.train.epoch_draws(14, 2) is None
    assert all(x.shape[0] == 2 for x, _ in train_loader)


# ---------------------------------------------------------------- user mistakes


def test_in_channels_mismatch_is_an_error(binary_data: Path, tmp_path: Path) -> None:
    config = tiny_config(binary_data, tmp_path / "runs", model={"in_channels": 3})
    with pytest.raises(DrunetError, match=r"1 channel\(s\) but the model expects 3"):
        train(config)
    assert not (tmp_path / "runs").exists()


def test_too_few_classes_is_an_error(tmp_path: Path) -> None:
    data = make_synthetic(tmp_path / "data", num_images=4, num_classes=3, sizes=SIZES, seed=1)
    config = tiny_config(data, tmp_path / "runs", model={"num_classes": 2})
    with pytest.raises(DrunetError, match=r"mask holds value 2 but there are 2 classes"):
        train(config)
    assert not (tmp_path / "runs").exists()


def test_missing_data_root_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DrunetError, match="no training data"):
        train(tiny_config(None, tmp_path / "runs"))


def test_existing_run_name_is_an_error_and_is_kept(binary_data: Path, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("keep me")
    with pytest.raises(DrunetError, match="already exists"):
        train(tiny_config(binary_data, tmp_path, name="taken"))
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["notes.txt"]
