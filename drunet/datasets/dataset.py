"""``SegmentationDataset``: file pairs → normalised ``(C, H, W)`` image, ``(H, W)`` mask tensors."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from drunet.datasets.folder import Pair, read_pair
from drunet.datasets.io import to_float
from drunet.datasets.transforms import seed_transform
from drunet.errors import DataError


class SegmentationDataset(Dataset):
    """Image/mask pairs for training or validation.

    ``dataset[i]`` is ``(image, mask)``: image float32 ``(C, H, W)`` normalised as
    ``(to_float(x) - mean) / std`` per channel, mask int64 ``(H, W)`` class indices.

    ``transform`` (e.g. ``train_transform(patch_size)``) is called as
    ``transform(image=(H, W, C) float32 in [0, 1], mask=(H, W))`` before normalisation, so image
    and mask get the same geometry. An albumentations ``Compose`` is reseeded once per process
    from ``torch.initial_seed()``: reproducible after ``torch.manual_seed``, and DataLoader
    workers (which would otherwise inherit identical random states by fork) each draw different
    augmentations.

    With ``cache=True`` decoded files are kept in memory in their own dtype (per worker process);
    the transform still runs on every access.
    """

    def __init__(
        self,
        pairs: Sequence[Pair],
        mean: Sequence[float],
        std: Sequence[float],
        transform: Callable[..., dict[str, Any]] | None = None,
        cache: bool = False,
    ) -> None:
        if len(mean) != len(std) or not mean:
            raise ValueError(f"mean and std need one value per channel, got {mean} and {std}")
        if min(std) <= 0:
            raise ValueError(f"std values must be positive, got {std}")
        self.pairs = list(pairs)
        self.mean = np.asarray(mean, dtype=np.float32)  # (C,)
        self.std = np.asarray(std, dtype=np.float32)  # (C,)
        self.transform = transform
        self.cache = cache
        self._cached: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._seeded_for: tuple[int, int | None] | None = None

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self._load(index)  # (H, W, C) file dtype, (H, W) integer
        image = to_float(image)
        if self.transform is not None:
            self._seed_transform()
            out = self.transform(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        image = (image - self.mean) / self.std
        image_t = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), np.float32))
        mask_t = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.int64))
        return image_t, mask_t

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if index in self._cached:
            return self._cached[index]
        pair = self.pairs[index]
        image, mask = read_pair(pair)
        if image.shape[2] != len(self.mean):
            raise DataError(
                f"image {pair.image} has {image.shape[2]} channel(s) but the normalisation has "
                f"{len(self.mean)}; all images need the same number of channels — convert it"
            )
        if mask.max() <= np.iinfo(np.uint8).max:
            mask = mask.astype(np.uint8)  # 8× smaller in the cache and cheaper to transform
        if self.cache:
            self._cached[index] = (image, mask)
        return image, mask

    def _seed_transform(self) -> None:
        worker = get_worker_info()
        key = (os.getpid(), worker.id if worker is not None else None)
        if key == self._seeded_for or not isinstance(self.transform, A.BaseCompose):
            return
        # In a worker initial_seed() is the loader's per-epoch base seed + worker id.
        seed_transform(self.transform, torch.initial_seed() % 2**32)
        self._seeded_for = key
