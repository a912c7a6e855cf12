"""DRBlock, PreActDRBlock and SqueezeExcite: identity, shortcuts, gate range, gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from drunet.models import BlockArgs, DRBlock, PreActDRBlock, SqueezeExcite
from drunet.models.blocks import ZeroPadShortcut

PREACT = BlockArgs(preact=True)


def test_identity_exactly_when_residual_branch_is_zeroed() -> None:
    torch.manual_seed(0)
    block = DRBlock(16, 16).eval()
    block.zero_init_last()  # the residual branch now outputs exact zeros
    # Post-activation ends in ReLU(x + 0): identity on non-negative inputs, which is what the
    # previous ReLU produces.
    x = torch.rand(2, 16, 9, 11)
    with torch.no_grad():
        assert torch.equal(block(x), x)


def test_nonzero_branch_changes_the_output() -> None:
    torch.manual_seed(0)
    block = DRBlock(16, 16).eval()
    x = torch.rand(1, 16, 8, 8)
    with torch.no_grad():
        assert not torch.allclose(block(x), x)


def test_block_output_is_shortcut_plus_gated_branch() -> None:
    # Known answer: act(se(bn3(conv3(…))) + shortcut), SE written out from its parts.
    torch.manual_seed(0)
    block = DRBlock(8, 16).eval()
    x = torch.randn(2, 8, 9, 10)
    with torch.no_grad():
        branch = block.bn3(
            block.conv3(block.act2(block.bn2(block.conv2(block.act1(block.bn1(block.conv1(x)))))))
        )
        se = block.se
        gate = torch.sigmoid(se.conv_expand(torch.relu(se.conv_reduce(branch.mean((2, 3), True)))))
        expected = torch.relu(branch * gate + block.shortcut(x))
        torch.testing.assert_close(block(x), expected, atol=1e-6, rtol=1e-6)


def test_shortcut_is_identity_when_shapes_match() -> None:
    assert isinstance(DRBlock(32, 32).shortcut, nn.Identity)
    assert isinstance(PreActDRBlock(32, 32).shortcut, nn.Identity)


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
    block = DRBlock(4, 8, BlockArgs(shortcut="zero_pad"), stride=2)
    assert isinstance(block.shortcut, ZeroPadShortcut)
    assert sum(p.numel() for p in block.shortcut.parameters()) == 0
    x = torch.arange(4 * 5 * 5, dtype=torch.float32).reshape(1, 4, 5, 5)
    y = block.shortcut(x)
    assert y.shape == (1, 8, 3, 3)
    assert torch.equal(y[:, :4], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, 4:]) == 0


def test_zero_pad_cannot_reduce_channels() -> None:
    with pytest.raises(ValueError, match="8 → 4.*projection"):
        DRBlock(8, 4, BlockArgs(shortcut="zero_pad"))


def test_bottleneck_ratio_sets_the_inner_width() -> None:
    assert DRBlock(16, 32, BlockArgs(bottleneck_ratio=0.25)).conv2.in_channels == 8
    assert PreActDRBlock(16, 32, BlockArgs(bottleneck_ratio=0.5)).conv2.in_channels == 16


# PreActDRBlock (ResNet v2 ordering)


@pytest.mark.parametrize(
    ("cin", "cout", "stride", "shortcut"),
    [
        (16, 16, 1, "projection"),
        (8, 16, 1, "projection"),
        (8, 16, 2, "zero_pad"),
        (16, 8, 2, "projection"),
    ],
)
def test_preact_block_shape_and_gradients(cin: int, cout: int, stride: int, shortcut: str) -> None:
    torch.manual_seed(0)
    block = PreActDRBlock(cin, cout, BlockArgs(shortcut=shortcut, se_reduction=4), stride=stride)
    x = torch.randn(2, cin, 15, 16, requires_grad=True)
    out = block(x)
    assert out.shape == (2, cout, (15 + stride - 1) // stride, 16 // stride)
    (out * torch.randn_like(out)).sum().backward()
    missing = [n for n, p in block.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing, f"parameters without a gradient: {missing}"
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize(("cin", "cout", "stride"), [(16, 16, 1), (8, 16, 2)])
def test_preact_zero_init_last_makes_the_block_its_shortcut(
    cin: int, cout: int, stride: int
) -> None:
    torch.manual_seed(0)
    block = PreActDRBlock(cin, cout, stride=stride).eval()
    block.zero_init_last()
    x = torch.randn(2, cin, 9, 11)  # any sign: nothing follows the addition
    with torch.no_grad():
        # The identity takes the raw input, a projection the pre-activated one.
        identity = cin == cout and stride == 1
        expected = x if identity else block.shortcut(block.act1(block.bn1(x)))
        assert torch.equal(block(x), expected)


def test_preact_norm_precedes_each_conv_and_projection_has_no_norm() -> None:
    block = PreActDRBlock(8, 16, BlockArgs(bottleneck_ratio=0.5))
    assert block.bn1.num_features == 8  # the block's input
    assert block.bn2.num_features == block.bn3.num_features == 8  # the bottleneck width
    assert isinstance(block.shortcut, nn.Conv2d)
    assert not hasattr(block, "conv_norm_pairs")  # nothing for fuse_conv_bn to fold


def test_preact_does_not_modify_its_input_without_norm() -> None:
    block = PreActDRBlock(8, 8, BlockArgs(norm="none"))
    x = torch.randn(1, 8, 6, 6)
    before = x.clone()
    block(x)
    assert torch.equal(x, before)


# SqueezeExcite


def test_se_gate_is_strictly_between_zero_and_one_and_per_channel() -> None:
    torch.manual_seed(0)
    se = SqueezeExcite(32, reduction=4)
    x = torch.rand(4, 32, 7, 7) * 3 + 0.5  # positive, so se(x) / x is the gate
    gate = se(x) / x
    assert (gate > 0).all() and (gate < 1).all()
    torch.testing.assert_close(gate, gate[..., :1, :1].expand_as(gate))  # constant over H, W


def test_se_hidden_width_has_a_floor() -> None:
    se = SqueezeExcite(8, reduction=16, min_channels=4)
    assert se.conv_reduce.out_channels == 4  # 8 // 16 = 0 would leave no units
    assert SqueezeExcite(256, reduction=16).conv_reduce.out_channels == 16


def test_se_can_be_disabled() -> None:
    assert isinstance(DRBlock(8, 8, BlockArgs(se_reduction=0)).se, nn.Identity)
    assert isinstance(PreActDRBlock(8, 8, BlockArgs(se_reduction=0)).se, nn.Identity)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"norm": "layer"}, "unknown norm 'layer'"),
        ({"act": "swish"}, "unknown act 'swish'"),
        ({"shortcut": "conv"}, "unknown shortcut 'conv'"),
        ({"bottleneck_ratio": 0}, "bottleneck_ratio must be > 0, got 0"),
        ({"se_reduction": -1}, "se_reduction must be >= 0.*-1"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BlockArgs(**kwargs)


def test_bad_channels_are_named() -> None:
    with pytest.raises(ValueError, match="out_channels=0"):
        PreActDRBlock(8, 0)
