"""The DRUNet family: named configurations (presets), typed arguments, and the family object.

A preset is a set of :class:`~drunet.models.DRUNet` kwargs: ``create_model("drunet_s")`` is
``DRUNet(**PRESETS["drunet_s"])``; arguments given to ``create_model`` override the preset's.
``"drunet"`` is :data:`DEFAULT_PRESET`. Treat the dicts as read-only: copy one before changing it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from torch import nn

from drunet.models.drunet import MAX_DEPTH, MAX_INIT_FEATURES, DRUNet, upgrade_state
from drunet.models.family import ModelFamily, Params

PRESETS: dict[str, dict[str, Any]] = {
    # The reference topology, DRUNet(3, 1, 32): 18,516,785 parameters at 3 → 1 channels.
    "drunet_ref": {
        "init_features": 32,
        "depth": 4,
        "blocks_per_stage": 2,
        "conv_after_block": True,
        "bottleneck_ratio": 1.0,
        "se_reduction": 16,
    },
    "drunet_s": {
        "init_features": 16,
        "depth": 4,
        "blocks_per_stage": 1,
        "conv_after_block": False,
        "channels_last": True,
    },
    # drunet_s at half resolution: a stride-2 stem, one full-resolution refine conv at the end.
    "drunet_s2": {
        "init_features": 16,
        "depth": 4,
        "blocks_per_stage": 1,
        "conv_after_block": False,
        "channels_last": True,
        "stem_stride": 2,
    },
    "drunet_m": {
        "init_features": 16,
        "depth": 4,
        "blocks_per_stage": 2,
        "conv_after_block": False,
        "channels_last": True,
    },
    "drunet_l": {
        "init_features": 32,
        "depth": 4,
        "blocks_per_stage": 1,
        "conv_after_block": False,
        "channels_last": True,
    },
}

# Chosen by measurement (README "Benchmarks" and "Results"): drunet_s2 trains 1.8–2.1× as many
# images per second as drunet_s on the 2-core reference machine (bench_models.py) with the same
# held-out ISBI Dice at equal wall-clock budgets over two seeds (0.8339/0.8356 against
# 0.8362/0.8335). Runs store the preset they used, so drunet_s runs rebuild drunet_s.
DEFAULT_PRESET = "drunet_s2"


class DRUNetParams(Params):
    """:class:`~drunet.models.DRUNet` arguments; ``None`` takes the preset's value."""

    init_features: int | None = Field(default=None, ge=1, le=MAX_INIT_FEATURES)
    depth: int | None = Field(default=None, ge=1, le=MAX_DEPTH)
    blocks_per_stage: int | None = Field(default=None, ge=1, le=16)
    conv_after_block: bool | None = None
    bottleneck_ratio: float | None = Field(default=None, gt=0, le=8)
    se_reduction: int | None = Field(default=None, ge=0, le=1024)
    shortcut: Literal["projection", "zero_pad"] | None = None
    preact: bool | None = None
    norm: Literal["batch", "group", "instance", "none"] | None = None
    act: Literal["relu", "leaky_relu", "silu", "gelu"] | None = None
    channels_last: bool | None = None
    stem_stride: Literal[1, 2] | None = None


def resolve_preset(name: str) -> str:
    """The registry name ``name`` stands for: ``"drunet"`` → :data:`DEFAULT_PRESET`."""
    return DEFAULT_PRESET if name == "drunet" else name


def _resolve(name: str) -> str | None:
    preset = resolve_preset(name)
    return preset if preset in PRESETS else None


def _filled(name: str, given: dict[str, Any]) -> dict[str, Any]:
    return {**PRESETS[name], **given}


def _build(name: str, in_channels: int, out_channels: int, **params: Any) -> nn.Module:
    return DRUNet(in_channels, out_channels, **_filled(name, params))


def _describe(model: nn.Module) -> tuple[str, dict[str, Any]]:
    assert isinstance(model, DRUNet)
    # Every argument is stated, so the preset's values do not matter.
    return "drunet_ref", dict(model.hparams)


def _encoder(model: nn.Module) -> nn.Module:
    assert isinstance(model, DRUNet)
    return model.encoder  # the stem and down-sampling stages, the bottleneck included


def _input_convs(model: nn.Module) -> dict[str, int]:
    assert isinstance(model, DRUNet)
    convs = {"encoder.stem.0.0.weight": 0}
    if model.decoder.refine is not None:  # it reads the up-sampled features, then the image
        convs["decoder.refine.0.weight"] = model.hparams["init_features"]
    return convs


DRUNET = ModelFamily(
    tag="drunet",
    model_class=DRUNet,
    params=DRUNetParams,
    names=("drunet", *PRESETS),
    resolve=_resolve,
    build=_build,
    describe=_describe,
    encoder=_encoder,
    input_convs=_input_convs,
    filled=_filled,
    upgrade_state=upgrade_state,
)
