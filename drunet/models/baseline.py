"""The baseline: segmentation-models-pytorch's U-Net with a ResNet (or other smp) encoder.

drunet never downloads at run time, so ``encoder_weights`` is ``None`` (random init) or the path
of a local file holding the encoder's state dict (``.safetensors``, or ``.pt``/``.pth`` read with
``weights_only=True`` so no pickled code runs). Names such as ``"imagenet"`` fail with a message
saying how to get the file, instead of a network stack trace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import segmentation_models_pytorch as smp
import torch
from torch import nn

from drunet.errors import DrunetError
from drunet.models.padding import crop_to, pad_to_multiple


def _load_encoder_weights(encoder: nn.Module, weights: str, encoder_name: str) -> None:
    path = Path(weights).expanduser()
    if not path.is_file():
        raise DrunetError(
            f"encoder_weights={weights!r}: drunet never downloads weights (offline clusters). "
            f"Download the {encoder_name} encoder weights on a machine with network, save the "
            "encoder's state dict as a .safetensors file, and pass its path; or use "
            "encoder_weights=None to train from scratch."
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    expected = set(encoder.state_dict())
    matching = expected & set(state)
    if not matching:
        raise DrunetError(
            f"{path} does not hold {encoder_name} encoder weights (none of its "
            f"{len(state)} keys match the encoder's {len(expected)})"
        )
    # smp encoders override load_state_dict (dropping classifier keys); non-strict keeps
    # files saved from a full torchvision/timm ResNet usable.
    encoder.load_state_dict({k: state[k] for k in matching}, strict=False)


class SmpUnet(nn.Module):
    """``smp.Unet`` that accepts any input size and offline-only pretrained weights.

    :func:`~drunet.models.padding.pad_to_multiple` pads the input (replicating its border) to a
    multiple of the encoder's output stride ``2**encoder_depth`` and the logits are cropped back,
    so every smp version and encoder handles odd sizes.

    ``hparams`` holds ``encoder_name`` and ``encoder_depth``: with the channel counts they rebuild
    the network. ``encoder_weights`` only initialises it, so it is not kept (saved weights hold
    the encoder).

    Shapes: ``(N, in_channels, H, W) → (N, out_channels, H, W)`` logits.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 1,
        encoder_name: str = "resnet34",
        encoder_weights: str | None = None,
        encoder_depth: int = 5,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hparams: dict[str, Any] = {
            "encoder_name": encoder_name,
            "encoder_depth": encoder_depth,
        }
        self.multiple = 2**encoder_depth
        try:
            self.net = smp.Unet(
                encoder_name=encoder_name,
                encoder_weights=None,
                encoder_depth=encoder_depth,
                decoder_channels=(256, 128, 64, 32, 16)[:encoder_depth],
                in_channels=in_channels,
                classes=out_channels,
            )
        except KeyError as err:
            raise ValueError(
                f"unknown smp encoder {encoder_name!r}; see "
                "segmentation_models_pytorch.encoders.get_encoder_names()"
            ) from err
        if encoder_weights is not None:
            _load_encoder_weights(self.net.encoder, encoder_weights, encoder_name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"SmpUnet expects input of shape (N, {self.in_channels}, H, W), got "
                f"{tuple(x.shape)}: expected {self.in_channels} channels"
            )
        x, size = pad_to_multiple(x, self.multiple)  # (N, C, H', W'), multiples of 2**depth
        return crop_to(self.net(x), size)  # (N, out_channels, H, W)
