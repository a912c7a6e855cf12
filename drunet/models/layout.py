"""The memory format a model runs in: the one place that says whether a model is NHWC.

The layout is the model's own property (``model.params.channels_last`` of DRUNet and the smp
family): such a model converts its weights and its input to NHWC itself, and the trainer feeds it
batches already in that layout (one copy to the device instead of two).
"""

from __future__ import annotations

import torch
from torch import nn


def is_channels_last(model: nn.Module) -> bool:
    """Whether ``model`` (bare, or inside DDP / ``torch.compile`` wrappers) runs in NHWC."""
    model = getattr(model, "module", model)
    model = getattr(model, "_orig_mod", model)
    return bool(getattr(model, "channels_last", False))


def memory_format(model: nn.Module) -> torch.memory_format:
    """The memory format ``model``'s input batches should take."""
    return torch.channels_last if is_channels_last(model) else torch.contiguous_format
