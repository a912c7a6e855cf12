"""Dataset files → tensors: image/mask IO, folder pairs, statistics, augmentation, synthetic."""

from drunet.datasets.dataset import SegmentationDataset
from drunet.datasets.folder import Pair, find_pairs, read_pair, split_pairs
from drunet.datasets.io import (
    IMAGE_SUFFIXES,
    MASK_SUFFIXES,
    read_image,
    read_mask,
    to_float,
    write_image,
    write_mask,
)
from drunet.datasets.stats import DatasetInfo, inspect_pairs
from drunet.datasets.synthetic import make_synthetic
from drunet.datasets.transforms import seed_transform, train_transform, val_transform

__all__ = [
    "IMAGE_SUFFIXES",
    "MASK_SUFFIXES",
    "DatasetInfo",
    "Pair",
    "SegmentationDataset",
    "find_pairs",
    "inspect_pairs",
    "make_synthetic",
    "read_image",
    "read_mask",
    "read_pair",
    "seed_transform",
    "split_pairs",
    "to_float",
    "train_transform",
    "val_transform",
    "write_image",
    "write_mask",
]
