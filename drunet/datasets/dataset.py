"""``SegmentationDataset``: file pairs → normalised ``(C, H, W)`` image, ``(H, W)`` mask tensors."""

from __future__ import annotations

import os
from collections.abc import Sequence

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from drunet.datasets.context import context_pairs, expand_normalization, read_context
from drunet.datasets.folder import Pair, read_pair
from drunet.datasets.normalization import image_stats, standardize, to_unit
from drunet.datasets.options import AugmentationOptions, MaskOptions, NormalizationOptions
from drunet.datasets.transforms import build_train_transform, seed_transform
from drunet.errors import DataError


class SegmentationDataset(Dataset):
    """Image/mask pairs for training or validation.

    ``dataset[i]`` is ``(image, mask)``: image float32 ``(C, H, W)`` normalised by
    ``normalization`` (see ``normalize``; fill it with ``compute_normalization`` first), mask
    int64 ``(H, W)`` class indices (an ``ignore_index`` kept as it is). ``masks`` says how masks
    are read (colour map, ignore index, 0/255).

    With ``augmentation`` the training pipeline of ``build_train_transform`` runs between
    clipping and standardisation, so intensity augmentations see [0, 1] data and image and mask
    get the same geometry. It is reseeded once per process from ``torch.initial_seed()``:
    reproducible after ``torch.manual_seed``, and DataLoader workers (which would otherwise
    inherit identical random states by fork) each draw different augmentations. Pass ``seed``
    (and call ``set_epoch``) to seed every sample instead.

    With ``cache=True`` decoded files are kept in memory in their own dtype (per worker process;
    call ``preload()`` before creating the DataLoader to decode once and share the cache with
    forked workers); the transform still runs on every access.

    With ``context_slices = k > 0`` (2.5D, see ``drunet.datasets.context``) the image is the
    slice with its ``k`` neighbours on each side stacked along channels, ``((2k+1)·C, H, W)`` in
    order ``-k … 0 … +k``, edges replicated; every block is normalised with the stored
    ``C``-channel statistics and all channels get the same geometric augmentation. The mask is
    the centre slice's alone. A pair that is not a slice of a stack or of a numbered series is a
    ``DataError`` here, when the dataset is created.
    """

    def __init__(
        self,
        pairs: Sequence[Pair],
        normalization: NormalizationOptions,
        *,
        masks: MaskOptions | None = None,
        augmentation: AugmentationOptions | None = None,
        cache: bool = False,
        seed: int | None = None,
        context_slices: int = 0,
    ) -> None:
        self.pairs = list(pairs)
        self.context_slices = context_slices
        # (2k+1) pairs per sample whose images are stacked; None without context.
        self._context = context_pairs(self.pairs, context_slices) if context_slices else None
        self.normalization = normalization
        self.masks = masks or MaskOptions()
        self.transform = (
            None
            if augmentation is None
            else build_train_transform(augmentation, self.masks.ignore_index)
        )
        self.cache = cache
        self._cached: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._seeded_for: tuple[int, int | None] | None = None
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """With a ``seed``, sample ``i`` of epoch ``e`` is augmented from ``(seed, e, i)`` alone:
        the same draws whatever the worker count, and a resumed run repeats them exactly."""
        self.epoch = epoch

    def preload(self) -> None:
        """Decode every pair now; with ``cache=True`` forked DataLoader workers share them."""
        if not self.cache:
            raise ValueError("preload() fills the cache; create the dataset with cache=True")
        for index in range(len(self)):
            self._load(index)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self._load(index)  # (H, W, C') file dtype, C' = (2k+1)·C; (H, W) mask
        blocks = 2 * self.context_slices + 1
        norm = expand_normalization(self.normalization, blocks, image.shape[2] // blocks)
        image = to_unit(image, norm, self.pairs[index].image)  # (H, W, C') float32
        # zscore: the whole image's statistics, as prediction sees it, not the patch's
        stats = image_stats(image) if self.normalization.mode == "zscore" else None
        if self.transform is not None:
            self._seed_transform(self.transform, index)
            out = self.transform(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        image = standardize(image, norm, stats)
        image_t = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), np.float32))
        mask_t = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.int64))
        return image_t, mask_t

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if index in self._cached:
            return self._cached[index]
        pair = self.pairs[index]
        image, mask = read_pair(pair, self.masks)
        expected = self.normalization.channels
        if expected is not None and image.shape[2] != expected:
            raise DataError(
                f"image {pair.image} has {image.shape[2]} channel(s) but the normalisation has "
                f"{expected}; all images need the same number of channels — convert it"
            )
        if self._context is not None:  # neighbours' images only: the mask stays the centre's
            image = read_context(self._context[index], centre=image)
        # Smaller in the cache, cheaper to transform, and what OpenCV's warps accept.
        high = int(mask.max()) if mask.size else 0
        if high <= np.iinfo(np.uint8).max:
            mask = mask.astype(np.uint8)
        elif high <= np.iinfo(np.uint16).max:
            mask = mask.astype(np.uint16)
        if self.cache:
            self._cached[index] = (image, mask)
        return image, mask

    def _seed_transform(self, transform: A.Compose, index: int) -> None:
        if self.seed is not None:
            sample_seed = np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1)
            seed_transform(transform, int(sample_seed[0]))
            return
        worker = get_worker_info()
        key = (os.getpid(), worker.id if worker is not None else None)
        if key == self._seeded_for:
            return
        # In a worker initial_seed() is the loader's per-epoch base seed + worker id.
        seed_transform(transform, torch.initial_seed() % 2**32)
        self._seeded_for = key
