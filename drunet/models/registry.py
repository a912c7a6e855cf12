"""``create_model(name, **kwargs)``: the one place training and prediction build models from."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from torch import nn

from drunet.models.baseline import SmpUnet
from drunet.models.drunet import DRUNet
from drunet.models.presets import DEFAULT_PRESET, PRESETS, preset_kwargs


def _preset(preset: str, **kwargs: Any) -> DRUNet:
    """``DRUNet`` from a preset; explicit keyword arguments override the preset's."""
    return DRUNet(**{**preset_kwargs(preset), **kwargs})


_REGISTRY: dict[str, Callable[..., nn.Module]] = {
    # "drunet" is the efficient default (chosen by benchmarks/bench_models.py); the reference
    # topology is "drunet_ref", i.e. DRUNet(3, 1, 32) with the class defaults.
    "drunet": partial(_preset, DEFAULT_PRESET),
    **{name: partial(_preset, name) for name in PRESETS},
    # Other smp encoders via encoder_name="resnet18", "efficientnet-b0", …
    "unet_resnet34": SmpUnet,
}


def model_names() -> tuple[str, ...]:
    """Names accepted by :func:`create_model`."""
    return tuple(_REGISTRY)


def create_model(
    name: str, in_channels: int = 3, out_channels: int = 1, **kwargs: Any
) -> nn.Module:
    """Build a registered model.

    Args:
        name: one of :func:`model_names`: ``"drunet"`` (the default preset), the presets of
            :mod:`drunet.models.presets` (``"drunet_s"``, ``"drunet_m"``, ``"drunet_ref"``, …)
            or ``"unet_resnet34"``.
        in_channels: image channels.
        out_channels: logit channels — 1 for binary (sigmoid), else the number of classes.
        **kwargs: the model's own arguments, overriding a preset's (``init_features=16`` for DRUNet,
            ``encoder_name="resnet18"`` for the smp baseline).

    Returns a module mapping ``(N, in_channels, H, W)`` to logits ``(N, out_channels, H, W)``.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(_REGISTRY)}")
    try:
        return _REGISTRY[name](in_channels=in_channels, out_channels=out_channels, **kwargs)
    except TypeError as err:
        # An unknown keyword: name it instead of showing a constructor traceback.
        raise ValueError(f"model {name!r}: {err}") from err
