"""From the configuration to data loaders: find, check, fill what the data decides, load;
epoch-seeded sampling (the order of epoch ``e`` depends only on ``(seed, e)``), so a resumed
run draws exactly the batches an uninterrupted run would have drawn, and each DDP rank takes
its own slice of the same permutation (the contract of ``DistributedSampler.set_epoch``)."""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from drunet.config import ExperimentConfig, updated
from drunet.datasets import (
    DatasetLayout,
    Pair,
    SegmentationDataset,
    VerifyReport,
    discover,
    verify_dataset,
)
from drunet.datasets.context import context_pairs, context_slices_of
from drunet.device import resolve_device
from drunet.errors import ConfigError, DrunetError

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    """The filled configuration, the split and the checks that ran on it."""

    config: ExperimentConfig
    train: list[Pair]
    val: list[Pair]
    report: VerifyReport


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a seeded generator."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def find_data(config: ExperimentConfig) -> DatasetLayout:
    """The dataset layout the config points at (``data.root`` and/or ``data.layout``)."""
    data = config.data
    if data.root is None and (data.layout.images is None or data.layout.masks is None):
        raise DrunetError(
            "no training data: pass --data DIR (a folder with images/ and masks/), or "
            "--images DIR --masks DIR"
        )
    return discover(data.root, data.layout)


def check_data(config: ExperimentConfig, layout: DatasetLayout) -> VerifyReport:
    """Run ``drunet verify``'s checks with the model's expectations; raise on errors."""
    model, data = config.model, config.data
    report = verify_dataset(
        layout,
        data.masks,
        normalization=data.normalization,
        num_classes=model.num_classes,
        in_channels=slice_channels(config),
        patch_size=data.augmentation.patch_size,
    )
    report.raise_for_errors()
    for problem in report.problems:
        log.warning("%s: %s", problem.path, problem.message)
    return report


def slice_channels(config: ExperimentConfig) -> int | None:
    """The channels of one image slice that ``model.in_channels`` implies: with 2.5D context
    (``data.context_slices = k``) the network takes ``(2k+1)·C``, so ``C = in_channels / (2k+1)``.
    ``None`` while ``in_channels`` is to be inferred."""
    in_channels, k = config.model.in_channels, context_slices_of(config.data)
    if in_channels is None or k == 0:
        return in_channels
    if in_channels % (2 * k + 1):
        raise ConfigError(
            f"model.in_channels is {in_channels}, not a multiple of 2·k+1 = {2 * k + 1} input "
            f"slices (data.context_slices={k}); remove model.in_channels to infer it"
        )
    return in_channels // (2 * k + 1)


def prepare_data(config: ExperimentConfig) -> PreparedData:
    """Find, check and split the data; return a copy of ``config`` filled from it.

    Filled when left empty: ``model.in_channels``, ``model.num_classes``,
    ``data.masks.class_names`` / ``ignore_index`` (from an nnU-Net dataset.json) and
    ``data.normalization`` (measured on the training split). Settings the user gave are
    checked against the data by the same checks as ``drunet verify``; training refuses to
    start on errors and prints the summary. With 2.5D context (``data.context_slices = k``)
    ``model.in_channels`` is ``(2k+1)·C`` (the stored normalisation stays ``C`` channels), and
    every pair must be a slice with neighbours (checked here, before a run folder exists).
    ``config`` itself is never changed.
    """
    layout = find_data(config)
    data = config.data
    if data.masks.ignore_index is None and layout.ignore_index is not None:
        config = updated(config, {"data.masks.ignore_index": layout.ignore_index})
    report = check_data(config, layout)
    summary = report.summary
    assert summary is not None  # raise_for_errors passed, so pairs were read
    k = context_slices_of(config.data)
    if k:
        context_pairs([*layout.train, *layout.val], k)  # a 2D image without neighbours raises
    model, masks = config.model, config.data.masks
    filled: dict[str, Any] = {}
    if model.in_channels is None and summary.channels is not None:
        filled["model.in_channels"] = (2 * k + 1) * summary.channels
    if model.num_classes is None:
        filled["model.num_classes"] = max(summary.num_classes, 2)
    if masks.class_names is None and summary.class_names:
        filled["data.masks.class_names"] = list(summary.class_names)
    if summary.normalization is not None:
        filled["data.normalization"] = summary.normalization
    config = updated(config, filled)
    # Write the preset's arguments out: the run's weights must rebuild the same network after a
    # later release changes a preset.
    config = config.model_copy(update={"model": config.model.pinned()})
    if not layout.val:
        raise DrunetError(
            f"{layout.root or config.data.layout.images}: no validation images after the split "
            f"({layout.split}); add a val/ folder, a split file, or more images"
        )
    return PreparedData(config, layout.train, layout.val, report)


