"""What every model does with its input: check its shape, pad it to a multiple of the network's
total stride, and crop the output back.

A U-Net with ``k`` down-samplings needs height and width divisible by ``2**k``; every model (and
export) uses these two functions for it::

    x, size = pad_to_multiple(x, 32)  # (N, C, H, W) → (N, C, H', W'), H' and W' multiples of 32
    logits = crop_to(net(x), size)  # (N, K, H', W') → (N, K, H, W)

Both always run (padding by zero when the size already fits) and the crop is a negative pad
rather than a slice, so a traced or exported graph has no size-dependent branch and stays valid
for every height and width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Replicate-pad the bottom and right of ``x`` up to the next multiple of ``multiple``.

    Returns the padded batch ``(N, C, ceil(H / m) * m, ceil(W / m) * m)`` and the original
    ``(H, W)`` for :func:`crop_to`. Replicating the border (rather than zeros) keeps the padded
    strip statistically like the image, so it does not bleed an artificial edge into the crop.
    """
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    height, width = x.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate"), (height, width)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The top-left ``(H, W) = size`` window of ``x``: ``(N, K, H', W') → (N, K, H, W)``."""
    height, width = size
    return F.pad(x, (0, width - x.shape[-1], 0, height - x.shape[-2]))


def check_input(x: torch.Tensor, in_channels: int, model: str) -> None:
    """Raise ``ValueError`` naming ``model`` unless ``x`` is ``(N, in_channels, H, W)``."""
    if x.ndim != 4 or x.shape[1] != in_channels:
        received = x.shape[1] if x.ndim == 4 else f"a {x.ndim}-D tensor"
        raise ValueError(
            f"{model} expects input of shape (N, {in_channels}, H, W), got {tuple(x.shape)}: "
            f"expected {in_channels} channels, received {received}"
        )
