"""``create_model(name, ...)``: a registered name → a model (a DRUNet preset or the smp U-Net)."""

from __future__ import annotations

from typing import Any

from torch import nn

from drunet.models.baseline import SmpUnet
from drunet.models.drunet import DRUNet
from drunet.models.presets import PRESETS, resolve_preset

BASELINE = "unet_resnet34"


def model_names() -> tuple[str, ...]:
    """Names accepted by :func:`create_model` (``"drunet"`` is the default preset)."""
    return ("drunet", *PRESETS, BASELINE)


def create_model(
    name: str, in_channels: int = 3, out_channels: int = 1, **kwargs: Any
) -> nn.Module:
    """Build a registered model.

    Args:
        name: one of :func:`model_names`: ``"drunet"`` (the default preset), a preset of
            :mod:`drunet.models.presets` (``"drunet_s"``, ``"drunet_ref"``, …) or
            ``"unet_resnet34"``.
        in_channels: image channels.
        out_channels: logit channels — 1 for binary (sigmoid), else the number of classes.
        **kwargs: the model's own arguments, overriding a preset's (``init_features=16`` for
            DRUNet, ``encoder_name="resnet18"`` for the smp baseline).

    Returns a module mapping ``(N, in_channels, H, W)`` to logits ``(N, out_channels, H, W)``.
    """
    name = resolve_preset(name)
    try:
        if name in PRESETS:
            return DRUNet(in_channels, out_channels, **{**PRESETS[name], **kwargs})
        if name == BASELINE:
            return SmpUnet(in_channels, out_channels, **kwargs)
    except TypeError as err:  # an unknown keyword: name it instead of a constructor traceback
        raise ValueError(f"model {name!r}: {err}") from err
    raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(model_names())}")
