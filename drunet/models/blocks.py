"""Residual building blocks: Squeeze-and-Excitation and the DRUNet bottleneck block."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from drunet.models.layers import check_choice, make_act, make_norm

SHORTCUTS = ("projection", "zero_pad")


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

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """Per-channel weights in (0, 1): ``(N, C, H, W) → (N, C, 1, 1)``."""
        s = x.mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
        s = self.conv_expand(self.act(self.conv_reduce(s)))
        return torch.sigmoid(s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


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
    check_choice("shortcut", kind, SHORTCUTS)
    if in_channels == out_channels and stride == 1:
        return nn.Identity()
    if kind == "zero_pad":
        return ZeroPadShortcut(in_channels, out_channels, stride)
    conv = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=norm in (None, "none"))
    if norm is None:
        return conv
    return nn.Sequential(conv, make_norm(norm, out_channels))


class DRBlock(nn.Module):
    """Deep residual bottleneck block: 1×1 → 3×3 → 1×1 convolutions, SE gate, shortcut.

    Post-activation (ResNet v1, default)::

        out = act(se(bn3(conv3(act(bn2(conv2(act(bn1(conv1(x))))))))) + shortcut(x))

    Pre-activation (ResNet v2, ``preact=True``): each conv is preceded by ``norm → act`` and
    nothing follows the addition, so the identity path stays clean from input to output.

    The shortcut is the identity when ``in_channels == out_channels`` and ``stride == 1``;
    otherwise a 1×1 projection with normalisation (``shortcut="projection"``) or the
    parameter-free zero-padding shortcut (``shortcut="zero_pad"``, channels may only grow).

    Args:
        in_channels, out_channels: channels of input and output.
        stride: stride of the 3×3 convolution (and of the shortcut).
        mid_channels: width of the 1×1 → 3×3 → 1×1 path;
            ``None`` → ``out_channels * bottleneck_ratio``.
        bottleneck_ratio: used when ``mid_channels`` is ``None``.
        norm, act: layer names resolved by :mod:`drunet.models.layers`.
        se_reduction: SE reduction ratio; ``0`` disables the SE gate.

    Shapes: ``(N, in_channels, H, W) → (N, out_channels, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        mid_channels: int | None = None,
        bottleneck_ratio: float = 1.0,
        norm: str = "batch",
        act: str = "relu",
        se_reduction: int = 16,
        shortcut: str = "projection",
        preact: bool = False,
    ) -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 1 or stride < 1:
            raise ValueError(
                f"DRBlock needs positive channels and stride; got in_channels={in_channels}, "
                f"out_channels={out_channels}, stride={stride}"
            )
        if mid_channels is None:
            if bottleneck_ratio <= 0:
                raise ValueError(f"bottleneck_ratio must be > 0, got {bottleneck_ratio}")
            mid_channels = max(1, round(out_channels * bottleneck_ratio))
        self.preact = preact
        # Pre-activation normalises each conv's *input*; post-activation each conv's output.
        widths = (
            (in_channels, mid_channels, mid_channels)
            if preact
            else (mid_channels,) * 2 + (out_channels,)
        )
        self.conv1 = nn.Conv2d(in_channels, mid_channels, 1, bias=False)
        self.bn1 = make_norm(norm, widths[0])
        # Not in-place under pre-activation: with norm="none" it would overwrite the identity input.
        self.act1 = make_act(act, inplace=not preact)
        self.conv2 = nn.Conv2d(mid_channels, mid_channels, 3, stride, padding=1, bias=False)
        self.bn2 = make_norm(norm, widths[1])
        self.act2 = make_act(act)
        self.conv3 = nn.Conv2d(mid_channels, out_channels, 1, bias=False)
        self.bn3 = make_norm(norm, widths[2])
        self.act3 = make_act(act)
        self.se = SqueezeExcite(out_channels, se_reduction, act=act) if se_reduction else None
        self.shortcut = make_shortcut(
            shortcut, in_channels, out_channels, stride, norm=None if preact else norm
        )

    def zero_init_last(self) -> None:
        """Zero the last norm's scale so the residual branch starts as zero (block = shortcut)."""
        if self.preact:
            nn.init.zeros_(self.conv3.weight)
        elif isinstance(self.bn3, nn.BatchNorm2d | nn.GroupNorm | nn.InstanceNorm2d):
            nn.init.zeros_(self.bn3.weight)
        else:
            nn.init.zeros_(self.conv3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preact:
            return self._forward_preact(x)
        shortcut = self.shortcut(x)
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        x = self.bn3(self.conv3(x))
        if self.se is None:
            return self.act3(x + shortcut)
        # shortcut + x · gate in one pass over the feature map instead of a product, then a sum.
        return self.act3(torch.addcmul(shortcut, x, self.se.gate(x)))

    def _forward_preact(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act1(self.bn1(x))
        # ResNet v2 takes a projection from the pre-activated input, the identity from the raw one.
        shortcut = x if isinstance(self.shortcut, nn.Identity) else self.shortcut(pre)
        x = self.conv1(pre)
        x = self.conv2(self.act2(self.bn2(x)))
        x = self.conv3(self.act3(self.bn3(x)))
        if self.se is None:
            return x + shortcut
        return torch.addcmul(shortcut, x, self.se.gate(x))

    def conv_norm_pairs(self) -> list[tuple[str, str]]:
        """``(conv, norm)`` attribute names where the norm directly follows the conv.

        :func:`~drunet.models.layers.fuse_conv_bn` folds these at inference. Pre-activation
        norms come *before* their conv (and zero padding sits between), so none are listed.
        """
        return [] if self.preact else [("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")]
