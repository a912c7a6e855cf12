"""The smp family: segmentation-models-pytorch models — the ResNet-34 U-Net baseline and any smp
architecture with any smp encoder (``smp:FPN:resnet50``), for any channel count and any input
size — with their typed arguments and the family object.

Networks are built without weights; encoder weights (a local file, or smp's pretrained file
found in the local Hugging Face cache: ``pretrained``) are read by :mod:`drunet.weights`.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import torch
from pydantic import Field
from torch import nn

from drunet.models.family import ModelFamily, Params
from drunet.models.padding import check_input, crop_to, pad_to_multiple

# The architectures that take a plain smp encoder (DPT needs a timm ViT).
ARCHITECTURES = (
    "Unet",
    "UnetPlusPlus",
    "FPN",
    "PSPNet",
    "DeepLabV3",
    "DeepLabV3Plus",
    "Linknet",
    "MAnet",
    "PAN",
    "UPerNet",
    "Segformer",
)
_STRIDED_DECODERS = ("Unet", "UnetPlusPlus", "MAnet", "Linknet")  # output stride 2**depth


def _smp() -> ModuleType:
    """segmentation-models-pytorch, imported when an smp model is first needed: with timm and
    torchvision it takes ~1.3 s, which every ``drunet`` command would otherwise pay."""
    import segmentation_models_pytorch as smp

    return smp


def encoder_names() -> list[str]:
    return list(_smp().encoders.get_encoder_names())


class SmpModel(nn.Module):
    """An smp architecture (default ``Unet``) that accepts any input size.

    :func:`~drunet.models.padding.pad_to_multiple` pads the input (replicating its border) to the
    network's output stride and the logits are cropped back, so every encoder handles odd sizes.
    With ``encoder_depth < 5`` the encoder stages that never run are removed (DDP refuses
    parameters that receive no gradient). ``channels_last`` keeps weights and activations in NHWC
    memory layout, as :class:`~drunet.models.DRUNet` does (the logits are returned in the usual
    layout). ``hparams`` holds ``arch``, ``encoder_name``, ``encoder_depth`` and
    ``channels_last``: with the channel counts they rebuild the network.

    Shapes: ``(N, in_channels, H, W) → (N, out_channels, H, W)`` logits.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 1,
        encoder_name: str = "resnet34",
        encoder_depth: int = 5,
        arch: str = "Unet",
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown smp architecture {arch!r}; choose one of: {ARCHITECTURES}")
        if encoder_name not in encoder_names():
            raise ValueError(
                f"unknown smp encoder {encoder_name!r}; choose one of: {', '.join(encoder_names())}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hparams: dict[str, Any] = {
            "arch": arch,
            "encoder_name": encoder_name,
            "encoder_depth": encoder_depth,
            "channels_last": channels_last,
        }
        self.channels_last = channels_last
        self.multiple = 2**encoder_depth if arch in _STRIDED_DECODERS else 32
        extra: dict[str, Any] = {}
        if arch in ("Unet", "UnetPlusPlus", "MAnet"):
            extra["decoder_channels"] = (256, 128, 64, 32, 16)[:encoder_depth]
        try:
            self.net = _smp().create_model(
                arch,
                encoder_name=encoder_name,
                encoder_weights=None,
                encoder_depth=encoder_depth,
                in_channels=in_channels,
                classes=out_channels,
                **extra,
            )
        except (KeyError, ValueError, AssertionError) as err:
            raise ValueError(
                f"smp {arch} with {encoder_name}, depth {encoder_depth}: {err}"
            ) from err
        if encoder_depth < 5:
            _drop_unused_encoder_stages(self.net, in_channels, self.multiple)
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_channels, type(self).__name__)
        x, size = pad_to_multiple(x, self.multiple)  # (N, C, H', W'), multiples of the stride
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)  # (N, C, H', W') stored as NHWC
        # Logits leave in the usual NCHW layout (the same bytes when there is one channel).
        return crop_to(self.net(x), size).contiguous()  # (N, out_channels, H, W)


def _drop_unused_encoder_stages(net: nn.Module, in_channels: int, multiple: int) -> None:
    """Replace encoder children none of whose parameters get a gradient by ``Identity``."""
    side = max(64, 2 * multiple)
    net.eval()
    net(torch.zeros(2, in_channels, side, side)).float().sum().backward()
    unused = {name for name, p in net.named_parameters() if p.grad is None}
    net.zero_grad(set_to_none=True)
    net.train()
    encoder = net.get_submodule("encoder")
    for child, module in list(encoder.named_children()):
        names = [f"encoder.{child}.{n}" for n, _ in module.named_parameters()]
        if names and all(n in unused for n in names):
            setattr(encoder, child, nn.Identity())


class SmpParams(Params):
    """:class:`SmpModel` arguments. ``encoder_name`` picks another encoder for ``unet_resnet34``
    (``smp:ARCH:ENCODER`` names its encoder in the model name)."""

    encoder_name: str | None = Field(default=None, min_length=1, max_length=64)
    encoder_depth: int = Field(default=5, ge=3, le=5)
    channels_last: bool | None = None  # NHWC weights and activations (None: off)


BASELINE = "unet_resnet34"
PREFIX = "smp:"


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


def _resolve(name: str) -> str | None:
    if name.startswith(PREFIX):
        parse_smp_name(name)
        return name
    return name if name == BASELINE else None


def _filled(name: str, given: dict[str, Any]) -> dict[str, Any]:
    # smp:ARCH:ENCODER holds the architecture and encoder in its name.
    return dict(given) if name.startswith(PREFIX) else {"encoder_name": "resnet34", **given}


def _build(name: str, in_channels: int, out_channels: int, **params: Any) -> nn.Module:
    if name == BASELINE:
        return SmpModel(in_channels, out_channels, **params)
    arch, encoder = parse_smp_name(name)
    return SmpModel(in_channels, out_channels, encoder_name=encoder, arch=arch, **params)


def _check_params(name: str, params: Params) -> None:
    if name.startswith(PREFIX) and getattr(params, "encoder_name", None):
        raise ValueError(f"encoder_name: {name} already names its encoder; drop the key")


def _describe(model: nn.Module) -> tuple[str, dict[str, Any]]:
    assert isinstance(model, SmpModel)
    params = dict(model.hparams)
    return f"{PREFIX}{params.pop('arch')}:{params.pop('encoder_name')}", params


def _encoder(model: nn.Module) -> nn.Module:
    assert isinstance(model, SmpModel)
    return model.net.encoder


def _input_convs(model: nn.Module) -> dict[str, int]:
    """The encoder's first convolution reads the image (``conv1`` of a ResNet)."""
    for name, module in _encoder(model).named_modules():
        if isinstance(module, nn.Conv2d):
            return {f"net.encoder.{name}.weight": 0}
    return {}


def _pretrained(model: nn.Module) -> dict[str, tuple[str, str | None]]:
    assert isinstance(model, SmpModel)
    encoders = _smp().encoders.encoders
    settings = encoders.get(model.hparams["encoder_name"], {}).get("pretrained_settings", {})
    return {key: (value["repo_id"], value.get("revision")) for key, value in settings.items()}


SMP = ModelFamily(
    tag="smp",
    model_class=SmpModel,
    params=SmpParams,
    names=(BASELINE,),
    pattern="smp:ARCH:ENCODER",
    resolve=_resolve,
    build=_build,
    describe=_describe,
    encoder=_encoder,
    input_convs=_input_convs,
    filled=_filled,
    check_params=_check_params,
    builds_on_meta=False,  # a shallow encoder runs a forward pass when built
    pretrained=_pretrained,
)
