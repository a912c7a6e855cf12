"""Run folders of tiny untrained DRUNets for the predict tests (no training: random weights with
BatchNorm statistics moved off their defaults, so the masks vary from pixel to pixel)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from drunet.checkpoint import build_model, save_weights
from drunet.config import config_from_dict
from tests.conftest import TINY_PARAMS


def tiny_run(
    root: Path,
    slice_channels: int = 1,
    context_slices: int = 0,
    seed: int = 0,
    stack: str | None = None,
) -> Path:
    """``root/best.safetensors``: 3 classes, ``(2k+1)·slice_channels`` input channels; ``stack``
    is the run's ``data.layout.stack`` pattern."""
    in_channels = (2 * context_slices + 1) * slice_channels
    config = config_from_dict(
        {
            "model": {"in_channels": in_channels, "num_classes": 3, "params": TINY_PARAMS},
            "data": {
                "normalization": {
                    "mean": [0.4] * slice_channels,
                    "std": [0.3] * slice_channels,
                    "clip_percentiles": None,
                },
                "augmentation": {"patch_size": 32},
                "context_slices": context_slices,
                "layout": {"stack": stack},
            },
        }
    )
    torch.manual_seed(seed)
    model = build_model(config)
    for module in model.modules():  # BatchNorm statistics of inputs like the tests' images
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average: these batches' statistics
    model.train()
    with torch.no_grad():
        model(torch.randn(4, in_channels, 32, 32) * 0.9 + 0.3)
    save_weights(root / "best.safetensors", model.eval(), config)
    return root
