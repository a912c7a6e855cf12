"""Models: DRUNet, its blocks, the smp baseline, and the registry that builds them."""

from drunet.models.baseline import SmpUnet
from drunet.models.blocks import DRBlock, SqueezeExcite
from drunet.models.drunet import DRStage, DRUNet
from drunet.models.registry import create_model, model_names

__all__ = [
    "DRBlock",
    "DRStage",
    "DRUNet",
    "SmpUnet",
    "SqueezeExcite",
    "create_model",
    "model_names",
]
