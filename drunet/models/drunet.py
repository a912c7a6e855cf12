"""DRUNet: a U-Net whose stages are residual bottleneck blocks with SE attention."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from drunet.models.blocks import BlockArgs, DRBlock, PreActDRBlock
from drunet.models.layers import ConvNormAct
from drunet.models.padding import check_input, crop_to, pad_to_multiple

# Upper bounds that stop absurd sizes before any memory is allocated: init_features=1024 at
# depth 8 is already far beyond any GPU; the ranges are meant to catch typos such as 16000.
MAX_INIT_FEATURES = 1024
MAX_DEPTH = 8


class DRStage(nn.Sequential):
    """One resolution level: ``num_blocks`` × [residual block, optional 3×3 ConvNormAct].

    The reference layout is two blocks, each followed by a 3×3 conv. The first block changes the
    width (``in_channels → out_channels``, projection shortcut); the rest keep it (identity).
    ``args.preact`` picks :class:`PreActDRBlock` instead of :class:`DRBlock`.
    Shapes: ``(N, in_channels, H, W) → (N, out_channels, H, W)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        args: BlockArgs,
        num_blocks: int = 2,
        conv_after_block: bool = True,
    ) -> None:
        block = PreActDRBlock if args.preact else DRBlock
        layers: list[nn.Module] = []
        for i in range(num_blocks):
            block_in = in_channels if i == 0 else out_channels
            block_args = args
            if args.shortcut == "zero_pad" and out_channels < block_in:
                # Zero padding can only add channels; where a decoder narrows, project.
                block_args = replace(args, shortcut="projection")
            layers.append(block(block_in, out_channels, block_args))
            if conv_after_block:
                layers.append(
                    ConvNormAct(out_channels, out_channels, 3, norm=args.norm, act=args.act)
                )
        super().__init__(*layers)


