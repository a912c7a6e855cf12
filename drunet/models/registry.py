"""``create_model(name, ...)``: a registered name → a model.

Names: ``"drunet"`` (the default preset), the DRUNet presets, ``"unet_resnet34"`` (the smp
baseline) and ``"smp:ARCH:ENCODER"`` for any smp architecture and encoder
(``"smp:UnetPlusPlus:efficientnet-b0"``, ``"smp:FPN:resnet50"``).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from drunet.models.baseline import ARCHITECTURES, SmpModel, encoder_names
from drunet.models.drunet import DRUNet
from drunet.models.presets import PRESETS, resolve_preset

BASELINE = "unet_resnet34"
SMP_PREFIX = "smp:"


def model_names() -> tuple[str, ...]:
    """The fixed names :func:`create_model` accepts, besides ``smp:ARCH:ENCODER``."""
    return ("drunet", *PRESETS, BASELINE)


def parse_smp_name(name: str) -> tuple[str, str]:
    """``"smp:FPN:resnet50"`` → ``("FPN", "resnet50")``; ``ValueError`` listing valid names."""
    parts = name.split(":")
    if len(parts) != 3 or parts[0] != "smp":
        raise ValueError(f"model {name!r} must look like smp:ARCH:ENCODER (e.g. smp:FPN:resnet50)")
    _, arch, encoder = parts
    if arch not in ARCHITECTURES:
        raise ValueError(
            f"model {name!r}: unknown smp architecture {arch!r}; choose one of: "
            f"{', '.join(ARCHITECTURES)}"
        )
    if encoder not in encoder_names():
        raise ValueError(
            f"model {name!r}: unknown smp encoder {encoder!r}; choose one of: "
            f"{', '.join(encoder_names())}"
        )
    return arch, encoder


def check_name(name: str) -> str:
    """``name`` resolved (``"drunet"`` → its preset), or ``ValueError`` listing the names."""
    if name.startswith(SMP_PREFIX):
        parse_smp_name(name)
        return name
    if name not in model_names():
        raise ValueError(
            f"unknown model {name!r}; choose one of: {', '.join(model_names())}, or "
            "smp:ARCH:ENCODER"
        )
    return resolve_preset(name)


def create_model(
    name: str, in_channels: int = 3, out_channels: int = 1, **kwargs: Any
) -> nn.Module:
    """Build a registered model.

    Args:
        name: ``"drunet"`` (the default preset), a preset of :mod:`drunet.models.presets`
            (``"drunet_s"``, ``"drunet_ref"``, …), ``"unet_resnet34"`` or ``"smp:ARCH:ENCODER"``.
        in_channels: image channels.
        out_channels: logit channels — 1 for binary (sigmoid), else the number of classes.
        **kwargs: the model's own arguments, overriding a preset's (``init_features=16`` for
            DRUNet, ``encoder_depth=4`` for smp models).

    Returns a module mapping ``(N, in_channels, H, W)`` to logits ``(N, out_channels, H, W)``.
    """
    name = check_name(name)
    try:
        if name in PRESETS:
            return DRUNet(in_channels, out_channels, **{**PRESETS[name], **kwargs})
        if name == BASELINE:
            return SmpModel(in_channels, out_channels, **kwargs)
        arch, encoder = parse_smp_name(name)
        return SmpModel(in_channels, out_channels, encoder_name=encoder, arch=arch, **kwargs)
    except TypeError as err:  # an unknown keyword: name it instead of a constructor traceback
        raise ValueError(f"model {name!r}: {err}") from err
