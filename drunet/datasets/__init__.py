"""Dataset files → tensors: layouts, image/mask IO, checks, normalisation, augmentation."""

from drunet.datasets.dataset import SegmentationDataset
from drunet.datasets.folder import Pair, read_pair, read_pair_image
from drunet.datasets.io import (
    IMAGE_SUFFIXES,
    MASK_SUFFIXES,
    read_frames,
    read_image,
    to_float,
    write_image,
    write_mask,
)
from drunet.datasets.layouts import DatasetLayout, discover
from drunet.datasets.masks import read_mask
from drunet.datasets.normalization import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    compute_normalization,
    normalize,
)
from drunet.datasets.options import (
    ALLOWED_OPS,
    AugmentationOptions,
    LayoutOptions,
    MaskOptions,
    NormalizationOptions,
)
from drunet.datasets.problems import Problem
from drunet.datasets.splits import holdout_split, kfold_split, read_split_file, write_split_file
from drunet.datasets.synthetic import make_synthetic
from drunet.datasets.transforms import AUGMENTATION_PRESETS, build_train_transform, seed_transform
from drunet.datasets.verify import (
    VerifyReport,
    VerifySummary,
    format_problem_lines,
    format_summary_lines,
    verify_dataset,
)

__all__ = [
    "ALLOWED_OPS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_SUFFIXES",
    "MASK_SUFFIXES",
    "AUGMENTATION_PRESETS",
    "AugmentationOptions",
    "DatasetLayout",
    "LayoutOptions",
    "MaskOptions",
    "NormalizationOptions",
    "Pair",
    "Problem",
    "SegmentationDataset",
    "VerifyReport",
    "VerifySummary",
    "build_train_transform",
    "compute_normalization",
    "discover",
    "format_problem_lines",
    "format_summary_lines",
    "holdout_split",
    "kfold_split",
    "make_synthetic",
    "normalize",
    "read_frames",
    "read_image",
    "read_mask",
    "read_pair",
    "read_pair_image",
    "read_split_file",
    "seed_transform",
    "to_float",
    "verify_dataset",
    "write_image",
    "write_mask",
    "write_split_file",
]
