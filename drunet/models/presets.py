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
    # drunet_s at half resolution: a stride-2 stem, one full-resolution refine conv at the end.
    "drunet_s2": {
        "init_features": 16,
        "depth": 4,
        "blocks_per_stage": 1,
        "conv_after_block": False,
        "channels_last": True,
        "stem_stride": 2,
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

# Chosen by measurement (README "Benchmarks" and "Results"): drunet_s2 trains 1.8–2.1× as many
# images per second as drunet_s on the 2-core reference machine (bench_models.py) with the same
# held-out ISBI Dice at equal wall-clock budgets over two seeds (0.8339/0.8356 against
# 0.8362/0.8335). Runs store the preset they used, so drunet_s runs rebuild drunet_s.
DEFAULT_PRESET = "drunet_s2"


def resolve_preset(name: str) -> str:
    """The registry name ``name`` stands for: ``"drunet"`` → :data:`DEFAULT_PRESET`."""
    return DEFAULT_PRESET if name == "drunet" else name
