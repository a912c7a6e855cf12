"""Helpers for the whole suite, defined once: the tiny training recipe and trained-looking
BatchNorm statistics. Import them: ``from tests.conftest import TINY_PARAMS, tiny_recipe``."""

from __future__ import annotations

import copy
import os
from typing import Any

import torch
from torch import nn

# The suite's numbers must not depend on the CPU it runs on: precision "auto" stays float32 on
# every CPU here (also in the CLI subprocesses the tests start), and the tests that need the
# bfloat16 path ask for it or set DRUNET_CPU_BF16 themselves.
os.environ.setdefault("DRUNET_CPU_BF16", "0")
# Every test measures its datasets afresh (tests/plan/test_cache.py turns the cache on).
os.environ.setdefault("DRUNET_CACHE_DIR", "off")

# Under pytest-xdist (the README runs the suite with ``-n 2``) each worker gets one of the two
# cores: two workers at torch's default thread count would oversubscribe them. Set before any
# test creates a thread pool; CLI subprocesses inherit it through OMP_NUM_THREADS.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)

# A DRUNet small enough to train a step in a fraction of a second on a CPU.
TINY_PARAMS: dict[str, Any] = {"init_features": 4, "depth": 2, "blocks_per_stage": 1}

# A recipe (config dict) that trains that DRUNet for one short epoch on 32² patches.
TINY_RECIPE: dict[str, Any] = {
    "model": {"params": TINY_PARAMS},
    "data": {"augmentation": {"patch_size": 32}, "batch_size": 2},
    "train": {"epochs": 1, "steps_per_epoch": 2},
}


def tiny_recipe(**sections: Any) -> dict[str, Any]:
    """A fresh copy of ``TINY_RECIPE`` with ``sections`` merged in, key by key.

    ``tiny_recipe(train={"epochs": 2}, name="run")`` keeps ``train.steps_per_epoch``; a value
    that is not a mapping replaces what was there.
    """
    return _merged(copy.deepcopy(TINY_RECIPE), sections)


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = _merged(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def randomise_batch_norms(model: nn.Module, seed: int = 1) -> nn.Module:
    """Give every BatchNorm non-trivial statistics and affine parameters, as training would.

    A fresh BatchNorm is the identity in eval mode, so folding it into a convolution, exporting
    it or forgetting ``model.eval()`` would go unnoticed. Returns ``model``.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                c = module.num_features
                if module.running_mean is not None and module.running_var is not None:
                    module.running_mean.copy_(torch.randn(c, generator=generator) * 0.5)
                    module.running_var.copy_(torch.rand(c, generator=generator) + 0.5)
                if module.affine:
                    module.weight.copy_(torch.rand(c, generator=generator) + 0.5)
                    module.bias.copy_(torch.randn(c, generator=generator) * 0.2)
    return model
