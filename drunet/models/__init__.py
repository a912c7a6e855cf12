"""Models: DRUNet, its blocks, the smp baseline, and the registry that builds them."""

from drunet.models.baseline import SmpUnet
from drunet.models.blocks import DRBlock, SqueezeExcite
from drunet.models.drunet import DRStage, DRUNet
from drunet.models.layers import fuse_conv_bn
from drunet.models.presets import DEFAULT_PRESET, PRESETS
from drunet.models.registry import create_model, model_names

__all__ = [
    "DRBlock",
    "DRStage",
    "DEFAULT_PRESET",
    "DRUNet",
    "PRESETS",
    "SmpUnet",
    "SqueezeExcite",
    "create_model",
    "fuse_conv_bn",
    "model_names",
]
