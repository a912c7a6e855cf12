"""``train(config)``: data → model → Trainer → run folder. The CLI only calls this."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler

from drunet.config import ExperimentConfig, save_config
from drunet.datasets import (
    SegmentationDataset,
    find_pairs,
    inspect_pairs,
    split_pairs,
    train_transform,
)
from drunet.engine import run_dir as runs
from drunet.engine.checkpoint import build_model, save_config_and_weights
from drunet.engine.device import select_device, select_precision
from drunet.engine.history import EpochRecord, write_metrics_csv
from drunet.engine.trainer import Reporter, Trainer, cosine_with_warmup
from drunet.errors import DrunetError
from drunet.losses import make_loss

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """Where a finished run lives and how good its best epoch was."""

    run_dir: Path
    best_epoch: int
    best_score: float  # the monitored validation metric (Dice by default)
    history: list[EpochRecord]
    config: ExperimentConfig

    @property
    def best_weights(self) -> Path:
        return self.run_dir / runs.BEST


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a generator for the data loader's shuffling."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _worker_init(worker_id: int) -> None:
    # Each worker gets a distinct, reproducible NumPy/random stream for its augmentations.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def prepare_config(config: ExperimentConfig) -> tuple[ExperimentConfig, list, list]:
    """Fill what the data decides (channels, classes, normalisation) and split the pairs."""
    if config.data.root is None:
        raise DrunetError("no training data: pass --data DIR (a folder with images/ and masks/)")
    pairs = find_pairs(config.data.root)
    train_pairs, val_pairs = split_pairs(pairs, config.data.val_fraction, config.data.split_seed)
    info = inspect_pairs(train_pairs)
    config = config.model_copy(deep=True)
    model, data = config.model, config.data
    if model.in_channels is None:
        model.in_channels = info.in_channels
    elif model.in_channels != info.in_channels:
        raise DrunetError(
            f"model.in_channels is {model.in_channels} but the images in {data.root} have "
            f"{info.in_channels} channel(s); remove the setting to infer it"
        )
    if model.num_classes is None:
        model.num_classes = max(info.num_classes, 2)
    elif model.num_classes < info.num_classes:
        # Otherwise the loss fails mid-training with a ValueError about target values.
        raise DrunetError(
            f"model.num_classes is {model.num_classes} but the masks in {data.root} hold class "
            f"indices up to {info.num_classes - 1}; remove the setting to infer it"
        )
    if data.mean is None or data.std is None:
        data.mean, data.std = list(info.mean), list(info.std)
    return config, train_pairs, val_pairs


def make_loaders(
    config: ExperimentConfig, train_pairs: list, val_pairs: list, generator: torch.Generator
) -> tuple[DataLoader, DataLoader]:
    """Random patches for training; whole images one at a time for validation."""
    data, pin = config.data, torch.cuda.is_available()
    train_set = SegmentationDataset(
        train_pairs, data.mean, data.std, transform=train_transform(data.patch_size)
    )
    val_set = SegmentationDataset(val_pairs, data.mean, data.std)
    steps = config.train.steps_per_epoch
    sampler = RandomSampler(
        train_set,
        replacement=steps is not None,
        num_samples=steps * data.batch_size if steps else None,
        generator=generator,
    )
    common = dict(num_workers=data.num_workers, pin_memory=pin, worker_init_fn=_worker_init)
    train_loader = DataLoader(
        train_set,
        batch_size=data.batch_size,
        sampler=sampler,
        drop_last=len(train_set) >= data.batch_size and steps is None,
        persistent_workers=data.num_workers > 0,
        **common,
    )
    val_loader = DataLoader(val_set, batch_size=1, shuffle=False, **common)
    return train_loader, val_loader


def train(config: ExperimentConfig, reporter: Reporter | None = None) -> RunResult:
    """Train the configured model and write ``runs/<name>/``; return where and how well.

    The run folder receives ``config.yaml`` (the effective configuration), ``metrics.csv``
    (one row per epoch), ``last.safetensors`` (every epoch) and ``best.safetensors`` (the epoch
    with the best validation ``train.monitor``), each weights file carrying the configuration.
    """
    config, train_pairs, val_pairs = prepare_config(config)
    generator = seed_everything(config.train.seed)
    device = select_device(config.train.device)
    precision = select_precision(device, config.train.amp)
    model = build_model(config).to(device)
    train_loader, val_loader = make_loaders(config, train_pairs, val_pairs, generator)

    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.train.lr, weight_decay=config.train.weight_decay
    )
    steps_per_epoch = len(train_loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        cosine_with_warmup(
            config.train.epochs * steps_per_epoch, config.train.warmup_epochs * steps_per_epoch
        ),
    )
    run_dir = runs.create_run_dir(config.runs_dir, config.name, config.model.name)
    config.name = run_dir.name
    save_config(config, run_dir / runs.CONFIG)
    log.info("run folder %s", run_dir)
    monitor = config.train.monitor
    best = {"epoch": 0, "score": -1.0}
    history: list[EpochRecord] = []

    # The callback must not reference ``trainer``: that cycle would leave the persistent loader
    # workers to the cyclic garbage collector, whose shutdown of them hangs for 5 s.
    def on_epoch_end(record: EpochRecord) -> None:
        history.append(record)
        write_metrics_csv(run_dir / runs.METRICS, history)
        save_config_and_weights(run_dir, runs.LAST, model, config)
        if record.scores[monitor] > best["score"]:
            best.update(epoch=record.epoch, score=record.scores[monitor])
            save_config_and_weights(run_dir, runs.BEST, model, config)

    trainer = Trainer(
        model,
        make_loss(config.model.num_classes).to(device),
        optimizer,
        scheduler,
        train_loader,
        val_loader,
        config.model.num_classes,
        precision,
        reporter=reporter,
        on_epoch_end=on_epoch_end,
    )
    trainer.fit(config.train.epochs)
    return RunResult(run_dir, int(best["epoch"]), float(best["score"]), history, config)
