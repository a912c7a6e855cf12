"""DRBlock and SqueezeExcite: identity, shortcuts, gate range."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from drunet.models import DRBlock, SqueezeExcite
from drunet.models.blocks import ZeroPadShortcut


@pytest.mark.parametrize("preact", [False, True])
def test_identity_exactly_when_residual_branch_is_zeroed(preact: bool) -> None:
    torch.manual_seed(0)
    block = DRBlock(16, 16, preact=preact).eval()
    block.zero_init_last()  # the residual branch now outputs exact zeros
    # Post-activation ends in ReLU(x + 0): identity on non-negative inputs, which is what the
    # previous ReLU produces. Pre-activation returns x + 0 for any x.
    x = torch.rand(2, 16, 9, 11) if not preact else torch.randn(2, 16, 9, 11)
    with torch.no_grad():
        assert torch.equal(block(x), x)


def test_nonzero_branch_changes_the_output() -> None:
    torch.manual_seed(0)
    block = DRBlock(16, 16).eval()
    x = torch.rand(1, 16, 8, 8)
    with torch.no_grad():
        assert not torch.allclose(block(x), x)


def test_shortcut_is_identity_when_shapes_match() -> None:
    block = DRBlock(32, 32)
    assert isinstance(block.shortcut, nn.Identity)


@pytest.mark.parametrize(("cin", "cout", "stride"), [(32, 64, 1), (32, 32, 2), (64, 32, 2)])
def test_projection_only_when_channels_or_stride_differ(cin: int, cout: int, stride: int) -> None:
    block = DRBlock(cin, cout, stride=stride)
    conv, norm = block.shortcut
    assert conv.kernel_size == (1, 1) and conv.stride == (stride, stride)
    assert (conv.in_channels, conv.out_channels) == (cin, cout)
    assert isinstance(norm, nn.BatchNorm2d)
    out = block(torch.randn(2, cin, 15, 16))  # the reference code crashed here when cin != cout
    assert out.shape == (2, cout, (15 + stride - 1) // stride, 16 // stride)


def test_zero_pad_shortcut_values() -> None:
    block = DRBlock(4, 8, stride=2, shortcut="zero_pad")
    assert isinstance(block.shortcut, ZeroPadShortcut)
    assert sum(p.numel() for p in block.shortcut.parameters()) == 0
    x = torch.arange(4 * 5 * 5, dtype=torch.float32).reshape(1, 4, 5, 5)
    y = block.shortcut(x)
    assert y.shape == (1, 8, 3, 3)
    assert torch.equal(y[:, :4], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, 4:]) == 0


def test_zero_pad_cannot_reduce_channels() -> None:
    with pytest.raises(ValueError, match="8 → 4.*projection"):
        DRBlock(8, 4, shortcut="zero_pad")


def test_preact_projection_has_no_norm() -> None:
    block = DRBlock(8, 16, preact=True)
    assert isinstance(block.shortcut, nn.Conv2d)


def test_mid_channels_and_bottleneck_ratio() -> None:
    assert DRBlock(16, 32, bottleneck_ratio=0.25).conv2.in_channels == 8
    assert DRBlock(16, 32, mid_channels=12).conv1.out_channels == 12


def test_se_gate_is_strictly_between_zero_and_one() -> None:
    torch.manual_seed(0)
    se = SqueezeExcite(32, reduction=4)
    gate = se.gate(torch.randn(4, 32, 7, 7) * 3)
    assert gate.shape == (4, 32, 1, 1)
    assert (gate > 0).all() and (gate < 1).all()
    # forward multiplies by exactly that gate
    x = torch.randn(2, 32, 5, 5)
    assert torch.allclose(se(x), x * se.gate(x))


def test_se_hidden_width_has_a_floor() -> None:
    se = SqueezeExcite(8, reduction=16, min_channels=4)
    assert se.conv_reduce.out_channels == 4  # 8 // 16 = 0 would leave no units
    assert SqueezeExcite(256, reduction=16).conv_reduce.out_channels == 16


def test_se_can_be_disabled() -> None:
    assert DRBlock(8, 8, se_reduction=0).se is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"norm": "layer"}, "unknown norm 'layer'"),
        ({"act": "swish"}, "unknown act 'swish'"),
        ({"shortcut": "conv"}, "unknown shortcut 'conv'"),
        ({"bottleneck_ratio": 0}, "bottleneck_ratio"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DRBlock(8, 8, **kwargs)
