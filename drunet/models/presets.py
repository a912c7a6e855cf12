"""Named DRUNet configurations: each preset is a set of :class:`~drunet.models.DRUNet` kwargs.

``create_model("drunet_s")`` is ``DRUNet(**PRESETS["drunet_s"])``; keyword arguments given to
``create_model`` override the preset's. ``"drunet"`` is :data:`DEFAULT_PRESET`. Treat the dicts
as read-only: copy one before changing it.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # The reference topology, DRUNet(3, 1, 32): 18,516,785 parameters at 3 → 1 channels.
    "drunet_ref": {
        "init_features": 32,
        "depth": 4,
        "blocks_per_stage": 2,
        "conv_after_block": True,
        "bottleneck_ratio": 1.0,
        "se_reduction": 16,
    },
    "drunet_s": {
        "init_features": 16,
        "depth": 4,
        "blocks_per_stage": 1,
        "conv_after_block": False,
        "channels_last": True,
    },
    "drunet_m": {
        "init_features": 16,
        "depth": 4,
        "blocks_per_stage": 2,
        "conv_after_block": False,
        "channels_last": True,
    },
    "drunet_l": {
        "init_features": 32,
        "depth": 4,
        "blocks_per_stage": 1,
        "conv_after_block": False,
        "channels_last": True,
    },
}

# Chosen by measurement (benchmarks/bench_models.py, README "Benchmarks"): the only preset that
# trains faster than the smp ResNet-34 U-Net at 8 × 3 × 256 × 256 on the 2-core reference machine.
DEFAULT_PRESET = "drunet_s"


def resolve_preset(name: str) -> str:
    """The registry name ``name`` stands for: ``"drunet"`` → :data:`DEFAULT_PRESET`."""
    return DEFAULT_PRESET if name == "drunet" else name
