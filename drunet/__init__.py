"""drunet: Deep Residual U-Net image segmentation — train, predict, evaluate.

>>> from drunet import DRUNet, create_model
>>> model = DRUNet(in_channels=1, out_channels=1)

Public names are imported on first use, so ``import drunet`` stays cheap.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# OpenCV reads its decompression-bomb limit once, when cv2 loads: set it before any drunet
# module imports cv2 (see drunet.datasets.io.MAX_IMAGE_PIXELS).
os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = os.environ.get("DRUNET_MAX_IMAGE_PIXELS", str(2**30))

_EXPORTS = {
    "DRBlock": "drunet.models",
    "DRUNet": "drunet.models",
    "SqueezeExcite": "drunet.models",
    "create_model": "drunet.models",
    "ExperimentConfig": "drunet.config",
    "load_config": "drunet.config",
    "train": "drunet.engine.train",
    "Predictor": "drunet.inference",
}

__all__ = [
    "DRBlock",
    "DRUNet",
    "ExperimentConfig",
    "Predictor",
    "SqueezeExcite",
    "__version__",
    "create_model",
    "load_config",
    "train",
]

if TYPE_CHECKING:
    from drunet.config import ExperimentConfig, load_config
    from drunet.engine.train import train
    from drunet.inference import Predictor
    from drunet.models import DRBlock, DRUNet, SqueezeExcite, create_model


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'drunet' has no attribute {name!r}")
