"""From the configuration to data loaders: fill what the data decides, split, load."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import DataLoader

from drunet.config import ExperimentConfig
from drunet.datasets import (
    Pair,
    SegmentationDataset,
    find_pairs,
    inspect_pairs,
    split_pairs,
    train_transform,
)
from drunet.engine.sampling import EpochSampler
from drunet.errors import DrunetError


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a seeded generator."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def prepare_config(
    config: ExperimentConfig,
) -> tuple[ExperimentConfig, list[Pair], list[Pair]]:
    """Fill what the data decides (channels, classes, normalisation) and split the pairs.

    Returns a copy of ``config``; settings the user gave are checked against the data.
    """
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
    config: ExperimentConfig,
    train_pairs: list[Pair],
    val_pairs: list[Pair],
    rank: int = 0,
    world_size: int = 1,
) -> tuple[DataLoader, DataLoader]:
    """Random patches for training (epoch-seeded order); whole images one at a time for
    validation. With ``world_size > 1`` each rank gets its own share of both."""
    data = config.data
    pin = torch.cuda.is_available()  # page-locked buffers make host→GPU copies asynchronous
    train_set = SegmentationDataset(
        train_pairs, data.mean, data.std, transform=train_transform(data.patch_size)
    )
    val_set = SegmentationDataset(val_pairs[rank::world_size], data.mean, data.std)
    steps = config.train.steps_per_epoch
    sampler = EpochSampler(
        len(train_set),
        seed=config.train.seed,
        num_samples=steps * data.batch_size * world_size if steps else None,
        rank=rank,
        world_size=world_size,
    )
    workers = data.num_workers
    train_loader = DataLoader(
        train_set,
        batch_size=data.batch_size,
        sampler=sampler,
        drop_last=len(sampler) >= data.batch_size and steps is None,
        num_workers=workers,
        pin_memory=pin,
        persistent_workers=workers > 0,
    )
    val_loader = DataLoader(val_set, batch_size=1, num_workers=workers, pin_memory=pin)
    return train_loader, val_loader
