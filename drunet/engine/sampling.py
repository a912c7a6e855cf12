"""Epoch-seeded sampling: the order of epoch ``e`` depends only on ``(seed, e)``.

That makes a resumed run draw exactly the batches an uninterrupted run would have drawn, and it
is the same contract as ``DistributedSampler.set_epoch`` — each rank takes its own slice of
the same permutation, so DDP ranks never overlap.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


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
