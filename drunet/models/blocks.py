"""Residual building blocks: Squeeze-and-Excitation and the DRUNet bottleneck blocks.

:class:`DRBlock` is the post-activation (ResNet v1) bottleneck, :class:`PreActDRBlock` the
pre-activation (ResNet v2) one; :class:`BlockArgs` holds what every block of a model shares.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from drunet.models.layers import ACT_NAMES, NORM_NAMES, check_choice, make_act, make_norm

SHORTCUTS = ("projection", "zero_pad")


@dataclass(frozen=True)
class BlockArgs:
    """How the residual blocks of a model are built; checked when created.

    Attributes:
        bottleneck_ratio: width of the 1×1 → 3×3 → 1×1 path relative to the block's output.
        se_reduction: SE reduction ratio; ``0`` disables the SE gate.
        shortcut: ``"projection"`` (1×1 conv + norm) or ``"zero_pad"`` (parameter-free) where
            the shapes of input and output differ.
        norm, act: layer names resolved by :mod:`drunet.models.layers`.
        preact: build :class:`PreActDRBlock` (ResNet v2) instead of :class:`DRBlock`.
    """

    bottleneck_ratio: float = 1.0
    se_reduction: int = 16
    shortcut: str = "projection"
    norm: str = "batch"
    act: str = "relu"
    preact: bool = False

    def __post_init__(self) -> None:
        if not self.bottleneck_ratio > 0:
            raise ValueError(f"bottleneck_ratio must be > 0, got {self.bottleneck_ratio}")
        if self.se_reduction < 0:
            raise ValueError(f"se_reduction must be >= 0 (0 disables SE), got {self.se_reduction}")
        check_choice("shortcut", self.shortcut, SHORTCUTS)
        check_choice("norm", self.norm, NORM_NAMES)
        check_choice("act", self.act, ACT_NAMES)


class SqueezeExcite(nn.Module):
    """Channel attention (Hu et al., 2018): pool → 1×1 reduce → act → 1×1 expand → sigmoid gate.

    The hidden width is ``max(min_channels, channels // reduction)`` so that narrow layers (say 8
    channels at ratio 16) still get a gate with a few units instead of zero.

    Shapes: ``(N, C, H, W) → (N, C, H, W)``.
    """

    def __init__(
        self, channels: int, reduction: int = 16, min_channels: int = 8, act: str = "relu"
    ) -> None:
        super().__init__()
        if channels < 1 or reduction < 1 or min_channels < 1:
            raise ValueError(
                f"SqueezeExcite needs positive channels, reduction and min_channels; got "
                f"channels={channels}, reduction={reduction}, min_channels={min_channels}"
            )
        hidden = max(min_channels, channels // reduction)
        self.conv_reduce = nn.Conv2d(channels, hidden, kernel_size=1)
        self.act = make_act(act)
        self.conv_expand = nn.Conv2d(hidden, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
        s = self.conv_expand(self.act(self.conv_reduce(s)))
        return x * torch.sigmoid(s)


class ZeroPadShortcut(nn.Module):
    """The parameter-free shortcut of the ResNet paper (option A).

    Sub-samples by ``stride`` and appends zero channels up to ``out_channels``.
    Shapes: ``(N, C_in, H, W) → (N, C_out, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(
                f"a zero-padding shortcut cannot reduce channels ({in_channels} → {out_channels});"
                " use shortcut='projection'"
            )
        self.extra_channels = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        # F.pad pads the last dims first: (W_left, W_right, H_top, H_bottom, C_front, C_back).
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))


def make_shortcut(
    kind: str, in_channels: int, out_channels: int, stride: int, norm: str | None
) -> nn.Module:
    """Identity when shapes match, else a 1×1 projection (+ norm) or a zero-padding shortcut.

    ``norm=None`` gives a projection without normalisation (the pre-activation ordering).
    """
    if in_channels == out_channels and stride == 1:
        return nn.Identity()
    if kind == "zero_pad":
        return ZeroPadShortcut(in_channels, out_channels, stride)
    conv = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=norm in (None, "none"))
    if norm is None:
        return conv
    return nn.Sequential(conv, make_norm(norm, out_channels))


def _bottleneck_width(in_channels: int, out_channels: int, stride: int, args: BlockArgs) -> int:
    if in_channels < 1 or out_channels < 1 or stride < 1:
        raise ValueError(
            f"a residual block needs positive channels and stride; got in_channels="
            f"{in_channels}, out_channels={out_channels}, stride={stride}"
        )
    return max(1, round(out_channels * args.bottleneck_ratio))


def _make_se(channels: int, args: BlockArgs) -> nn.Module:
    se_reduction, act = args.se_reduction, args.act
    return SqueezeExcite(channels, se_reduction, act=act) if se_reduction else nn.Identity()


