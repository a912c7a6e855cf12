"""A tiny randomised DRUNet predictor for the streamed-prediction tests (fast on a CPU)."""

from __future__ import annotations

from typing import Any

import torch

from drunet.checkpoint import build_model
from drunet.config import config_from_dict
from drunet.inference import PredictOptions, Predictor
from tests.conftest import TINY_PARAMS, randomise_batch_norms

# TINY_PARAMS made smaller still: a 3,000² image goes through both paths in seconds.
PARAMS = {**TINY_PARAMS, "init_features": 2, "depth": 1}


def tiny_predictor(
    num_classes: int = 2,
    in_channels: int = 1,
    seed: int = 0,
    mpp: float | None = None,
    **options: Any,
) -> Predictor:
    """An untrained DRUNet with trained-looking BatchNorms, dataset normalisation, 64² tiles,
    trained (it says) at ``mpp`` microns per pixel."""
    config = config_from_dict(
        {
            "model": {"in_channels": in_channels, "num_classes": num_classes, "params": PARAMS},
            "data": {
                "augmentation": {"patch_size": 64},
                "mpp": mpp,
                "normalization": {
                    "mean": [0.45] * in_channels,
                    "std": [0.25] * in_channels,
                    "clip_percentiles": None,
                },
            },
        }
    )
    torch.manual_seed(seed)
    model = randomise_batch_norms(build_model(config), seed).eval()
    return Predictor(model, config, "cpu", PredictOptions(**{"precision": "fp32", **options}))