def loader_workers(requested: int | None, cuda: bool) -> int:
    """``data.num_workers``, or when unset: up to 4 on CUDA, 0 on the CPU."""
    if requested is not None:
        return requested
    return min(4, os.cpu_count() or 1) if cuda else 0


def make_loaders(
    config: ExperimentConfig,
    train_pairs: list[Pair],
    val_pairs: list[Pair],
    rank: int = 0,
    world_size: int = 1,
    device: torch.device | None = None,
) -> tuple[DataLoader, DataLoader]:
    """Random patches for training (order and augmentation seeded per epoch and sample);
    whole images one at a time for validation. With ``world_size > 1`` each rank gets its own
    share of both. ``device`` is where training runs (default: ``train.device`` resolved)."""
    data, seed = config.data, config.train.seed
    train_set = SegmentationDataset(
        train_pairs,
        data.normalization,
        masks=data.masks,
        augmentation=data.augmentation,
        cache=data.cache,
        seed=seed,
        context_slices=context_slices_of(data),
    )
    # Whole images, rank r taking every world_size-th from r: shares differ by one at most and
    # may be empty (validation runs no collective per image; see Trainer.validate).
    val_set = SegmentationDataset(
        val_pairs[rank::world_size],
        data.normalization,
        masks=data.masks,
        cache=data.cache,
        context_slices=context_slices_of(data),
    )
    # Page-locked buffers make host→GPU copies asynchronous: only when training on CUDA.
    device = device or resolve_device(config.train.device)
    pin = device.type == "cuda"
    workers = loader_workers(data.num_workers, pin)
    if data.cache and workers > 0:
        train_set.preload()  # decode once; forked workers share the arrays
        val_set.preload()
    steps = config.train.epoch_draws(len(train_set), data.batch_size, world_size)
    sampler = EpochSampler(
        len(train_set),
        seed=seed,
        num_samples=steps * data.batch_size * world_size if steps else None,
        rank=rank,
        world_size=world_size,
    )

    # Not persistent: workers are re-forked each epoch so they see the dataset's epoch.
    train_loader = DataLoader(
        train_set,
        batch_size=data.batch_size,
        sampler=sampler,
        drop_last=len(sampler) >= data.batch_size and steps is None,
        num_workers=workers,
        pin_memory=pin,
    )
    val_loader = DataLoader(val_set, batch_size=1, num_workers=workers, pin_memory=pin)
    return train_loader, val_loader


class EpochSampler(Sampler[int]):
    """Indices for one epoch: a shuffled pass, or ``num_samples`` draws with replacement.

    Args:
        size: dataset length.
        seed: base seed; epoch ``e`` uses ``seed + e`` (call :meth:`set_epoch`).
        num_samples: draws per epoch (with replacement); ``None`` → one shuffled pass.
        rank, world_size: for DDP, each rank yields every ``world_size``-th index of the
            same sequence, padded by wrapping so all ranks see equally many samples.
    """

    def __init__(
        self,
        size: int,
        seed: int = 0,
        num_samples: int | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if size < 1:
            raise ValueError(f"EpochSampler needs a non-empty dataset, got size={size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.size = size
        self.seed = seed
        self.num_samples = num_samples
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _total(self) -> int:
        total = self.num_samples if self.num_samples is not None else self.size
        return -(-total // self.world_size) * self.world_size  # round up to a multiple

    def __len__(self) -> int:
        return self._total() // self.world_size

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        if self.num_samples is None:
            order = torch.randperm(self.size, generator=generator)
        else:
            order = torch.randint(self.size, (self.num_samples,), generator=generator)
        total = self._total()
        order = order.repeat(-(-total // len(order)))[:total]  # wrap-pad for equal rank shares
        return iter(order[self.rank :: self.world_size].tolist())
