"""DRUNet: a U-Net whose stages are residual bottleneck blocks with SE attention."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from drunet.models.blocks import DRBlock
from drunet.models.layers import ConvNormAct
from drunet.models.pretrained import PretrainedMixin


class DRStage(nn.Sequential):
    """One resolution level: ``num_blocks`` × [DRBlock, optional 3×3 ConvNormAct].

    The reference layout is two blocks, each followed by a 3×3 conv. The first block changes the
    width (``in_channels → out_channels``, projection shortcut); the rest keep it (identity).
    Shapes: ``(N, in_channels, H, W) → (N, out_channels, H, W)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_blocks: int = 2,
        conv_after_block: bool = True,
        norm: str = "batch",
        act: str = "relu",
        **block_kwargs: object,
    ) -> None:
        layers: list[nn.Module] = []
        for i in range(num_blocks):
            block_in = in_channels if i == 0 else out_channels
            shortcut = block_kwargs.get("shortcut", "projection")
            if shortcut == "zero_pad" and out_channels < block_in:
                # Zero padding can only add channels; where a decoder narrows, project.
                shortcut = "projection"
            kwargs = {**block_kwargs, "shortcut": shortcut}
            layers.append(DRBlock(block_in, out_channels, norm=norm, act=act, **kwargs))
            if conv_after_block:
                layers.append(ConvNormAct(out_channels, out_channels, 3, norm=norm, act=act))
        super().__init__(*layers)


class DRUNet(PretrainedMixin, nn.Module):
    """Deep Residual U-Net.

    Encoder: a stem of two 3×3 ConvNormAct at ``init_features`` channels, then ``depth`` levels of
    2×2 max-pool + :class:`DRStage` doubling the width each time (the last level is the
    bottleneck). Decoder: per level a 2×2 ConvTranspose (stride 2) halving the width,
    concatenation with the encoder feature of the same scale, and a :class:`DRStage`. A 1×1 conv
    head returns logits.

    ``DRUNet(3, 1, 32)`` is the reference topology — stem of two 3×3 convs; encoders 2–4,
    bottleneck and decoders 4–1 of [DRBlock, 3×3 conv, DRBlock, 3×3 conv]; four down-samplings;
    widths 32, 64, 128, 256, 512 — with BatchNorm added. It has **18,516,785 parameters**
    (``tests/models/test_drunet.py`` checks this number).

    Any input height and width works: the input is padded (replicating its border) to a
    multiple of ``2**depth`` and the logits are cropped back, so the output always has the
    input's exact size.

    Args:
        in_channels: image channels (1 grayscale, 3 RGB, …).
        out_channels: logit channels (1 for binary with a sigmoid, else the number of classes).
        init_features: width of the first level; level k has ``init_features * 2**k``.
        depth: number of down-samplings.
        blocks_per_stage, conv_after_block: layout of each :class:`DRStage`.
        bottleneck_ratio: width of a DRBlock's 1×1 → 3×3 → 1×1 path relative to its output.
        se_reduction: SE reduction ratio (0 disables SE).
        shortcut: ``"projection"`` or ``"zero_pad"`` (where channels grow).
        preact: pre-activation (ResNet v2) ordering inside DRBlocks.
        norm, act: layer names, see :mod:`drunet.models.layers`.
        channels_last: keep weights and activations in NHWC memory layout (the logits are
            returned in the usual layout). On CPUs, oneDNN runs narrow convolutions much faster
            in NHWC; on GPUs it is the layout tensor cores want.

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
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("init_features", init_features),
            ("depth", depth),
            ("blocks_per_stage", blocks_per_stage),
        ):
            if value < 1:
                raise ValueError(f"DRUNet: {name} must be >= 1, got {value}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.depth = depth
        widths = [init_features * 2**k for k in range(depth + 1)]
        stage = dict(
            num_blocks=blocks_per_stage,
            conv_after_block=conv_after_block,
            norm=norm,
            act=act,
            bottleneck_ratio=bottleneck_ratio,
            se_reduction=se_reduction,
            shortcut=shortcut,
            preact=preact,
        )
        self.stem = nn.Sequential(
            ConvNormAct(in_channels, widths[0], 3, norm=norm, act=act),
            ConvNormAct(widths[0], widths[0], 3, norm=norm, act=act),
        )
        self.pool = nn.MaxPool2d(2)
        # encoders[k] maps level k to level k + 1; the last one is the bottleneck.
        self.encoders = nn.ModuleList(
            DRStage(widths[k], widths[k + 1], **stage) for k in range(depth)
        )
        self.upsamples = nn.ModuleList(
            nn.ConvTranspose2d(widths[k + 1], widths[k], 2, stride=2) for k in range(depth)
        )
        self.decoders = nn.ModuleList(
            DRStage(2 * widths[k], widths[k], **stage) for k in range(depth)
        )
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is ``(N, in_channels, H, W)``."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"DRUNet expects input of shape (N, {self.in_channels}, H, W), "
                f"got {tuple(x.shape)}: expected {self.in_channels} channels, received "
                f"{x.shape[1] if x.ndim == 4 else 'a ' + str(x.ndim) + '-D tensor'}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        height, width = x.shape[-2:]
        multiple = 2**self.depth
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)  # (N, C, H, W) stored as NHWC

        skips = [self.stem(x)]  # level 0: (N, w0, H, W)
        for encoder in self.encoders:
            skips.append(encoder(self.pool(skips[-1])))  # level k+1: (N, w_{k+1}, H/2^{k+1}, …)
        x = skips.pop()  # bottleneck
        for k in reversed(range(self.depth)):
            x = self.upsamples[k](x)  # (N, w_k, H/2^k, W/2^k)
            x = self.decoders[k](torch.cat([x, skips[k]], dim=1))
        logits = self.head(x)
        # Logits leave in the usual NCHW layout (the same bytes when there is one channel).
        return logits[..., :height, :width].contiguous()

    def zero_init_last(self) -> None:
        """Start every DRBlock as its shortcut (useful for very deep variants)."""
        for module in self.modules():
            if isinstance(module, DRBlock):
                module.zero_init_last()
