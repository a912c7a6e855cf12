"""Presets (parameter counts from the architecture formula), the NHWC layout, BN fusion."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from drunet.models import (
    DEFAULT_PRESET,
    PRESETS,
    DRBlock,
    DRUNet,
    create_model,
    fuse_conv_bn,
)
from drunet.models.presets import preset_kwargs


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def expected_parameters(
    in_channels: int,
    out_channels: int,
    init_features: int,
    depth: int,
    blocks_per_stage: int,
    conv_after_block: bool,
    se_reduction: int = 16,
) -> int:
    """DRUNet's parameter count written out from its description (BatchNorm, projection
    shortcuts, bottleneck ratio 1), independently of the module code."""
    bn = 2  # weight and bias per channel

    def conv_norm(cin: int, cout: int) -> int:  # 3×3 conv without bias + BN
        return 9 * cin * cout + bn * cout

    def block(cin: int, c: int) -> int:
        params = cin * c + 9 * c * c + c * c + 3 * bn * c  # 1×1, 3×3, 1×1 and their norms
        if se_reduction:
            hidden = max(8, c // se_reduction)
            params += 2 * c * hidden + hidden + c  # two 1×1 convs with bias
        if cin != c:
            params += cin * c + bn * c  # projection + norm
        return params

    def stage(cin: int, c: int) -> int:
        blocks = block(cin, c) + (blocks_per_stage - 1) * block(c, c)
        return blocks + conv_after_block * blocks_per_stage * conv_norm(c, c)

    w = [init_features * 2**k for k in range(depth + 1)]
    total = conv_norm(in_channels, w[0]) + conv_norm(w[0], w[0])  # stem
    for k in range(depth):
        total += stage(w[k], w[k + 1])  # encoder k (the last one is the bottleneck)
        total += 4 * w[k + 1] * w[k] + w[k]  # 2×2 transposed conv with bias
        total += stage(2 * w[k], w[k])  # decoder k after concatenation
    return total + w[0] * out_channels + out_channels  # 1×1 head with bias


def test_the_formula_reproduces_the_reference_count() -> None:
    assert expected_parameters(3, 1, 32, 4, 2, True) == 18_516_785


# Counts at 3 → 1 channels, also pinned so a change to any preset shows up in review.
@pytest.mark.parametrize(
    ("name", "parameters"),
    [
        ("drunet_s", 1_461_385),
        ("drunet_m", 2_678_913),
        ("drunet_l", 5_824_233),
        ("drunet_ref", 18_516_785),
    ],
)
def test_preset_parameter_counts(name: str, parameters: int) -> None:
    kwargs = PRESETS[name]
    formula = expected_parameters(
        3,
        1,
        kwargs["init_features"],
        kwargs["depth"],
        kwargs["blocks_per_stage"],
        kwargs["conv_after_block"],
    )
    assert count(create_model(name, in_channels=3, out_channels=1)) == formula == parameters


def test_reference_preset_is_the_reference_topology() -> None:
    ref, direct = create_model("drunet_ref", 3, 1), DRUNet(3, 1, 32)
    assert {k: v.shape for k, v in ref.state_dict().items()} == {
        k: v.shape for k, v in direct.state_dict().items()
    }
    assert not ref.channels_last and not direct.channels_last


def test_drunet_is_the_default_preset() -> None:
    assert DEFAULT_PRESET in PRESETS
    model, preset = create_model("drunet", 3, 1), create_model(DEFAULT_PRESET, 3, 1)
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in preset.state_dict().items()
    }
    assert model.channels_last == PRESETS[DEFAULT_PRESET].get("channels_last", False)


def test_arguments_override_the_preset_and_keep_the_rest() -> None:
    model = create_model("drunet_m", 1, 1, init_features=8, depth=2)
    assert model.stem[0][0].out_channels == 8 and len(model.encoders) == 2
    assert all(len(stage) == PRESETS["drunet_m"]["blocks_per_stage"] for stage in model.encoders)
    assert PRESETS["drunet_m"]["init_features"] != 8  # the preset itself is unchanged


def test_unknown_preset_lists_the_names() -> None:
    with pytest.raises(ValueError, match="drunet_xl.*drunet_s"):
        preset_kwargs("drunet_xl")


def test_channels_last_gives_the_same_logits_in_the_usual_layout() -> None:
    torch.manual_seed(0)
    nhwc = DRUNet(2, 3, 8, depth=2, channels_last=True).eval()
    nchw = DRUNet(2, 3, 8, depth=2).eval()
    nchw.load_state_dict(nhwc.state_dict())
    assert nhwc.stem[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 2, 30, 41)
    with torch.no_grad():
        out = nhwc(x)
        assert out.is_contiguous()  # NCHW, whatever the layout inside
        torch.testing.assert_close(out, nchw(x), atol=1e-5, rtol=1e-5)


def randomise_norms(model: nn.Module) -> None:
    """Give every BatchNorm non-trivial statistics and affine parameters, as training would."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            c = module.num_features
            module.running_mean.copy_(torch.randn(c, generator=generator) * 0.5)
            module.running_var.copy_(torch.rand(c, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(c, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(c, generator=generator) * 0.2)


@pytest.mark.parametrize("name", ["drunet_s", "drunet_ref"])
def test_fused_model_matches_the_unfused_one(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, 3, 2, init_features=8, depth=2)
    randomise_norms(model)
    fused = fuse_conv_bn(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) > 0  # original untouched
    assert model.training and not fused.training
    model.eval()
    x = torch.randn(2, 3, 40, 37)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), model(x), atol=1e-5, rtol=1e-5)


def test_fusion_leaves_preactivation_and_group_norms_alone() -> None:
    preact = DRUNet(1, 1, 8, depth=1, preact=True)
    fused = fuse_conv_bn(preact)
    blocks = [m for m in fused.modules() if isinstance(m, DRBlock)]
    assert all(isinstance(b.bn1, nn.BatchNorm2d) for b in blocks)  # norm before its conv
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.stem.modules())  # stem is post
    group = fuse_conv_bn(DRUNet(1, 1, 8, depth=1, norm="group"))
    assert sum(isinstance(m, nn.GroupNorm) for m in group.modules()) > 0


def test_block_output_is_shortcut_plus_gated_branch() -> None:
    # Known answer for the fused SE step: act(bn3(conv3(…)) · gate + shortcut).
    torch.manual_seed(0)
    block = DRBlock(8, 16).eval()
    x = torch.randn(2, 8, 9, 10)
    with torch.no_grad():
        branch = block.bn3(
            block.conv3(block.act2(block.bn2(block.conv2(block.act1(block.bn1(block.conv1(x)))))))
        )
        expected = torch.relu(branch * block.se.gate(branch) + block.shortcut(x))
        torch.testing.assert_close(block(x), expected, atol=1e-6, rtol=1e-6)


def test_drunet_resolves_to_the_default_preset() -> None:
    from drunet.models.presets import resolve_preset

    assert resolve_preset("drunet") == DEFAULT_PRESET
    assert resolve_preset("drunet_ref") == "drunet_ref"
    assert resolve_preset("unet_resnet34") == "unet_resnet34"