class DRUNetEncoder(nn.Module):
    """DRUNet's stem and down-sampling stages (the last one is the bottleneck).

    Returns the feature list the decoder consumes, as smp encoders do: the input first, then
    level ``k`` at ``widths[k]`` channels and ``1 / (stem_stride · 2**k)`` of the input's size.
    Shapes: ``(N, C, H, W) → [(N, C, H, W), (N, w0, H/s, W/s), …, (N, w_depth, …)]``.
    """

    def __init__(
        self,
        in_channels: int,
        widths: list[int],
        args: BlockArgs,
        blocks_per_stage: int,
        conv_after_block: bool,
        stem_stride: int,
    ) -> None:
        super().__init__()
        norm, act = args.norm, args.act
        self.stem = nn.Sequential(
            ConvNormAct(in_channels, widths[0], 3, stride=stem_stride, norm=norm, act=act),
            ConvNormAct(widths[0], widths[0], 3, norm=norm, act=act),
        )
        self.pool = nn.MaxPool2d(2)
        # stages[k] maps level k to level k + 1; the last one is the bottleneck.
        self.stages = nn.ModuleList(
            DRStage(widths[k], widths[k + 1], args, blocks_per_stage, conv_after_block)
            for k in range(len(widths) - 1)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [x, self.stem(x)]  # the image; level 0: (N, w0, H / s, W / s)
        for stage in self.stages:
            features.append(stage(self.pool(features[-1])))  # level k+1: (N, w_{k+1}, …)
        return features


class DRUNetDecoder(nn.Module):
    """Up-sampling stages from the bottleneck back to level 0, each concatenating the encoder
    feature of its scale; with a stride-2 stem, one full-resolution ``refine`` conv that sees the
    up-sampled features beside the image, so thin structures keep sharp edges.
    Shapes: the encoder's feature list → ``(N, w0, H, W)``.
    """

    def __init__(
        self,
        in_channels: int,
        widths: list[int],
        args: BlockArgs,
        blocks_per_stage: int,
        conv_after_block: bool,
        stem_stride: int,
    ) -> None:
        super().__init__()
        depth = len(widths) - 1
        self.upsamples = nn.ModuleList(
            nn.ConvTranspose2d(widths[k + 1], widths[k], 2, stride=2) for k in range(depth)
        )
        self.stages = nn.ModuleList(
            DRStage(2 * widths[k], widths[k], args, blocks_per_stage, conv_after_block)
            for k in range(depth)
        )
        self.refine = (
            ConvNormAct(widths[0] + in_channels, widths[0], 3, norm=args.norm, act=args.act)
            if stem_stride == 2
            else None
        )

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        image, *skips = features
        x = skips.pop()  # the bottleneck
        for k in reversed(range(len(self.stages))):
            x = self.upsamples[k](x)  # (N, w_k, H'/2^k, W'/2^k)
            x = self.stages[k](torch.cat([x, skips[k]], dim=1))
        if self.refine is not None:  # half resolution → full: (N, w0, H, W)
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = self.refine(torch.cat([x, image], dim=1))
        return x


# Where each part lived before the encoder / decoder split: weights saved then still load.
_RENAMED = {
    "stem.": "encoder.stem.",
    "encoders.": "encoder.stages.",
    "upsamples.": "decoder.upsamples.",
    "decoders.": "decoder.stages.",
    "refine.": "decoder.refine.",
}


def upgrade_state(state: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``state`` with DRUNet keys saved before the encoder / decoder split renamed (``stem.0`` →
    ``encoder.stem.0``); keys already current, or not under ``prefix``, are kept as they are."""
    return {_upgraded_key(key, prefix): value for key, value in state.items()}


def _upgraded_key(key: str, prefix: str) -> str:
    if key.startswith(prefix):
        rest = key[len(prefix) :]
        for old, new in _RENAMED.items():
            if rest.startswith(old):
                return prefix + new + rest[len(old) :]
    return key


def _upgrade_hook(module: nn.Module, state: dict[str, Any], prefix: str, *args: Any) -> None:
    # load_state_dict pre-hook: rename old keys in place, so every loader accepts them.
    upgraded = upgrade_state(state, prefix)
    if upgraded.keys() != state.keys():
        state.clear()
        state.update(upgraded)


class DRUNet(nn.Module):
    """Deep Residual U-Net.

    Encoder (:class:`DRUNetEncoder`): a stem of two 3×3 ConvNormAct at ``init_features``
    channels, then ``depth`` levels of 2×2 max-pool + :class:`DRStage` doubling the width each
    time (the last level is the bottleneck); it returns its feature list. Decoder
    (:class:`DRUNetDecoder`): per level a 2×2 ConvTranspose (stride 2) halving the width,
    concatenation with the encoder feature of the same scale, and a :class:`DRStage`. A 1×1 conv
    ``head`` returns logits. State-dict keys of weights saved before this split (``stem.…``,
    ``encoders.…``, ``upsamples.…``, ``decoders.…``, ``refine.…``) load through
    :func:`upgrade_state`.

    ``DRUNet(3, 1, 32)`` is the reference topology — stem of two 3×3 convs; encoders 2–4,
    bottleneck and decoders 4–1 of [DRBlock, 3×3 conv, DRBlock, 3×3 conv]; four down-samplings;
    widths 32, 64, 128, 256, 512 — with BatchNorm added. It has **18,516,785 parameters**
    (``tests/models/test_drunet.py`` checks this number).

    Any input height and width works: :func:`~drunet.models.padding.pad_to_multiple` pads the
    input (replicating its border) to a multiple of ``2**depth`` and the logits are cropped back,
    so the output always has the input's exact size.

    Args:
        in_channels: image channels (1 grayscale, 3 RGB, …).
        out_channels: logit channels (1 for binary with a sigmoid, else the number of classes).
        init_features: width of the first level (at most :data:`MAX_INIT_FEATURES`); level k has
            ``init_features * 2**k``.
        depth: number of down-samplings (at most :data:`MAX_DEPTH`).
        blocks_per_stage, conv_after_block: layout of each :class:`DRStage`.
        bottleneck_ratio: width of a block's 1×1 → 3×3 → 1×1 path relative to its output.
        se_reduction: SE reduction ratio (0 disables SE).
        shortcut: ``"projection"`` or ``"zero_pad"`` (where channels grow).
        preact: pre-activation (ResNet v2) blocks, :class:`PreActDRBlock`.
        norm, act: layer names, see :mod:`drunet.models.layers`.
        stem_stride: ``2`` makes the stem's first conv stride 2, so the whole U-Net runs at half
            resolution (a quarter of the memory traffic); the decoder's output is up-sampled
            bilinearly and refined by one full-resolution 3×3 ConvNormAct that also sees the
            image. Height and width are padded to a multiple of ``2**(depth + 1)``.
        channels_last: keep weights and activations in NHWC memory layout (the logits are
            returned in the usual layout). On CPUs, oneDNN runs narrow convolutions much faster
            in NHWC; on GPUs it is the layout tensor cores want.

    ``hparams`` holds every argument but the channel counts, which are ``in_channels`` and
    ``out_channels``; ``DRUNet(in_channels, out_channels, **hparams)`` rebuilds the network.

    Shapes: ``(N, in_channels, H, W) → (N, out_channels, H, W)`` logits.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 1,
        init_features: int = 32,
        depth: int = 4,
        blocks_per_stage: int = 2,
        conv_after_block: bool = True,
        bottleneck_ratio: float = 1.0,
        se_reduction: int = 16,
        shortcut: str = "projection",
        preact: bool = False,
        norm: str = "batch",
        act: str = "relu",
        channels_last: bool = False,
        stem_stride: int = 1,
    ) -> None:
        super().__init__()
        if stem_stride not in (1, 2):
            raise ValueError(f"DRUNet: stem_stride must be 1 or 2, got {stem_stride}")
        for name, value, upper in (
            ("in_channels", in_channels, None),
            ("out_channels", out_channels, None),
            ("init_features", init_features, MAX_INIT_FEATURES),
            ("depth", depth, MAX_DEPTH),
            ("blocks_per_stage", blocks_per_stage, None),
        ):
            if value < 1 or (upper is not None and value > upper):
                bounds = f"between 1 and {upper}" if upper else ">= 1"
                raise ValueError(f"DRUNet: {name} must be {bounds}, got {value}")
        args = BlockArgs(bottleneck_ratio, se_reduction, shortcut, norm, act, preact)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hparams: dict[str, Any] = {
            "init_features": init_features,
            "depth": depth,
            "blocks_per_stage": blocks_per_stage,
            "conv_after_block": conv_after_block,
            "bottleneck_ratio": bottleneck_ratio,
            "se_reduction": se_reduction,
            "shortcut": shortcut,
            "preact": preact,
            "norm": norm,
            "act": act,
            "channels_last": channels_last,
            "stem_stride": stem_stride,
        }
        self.depth = depth
        self.multiple = 2**depth * stem_stride  # height and width are padded to this
        self.channels_last = channels_last
        widths = [init_features * 2**k for k in range(depth + 1)]
        self.encoder = DRUNetEncoder(
            in_channels, widths, args, blocks_per_stage, conv_after_block, stem_stride
        )
        self.decoder = DRUNetDecoder(
            in_channels, widths, args, blocks_per_stage, conv_after_block, stem_stride
        )
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        self.register_load_state_dict_pre_hook(_upgrade_hook)
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is ``(N, in_channels, H, W)``."""
        check_input(x, self.in_channels, "DRUNet")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        x, size = pad_to_multiple(x, self.multiple)  # (N, C, H', W'), multiples of 2**depth
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)  # (N, C, H', W') stored as NHWC

        features = self.encoder(x)  # [image, level 0, …, bottleneck]
        x = self.decoder(features)  # (N, w0, H', W')
        # Logits leave in the usual NCHW layout (the same bytes when there is one channel).
        return crop_to(self.head(x), size).contiguous()  # (N, out_channels, H, W)

    def zero_init_last(self) -> None:
        """Start every residual block as its shortcut (useful for very deep variants)."""
        for module in self.modules():
            if isinstance(module, DRBlock | PreActDRBlock):
                module.zero_init_last()
