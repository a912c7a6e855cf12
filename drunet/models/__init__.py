"""Models: DRUNet, its blocks, the smp baseline, and the registry that builds them."""

from drunet.models.baseline import SmpModel
from drunet.models.blocks import BlockArgs, DRBlock, PreActDRBlock, SqueezeExcite
from drunet.models.drunet import DRStage, DRUNet
from drunet.models.layers import fuse_conv_bn
from drunet.models.padding import crop_to, pad_to_multiple
from drunet.models.presets import DEFAULT_PRESET, PRESETS
from drunet.models.registry import create_model, model_names

__all__ = [
    "BlockArgs",
    "DRBlock",
    "DRStage",
    "DEFAULT_PRESET",
    "DRUNet",
    "PRESETS",
    "PreActDRBlock",
    "SmpModel",
    "SqueezeExcite",
    "create_model",
    "crop_to",
    "fuse_conv_bn",
    "model_names",
    "pad_to_multiple",
]
