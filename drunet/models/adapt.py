"""Reuse weights across input channel counts, the way segmentation-models-pytorch does.

A first convolution trained on ``C`` channels is adapted to ``C'``: for one channel its kernels
are summed over the input channels (a grey image equals an RGB image with three equal
channels, so the response is unchanged); for more channels the trained kernels are repeated
cyclically and scaled by ``C / C'`` so the activation magnitude stays what the network saw.
"""

from __future__ import annotations

import torch


def adapt_input_channels(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """``(O, C, kH, kW)`` conv weight → ``(O, in_channels, kH, kW)``."""
    if weight.ndim != 4:
        raise ValueError(f"expected a conv weight (O, C, kH, kW), got shape {tuple(weight.shape)}")
    trained = weight.shape[1]
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")
    if in_channels == trained:
        return weight.clone()
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    index = torch.arange(in_channels) % trained
    return weight[:, index] * (trained / in_channels)
