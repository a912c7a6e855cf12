"""The model registry: every family drunet builds, and ``create_model(name, ...)``.

Names: ``"drunet"`` (the default preset), the DRUNet presets, ``"unet_resnet34"`` (the smp
baseline) and ``"smp:ARCH:ENCODER"`` for any smp architecture and encoder
(``"smp:UnetPlusPlus:efficientnet-b0"``, ``"smp:FPN:resnet50"``). A new family is a file of its
own holding a :class:`~drunet.models.family.ModelFamily` and one line in :data:`FAMILIES`.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from drunet.models.baseline import SMP
from drunet.models.family import ModelFamily
from drunet.models.presets import DRUNET

FAMILIES: list[ModelFamily] = [DRUNET, SMP]


def register(family: ModelFamily) -> None:
    """Add ``family`` (its names must be new); :func:`unregister` removes it."""
    taken = [name for name in family.names if any(f.resolve(name) for f in FAMILIES)]
    if taken or any(f.tag == family.tag for f in FAMILIES):
        raise ValueError(f"model family {family.tag!r}: names already registered: {taken}")
    FAMILIES.append(family)


def unregister(tag: str) -> None:
    FAMILIES[:] = [f for f in FAMILIES if f.tag != tag]


def model_names() -> tuple[str, ...]:
    """The fixed names :func:`create_model` accepts, besides patterns such as
    ``smp:ARCH:ENCODER`` (see :func:`shown_names`)."""
    return tuple(name for family in FAMILIES for name in family.names)


def shown_names() -> tuple[str, ...]:
    """Every name and name pattern, as help and errors list them."""
    return tuple(name for family in FAMILIES for name in family.shown_names)


def _lookup(name: str) -> tuple[ModelFamily, str]:
    for family in FAMILIES:
        resolved = family.resolve(name)
        if resolved is not None:
            return family, resolved
    raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(shown_names())}")


def check_name(name: str) -> str:
    """The concrete name ``name`` stands for (``"drunet"`` → its preset), or ``ValueError``
    listing the names."""
    return _lookup(name)[1]


def family_for(name: str) -> ModelFamily:
    """The family answering ``name``; ``ValueError`` listing the names."""
    return _lookup(name)[0]


def family_of(model: nn.Module) -> ModelFamily | None:
    """The family ``model`` belongs to, ``None`` for a network no family built."""
    for family in FAMILIES:
        if isinstance(model, family.model_class):
            return family
    return None


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
    family, name = _lookup(name)
    try:
        return family.build(name, in_channels, out_channels, **kwargs)
    except TypeError as err:  # an unknown keyword: name it instead of a constructor traceback
        raise ValueError(f"model {name!r}: {err}") from err
