"""One factory for the layers every block is built from.

Blocks take layer *names* (``norm="batch"``, ``act="relu"``) and resolve them here, so a new
normalisation or activation is added in one place and every model can use it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

_NORMS: dict[str, Callable[[int], nn.Module]] = {
    "batch": nn.BatchNorm2d,
    "instance": lambda c: nn.InstanceNorm2d(c, affine=True),
    # Groups of (up to) 8 channels: works for any width, including narrow layers.
    "group": lambda c: nn.GroupNorm(_num_groups(c), c),
    "none": lambda c: nn.Identity(),
}

_ACTS: dict[str, Callable[[bool], nn.Module]] = {
    "relu": lambda inplace: nn.ReLU(inplace=inplace),
    "leaky_relu": lambda inplace: nn.LeakyReLU(0.01, inplace=inplace),
    "silu": lambda inplace: nn.SiLU(inplace=inplace),
    "gelu": lambda inplace: nn.GELU(),
}

NORM_NAMES = tuple(_NORMS)
ACT_NAMES = tuple(_ACTS)


def _num_groups(channels: int, max_groups: int = 32) -> int:
    groups = min(max_groups, max(1, channels // 8))
    while channels % groups:
        groups -= 1
    return groups


def check_choice(kind: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise ``ValueError`` naming the bad value and the accepted ones."""
    if value not in choices:
        raise ValueError(f"unknown {kind} {value!r}; choose one of: {', '.join(choices)}")


def make_norm(name: str, channels: int) -> nn.Module:
    """A normalisation layer over ``channels`` feature maps: batch, group, instance or none."""
    check_choice("norm", name, NORM_NAMES)
    return _NORMS[name](channels)


def make_act(name: str, inplace: bool = True) -> nn.Module:
    """An activation layer: relu, leaky_relu, silu or gelu (in place where the op allows)."""
    check_choice("act", name, ACT_NAMES)
    return _ACTS[name](inplace)


class ConvNormAct(nn.Sequential):
    """``conv → norm → act``: the plain chain every stem and stage conv uses.

    Shapes: ``(N, in_channels, H, W) → (N, out_channels, H / stride, W / stride)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        norm: str = "batch",
        act: str = "relu",
    ) -> None:
        conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            # A bias before a normalisation layer is redundant: the norm's shift absorbs it.
            bias=norm == "none",
        )
        super().__init__(conv, make_norm(norm, out_channels), make_act(act))


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """An inference copy of ``model`` with each BatchNorm folded into the conv just before it.

    ``y = γ (W * x + b − μ) / σ + β`` is one convolution with weight ``γ W / σ`` and bias
    ``β + γ (b − μ) / σ``, so in eval mode the norm's separate pass over the feature map can go.
    Pairs are a ``Conv2d`` directly followed by a ``BatchNorm2d`` inside an ``nn.Sequential``
    (:class:`ConvNormAct`, projection shortcuts) and the pairs a module lists in its
    ``conv_norm_pairs()`` (post-activation :class:`~drunet.models.blocks.DRBlock`); folded norms
    become ``nn.Identity``. Norms that precede their conv (pre-activation) are left alone.

    The copy is in eval mode and is for inference only (the running statistics are baked in);
    ``model`` itself is not changed. Outputs agree with ``model.eval()`` to float rounding.
    """
    fused = copy.deepcopy(model).eval()
    for module in list(fused.modules()):
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            pairs = [
                (a, b)
                for a, b in zip(names, names[1:], strict=False)
                if isinstance(module._modules[a], nn.Conv2d)
                and isinstance(module._modules[b], nn.BatchNorm2d)
            ]
        else:
            pairs = getattr(module, "conv_norm_pairs", list)()
        for conv_name, norm_name in pairs:
            conv, norm = getattr(module, conv_name), getattr(module, norm_name)
            if not isinstance(norm, nn.BatchNorm2d) or norm.running_mean is None:
                continue  # GroupNorm / InstanceNorm depend on the input: nothing to fold
            folded = fuse_conv_bn_eval(conv, norm)
            if conv.weight.is_contiguous(memory_format=torch.channels_last):
                folded = folded.to(memory_format=torch.channels_last)  # keep an NHWC model NHWC
            setattr(module, conv_name, folded)
            setattr(module, norm_name, nn.Identity())
    return fused