class DRBlock(nn.Module):
    """Post-activation (ResNet v1) bottleneck: 1×1 → 3×3 → 1×1 convolutions, SE gate, shortcut::

        out = act3(se(bn3(conv3(act2(bn2(conv2(act1(bn1(conv1(x))))))))) + shortcut(x))

    The shortcut is the identity when ``in_channels == out_channels`` and ``stride == 1``;
    otherwise a 1×1 projection with normalisation (``shortcut="projection"``) or the
    parameter-free zero-padding shortcut (``shortcut="zero_pad"``, channels may only grow).

    Args:
        in_channels, out_channels: channels of input and output.
        args: bottleneck ratio, SE, shortcut kind and layer names (``args.preact`` is ignored).
        stride: stride of the 3×3 convolution (and of the shortcut).

    Shapes: ``(N, in_channels, H, W) → (N, out_channels, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        args: BlockArgs = BlockArgs(),
        stride: int = 1,
    ) -> None:
        super().__init__()
        mid = _bottleneck_width(in_channels, out_channels, stride, args)
        self.conv1 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn1 = make_norm(args.norm, mid)
        self.act1 = make_act(args.act)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, padding=1, bias=False)
        self.bn2 = make_norm(args.norm, mid)
        self.act2 = make_act(args.act)
        self.conv3 = nn.Conv2d(mid, out_channels, 1, bias=False)
        self.bn3 = make_norm(args.norm, out_channels)
        self.se = _make_se(out_channels, args)
        self.act3 = make_act(args.act)
        self.shortcut = make_shortcut(args.shortcut, in_channels, out_channels, stride, args.norm)

    def zero_init_last(self) -> None:
        """Zero the last norm's scale (or, without one, conv3) so the block starts as
        ``act3(shortcut(x))``."""
        if isinstance(self.bn3, nn.BatchNorm2d | nn.GroupNorm | nn.InstanceNorm2d):
            nn.init.zeros_(self.bn3.weight)
        else:
            nn.init.zeros_(self.conv3.weight)

    def conv_norm_pairs(self) -> list[tuple[str, str]]:
        """``(conv, norm)`` attribute names :func:`~drunet.models.layers.fuse_conv_bn` folds."""
        return [("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut(x)  # (N, C_out, H', W')
        x = self.act1(self.bn1(self.conv1(x)))  # (N, C_mid, H, W)
        x = self.act2(self.bn2(self.conv2(x)))  # (N, C_mid, H', W')
        x = self.bn3(self.conv3(x))  # (N, C_out, H', W')
        x = self.se(x)
        return self.act3(x + shortcut)


class PreActDRBlock(nn.Module):
    """Pre-activation (ResNet v2) bottleneck: each conv is preceded by ``norm → act``::

        pre = act1(bn1(x))
        out = se(conv3(act3(bn3(conv2(act2(bn2(conv1(pre)))))))) + shortcut

    Nothing follows the addition, so the identity path stays clean from input to output. The
    shortcut is ``x`` itself when the shapes match, else a projection (a 1×1 conv without norm)
    or zero padding of ``pre``. Arguments and shapes as :class:`DRBlock`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        args: BlockArgs = BlockArgs(preact=True),
        stride: int = 1,
    ) -> None:
        super().__init__()
        mid = _bottleneck_width(in_channels, out_channels, stride, args)
        self.bn1 = make_norm(args.norm, in_channels)
        # Not in place: with norm="none" it would overwrite the input the identity path returns.
        self.act1 = make_act(args.act, inplace=False)
        self.conv1 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn2 = make_norm(args.norm, mid)
        self.act2 = make_act(args.act)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, padding=1, bias=False)
        self.bn3 = make_norm(args.norm, mid)
        self.act3 = make_act(args.act)
        self.conv3 = nn.Conv2d(mid, out_channels, 1, bias=False)
        self.se = _make_se(out_channels, args)
        self.shortcut = make_shortcut(args.shortcut, in_channels, out_channels, stride, norm=None)

    def zero_init_last(self) -> None:
        """Zero conv3 so the block starts as its shortcut (the identity when shapes match)."""
        nn.init.zeros_(self.conv3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act1(self.bn1(x))  # (N, C_in, H, W)
        # ResNet v2 projects the pre-activated input but passes the raw one through unchanged.
        shortcut = x if isinstance(self.shortcut, nn.Identity) else self.shortcut(pre)
        x = self.conv1(pre)  # (N, C_mid, H, W)
        x = self.conv2(self.act2(self.bn2(x)))  # (N, C_mid, H', W')
        x = self.conv3(self.act3(self.bn3(x)))  # (N, C_out, H', W')
        x = self.se(x)
        return x + shortcut
