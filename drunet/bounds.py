"""Bounds on the work and memory a setting implies, checked when the settings are validated.

A value that multiplies work or memory is refused before anything runs and before any folder is
created, with one line naming the value, the bound and the fix, instead of an allocation
traceback minutes later or a run that never ends. The bounds, derived from this machine:

* patch / tile side: side² ≤ the pixel limit an image may hold (``DRUNET_MAX_IMAGE_PIXELS``,
  default 2**28); a patch larger than any readable image is a typo.
* batch × patch² (training), batch × tile² (prediction), ``max_pixels`` (one whole image in
  prediction): pixels × ``BYTES_PER_PIXEL`` (1 KiB of activations per pixel, a low estimate)
  ≤ half this machine's memory.
* overlap × TTA (prediction): passes of the network over a pixel, (1 / (1 − overlap))² × the
  TTA transforms (1, 4 or 8), ≤ ``MAX_PASSES_PER_PIXEL`` (1024; 4 at the default overlap 0.5).
* folds × epochs ≤ ``MAX_EPOCHS`` (a million epochs in all: ``--fold all`` trains every fold).
* context slices ≤ 8 per side (``MAX_CONTEXT_SLICES``, checked by its field).
* pages × page size: a stack's pixels over all its pages ≤ the pixel limit, checked when the
  file is read (:mod:`drunet.datasets.limits`).

"This machine's memory" is its physical memory (``os.sysconf``), or the address-space limit
(``ulimit -v``) when that is lower; half of it is left to the model's weights, the data and
the rest of the system.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from drunet.datasets.limits import ENV, max_image_pixels
from drunet.errors import ConfigError

if TYPE_CHECKING:
    from drunet.config import ExperimentConfig

BYTES_PER_PIXEL = 1024  # activations per pixel of a batch (drunet_ref predicts at ~1.2 KB)
MEMORY_SHARE = 0.5  # of this machine's memory, for one batch
MAX_PASSES_PER_PIXEL = 1024
MAX_EPOCHS = 1_000_000
_UNKNOWN_MEMORY = 16 * 2**30  # where os.sysconf cannot tell (Windows)


def machine_memory() -> int:
    """Bytes of memory this process may use: physical memory, or a lower address-space limit."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        memory = _UNKNOWN_MEMORY
    try:  # Unix only: Windows has no resource module and no address-space limit
        import resource

        limit, unlimited = resource.getrlimit(resource.RLIMIT_AS)[0], resource.RLIM_INFINITY
    except (ImportError, AttributeError, OSError, ValueError):
        limit = unlimited = -1
    if limit != unlimited and 0 < limit < memory:
        return int(limit)
    return int(memory) if memory > 0 else _UNKNOWN_MEMORY


def batch_pixel_bound() -> int:
    """Pixels one batch may hold: half this machine's memory at ``BYTES_PER_PIXEL`` each."""
    return int(machine_memory() * MEMORY_SHARE) // BYTES_PER_PIXEL


def passes_per_pixel(overlap: float, tta_transforms: int = 1) -> float:
    """How many times the sliding window runs the network over a pixel, at most."""
    return tta_transforms / (1.0 - overlap) ** 2


def check_side(key: str, side: int, fix: str) -> None:
    """Refuse a patch or tile side whose square exceeds the pixel limit."""
    limit = max_image_pixels()
    if side * side > limit:
        raise ConfigError(
            f"{key} {side} gives {side * side:.3g}-pixel squares, more than the {limit:,} pixels "
            f"an image may hold ({ENV}); {fix}"
        )


def check_batch(what: str, keys: str, pixels: int, fix: str) -> None:
    """Refuse a batch of ``pixels`` whose activations would exceed half this machine's memory."""
    bound = batch_pixel_bound()
    if pixels > bound:
        memory = machine_memory() / 2**30
        raise ConfigError(
            f"{keys} = {pixels:.3g} pixels per {what}, more than {bound:,} (half of this "
            f"machine's {memory:.3g} GiB at {BYTES_PER_PIXEL} bytes per pixel); {fix}"
        )


def check_experiment(config: ExperimentConfig) -> None:
    """The bounds of a training configuration (see the module's table); raises ``ConfigError``."""
    data, train = config.data, config.train
    patch = data.augmentation.patch_size
    check_side("data.augmentation.patch_size", patch, "lower data.augmentation.patch_size")
    check_batch(
        "training batch",
        f"data.batch_size × data.augmentation.patch_size² = {data.batch_size:,} × {patch}²",
        data.batch_size * patch * patch,
        "lower data.batch_size or data.augmentation.patch_size",
    )
    folds = data.layout.folds
    if folds * train.epochs > MAX_EPOCHS:
        raise ConfigError(
            f"data.layout.folds × train.epochs = {folds:,} × {train.epochs:,} epochs in all, more "
            f"than {MAX_EPOCHS:,}; lower train.epochs (train.max_minutes bounds a run by time)"
        )


def check_prediction(
    tile_size: int | None, overlap: float, batch_size: int, max_pixels: int, tta_transforms: int
) -> None:
    """The bounds of prediction options (see the module's table); raises ``ConfigError``."""
    if tile_size is not None:
        check_side("tile_size (--tile-size)", tile_size, "lower --tile-size")
        check_batch(
            "batch of tiles",
            f"batch_size × tile_size² = {batch_size:,} × {tile_size}²",
            batch_size * tile_size * tile_size,
            "lower --batch-size or --tile-size",
        )
    check_batch(
        "whole image",
        f"max_pixels (--max-pixels) = {max_pixels:,}",
        max_pixels,
        "lower --max-pixels: larger images then go through the sliding window",
    )
    passes = passes_per_pixel(overlap, tta_transforms)
    if passes > MAX_PASSES_PER_PIXEL:
        raise ConfigError(
            f"overlap {overlap} with {tta_transforms} TTA transform(s) runs the network "
            f"{passes:.3g} times over every pixel ({tta_transforms} / (1 − overlap)²), more than "
            f"{MAX_PASSES_PER_PIXEL}; lower --overlap (0.5 is usual, 0.25 is twice as fast)"
        )
