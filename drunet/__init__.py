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


def _pixel_limit(text: str | None) -> str | None:
    """A pixel-limit variable's text if it is a whole number in 1 … 2**48, else None."""
    text = (text or "").strip()
    valid = text.isascii() and text.isdigit() and len(text) <= 15 and 0 < int(text) <= 2**48
    return text if valid else None


# drunet checks its own decompression-bomb limit (DRUNET_MAX_IMAGE_PIXELS, default 2**28) in
# Python before decoding, and reports a malformed value when an image is read (see
# drunet.datasets.limits). OpenCV's limit is a second guard, read once when cv2 loads, so it is
# set here, before any drunet module imports cv2 — but never to a malformed value (OpenCV aborts
# the process on one), and a user's own valid OPENCV_IO_MAX_IMAGE_PIXELS is kept.
if _pixel_limit(os.environ.get("OPENCV_IO_MAX_IMAGE_PIXELS")) is None:
    _drunet_limit = _pixel_limit(os.environ.get("DRUNET_MAX_IMAGE_PIXELS"))
    os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = _drunet_limit or str(2**28)

_EXPORTS = {
    "DRBlock": "drunet.models",
    "DRUNet": "drunet.models",
    "SqueezeExcite": "drunet.models",
    "SmpModel": "drunet.models",
    "create_model": "drunet.models",
    "save_pretrained": "drunet.hub.pretrained",
    "from_pretrained": "drunet.hub.pretrained",
    "push_to_hub": "drunet.hub.push",
    "load_model": "drunet.checkpoint",
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
    "SmpModel",
    "SqueezeExcite",
    "__version__",
    "create_model",
    "from_pretrained",
    "load_config",
    "load_model",
    "push_to_hub",
    "save_pretrained",
    "train",
]

if TYPE_CHECKING:
    from drunet.checkpoint import load_model
    from drunet.config import ExperimentConfig, load_config
    from drunet.engine.train import train
    from drunet.hub.pretrained import from_pretrained, save_pretrained
    from drunet.hub.push import push_to_hub
    from drunet.inference import Predictor
    from drunet.models import DRBlock, DRUNet, SmpModel, SqueezeExcite, create_model


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'drunet' has no attribute {name!r}")
