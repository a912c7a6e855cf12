"""The image the package's test tensors are made from.

The user's ``sample`` image if given, else the run's first validation image (its data folder
read again with the run's layout and split), else — the data moved away — an image of drunet's
synthetic data set with the training data's pixel type. It is centre-cropped to at most
``MAX_SIDE`` pixels a side and to a multiple of the model's stride, a size the package's axes
accept.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drunet.bioimageio.card import FINGERPRINT
from drunet.config import ExperimentConfig
from drunet.datasets import discover, make_synthetic, read_image, read_pair_image
from drunet.datasets.synthetic import DTYPES
from drunet.errors import DrunetError

log = logging.getLogger(__name__)

MAX_SIDE = 256  # keeps the package's test tensors small and the zoo's test quick


@dataclass
class Sample:
    image: np.ndarray  # (H, W, C) raw pixels, cropped
    source: str  # where it came from, in words


def pick_sample(
    config: ExperimentConfig, run_dir: Path, sample: str | Path | None, multiple: int
) -> Sample:
    """The cropped sample image (see the module)."""
    if sample is not None:
        found = Sample(read_image(sample), f"the image {sample}")
    else:
        found = _validation_image(config) or _synthetic(config, run_dir)
    image = found.image[:, :, None] if found.image.ndim == 2 else found.image
    channels = config.model.spec().in_channels
    if image.shape[2] != channels:
        raise DrunetError(
            f"the sample ({found.source}) has {image.shape[2]} channel(s) but the model takes "
            f"{channels}; pass --sample with an image like the training images"
        )
    found.image = _crop(image, multiple, found.source)
    return found


def _validation_image(config: ExperimentConfig) -> Sample | None:
    try:
        layout = discover(config.data.root, config.data.layout)
        if not layout.val:
            return None
        pair = layout.val[0]
        return Sample(read_pair_image(pair), f"the run's first validation image {pair.image}")
    except (DrunetError, OSError, ValueError) as err:
        log.info("the run's validation images cannot be read (%s); using a synthetic one", err)
        return None


def _synthetic(config: ExperimentConfig, run_dir: Path) -> Sample:
    channels = config.model.spec().in_channels
    if channels not in (1, 3):
        raise DrunetError(
            f"the run's data cannot be read and drunet's synthetic images have 1 or 3 channels, "
            f"not {channels}; pass --sample IMAGE"
        )
    dtype = _training_dtype(run_dir)
    with tempfile.TemporaryDirectory(prefix="drunet-sample-") as folder:
        make_synthetic(
            folder, num_images=1, sizes=((MAX_SIDE, MAX_SIDE),), channels=channels, dtype=dtype
        )
        (path,) = sorted((Path(folder) / "images").iterdir())
        image = read_image(path)
    return Sample(image, f"a synthetic {dtype} image (the run's data was not found)")


def _training_dtype(run_dir: Path) -> str:
    """The training images' most common pixel type (``fingerprint.json``), if synthetic data
    can have it; else uint8."""
    try:
        dtypes = json.loads((run_dir / FINGERPRINT).read_text(encoding="utf-8"))["dtypes"]
        common = max(dtypes, key=dtypes.get)
    except (OSError, ValueError, KeyError, TypeError):
        return "uint8"
    return common if common in DTYPES else "uint8"


def _crop(image: np.ndarray, multiple: int, source: str) -> np.ndarray:
    """The centre ``(H', W')`` with sides multiples of ``multiple``, at most ``MAX_SIDE``."""
    smallest = multiple
    sides = [max(smallest, min(side, MAX_SIDE)) // multiple * multiple for side in image.shape[:2]]
    if any(side > have for side, have in zip(sides, image.shape[:2], strict=True)):
        raise DrunetError(
            f"the sample ({source}) is {image.shape[0]}×{image.shape[1]} pixels; the package's "
            f"test image needs at least {smallest}×{smallest}: pass a larger --sample"
        )
    top, left = (image.shape[0] - sides[0]) // 2, (image.shape[1] - sides[1]) // 2
    return np.ascontiguousarray(image[top : top + sides[0], left : left + sides[1]])
