"""DRUNet's reference topology, parameter count and input handling."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from drunet import DRBlock, DRUNet
from drunet.models import PreActDRBlock, crop_to, pad_to_multiple
from drunet.models.drunet import MAX_DEPTH, MAX_INIT_FEATURES
from drunet.models.layers import ConvNormAct


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_reference_parameter_count_matches_docstring() -> None:
    model = DRUNet(3, 1, 32)
    assert count(model) == 18_516_785
    assert "18,516,785" in DRUNet.__doc__


def test_reference_topology() -> None:
    model = DRUNet(3, 1, 32)
    # Encoder 1: two 3×3 convs (conv, norm, act each).
    assert [type(m) for m in model.encoder.stem] == [ConvNormAct, ConvNormAct]
    assert all(m[0].kernel_size == (3, 3) for m in model.encoder.stem)
    # Encoders 2–4, bottleneck and decoders 4–1: [DRBlock, 3×3 conv, DRBlock, 3×3 conv].
    for stage in [*model.encoder.stages, *model.decoder.stages]:
        assert [type(m) for m in stage] == [DRBlock, ConvNormAct, DRBlock, ConvNormAct]
    assert len(model.encoder.stages) == 4  # four down-samplings
    widths = [stage[0].conv3.out_channels for stage in model.encoder.stages]
    assert [model.encoder.stem[0][0].out_channels, *widths] == [32, 64, 128, 256, 512]
    assert [up.out_channels for up in model.decoder.upsamples] == [32, 64, 128, 256]
    assert model.head.out_channels == 1 and model.head.kernel_size == (1, 1)


def test_parameter_count_formula_for_a_small_variant() -> None:
    # Hand count for DRUNet(1, 1, 4, depth=1, blocks_per_stage=1, conv_after_block=False,
    # se_reduction=0): stem conv 1→4 (36) + BN (8) + conv 4→4 (144) + BN (8) = 196;
    # encoder DRBlock 4→8: conv1 4·8=32, bn 16, conv2 8·8·9=576, bn 16, conv3 64, bn 16,
    # projection 4·8=32 + bn 16 → 768; up ConvTranspose 8→4 2×2: 128 + 4 = 132;
    # decoder DRBlock 8→4: conv1 32, bn 8, conv2 144, bn 8, conv3 16, bn 8, proj 32 + bn 8 → 256;
    # head 4→1 + bias = 5. Total 196 + 768 + 132 + 256 + 5 = 1357.
    model = DRUNet(1, 1, 4, depth=1, blocks_per_stage=1, conv_after_block=False, se_reduction=0)
    assert count(model) == 1357


def test_wrong_channels_message() -> None:
    with pytest.raises(ValueError, match="expected 3 channels, received 1"):
        DRUNet(3, 1, 8, depth=2)(torch.zeros(1, 1, 32, 32))


def test_non_4d_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="3-D tensor"):
        DRUNet(3, 1, 8, depth=2)(torch.zeros(3, 32, 32))


def test_padding_does_not_leak_into_the_crop() -> None:
    # The output at the top-left must not depend on how much padding the bottom-right needed:
    # a 32×32 input and the same input extended to 33×33 agree away from the seam.
    torch.manual_seed(0)
    model = DRUNet(1, 1, 8, depth=2).eval()
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        full = model(x)
        padded = model(torch.nn.functional.pad(x, (0, 1, 0, 1), mode="replicate"))
    assert padded.shape[-2:] == (33, 33)
    assert torch.allclose(full[..., :8, :8], padded[..., :8, :8], atol=1e-5)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"depth": 0}, "depth must be between 1 and 8, got 0"),
        ({"depth": MAX_DEPTH + 1}, f"depth must be between 1 and 8, got {MAX_DEPTH + 1}"),
        ({"init_features": 0}, "init_features must be between 1 and 1024, got 0"),
        ({"init_features": 16000}, "init_features must be between 1 and 1024, got 16000"),
        ({"blocks_per_stage": 0}, "blocks_per_stage must be >= 1, got 0"),
        ({"out_channels": 0}, "out_channels must be >= 1, got 0"),
        ({"norm": "layer"}, "unknown norm 'layer'"),
        ({"shortcut": "conv"}, "unknown shortcut 'conv'"),
        ({"se_reduction": -2}, "se_reduction must be >= 0.*-2"),
        ({"stem_stride": 4}, "stem_stride must be 1 or 2, got 4"),
    ],
)
def test_bad_arguments_name_the_value(bad: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DRUNet(**{"init_features": 8, **bad})


def test_upper_bounds_are_accepted() -> None:
    with torch.device("meta"):  # the largest allowed sizes build (shapes only, no memory)
        DRUNet(1, 1, MAX_INIT_FEATURES, depth=1, blocks_per_stage=1)
        DRUNet(1, 1, 1, depth=MAX_DEPTH, blocks_per_stage=1)


def test_hparams_hold_every_argument_but_the_channels() -> None:
    kwargs = {
        "init_features": 4,
        "depth": 2,
        "blocks_per_stage": 1,
        "conv_after_block": False,
        "bottleneck_ratio": 0.5,
        "se_reduction": 4,
        "shortcut": "zero_pad",
        "preact": True,
        "norm": "group",
        "act": "silu",
        "channels_last": True,
        "stem_stride": 2,
    }
    model = DRUNet(2, 3, **kwargs)
    assert model.hparams == kwargs
    assert (model.in_channels, model.out_channels) == (2, 3)
    assert DRUNet().hparams["init_features"] == 32  # defaults are recorded too


@pytest.mark.parametrize("preact", [False, True])
def test_zero_init_last_makes_every_block_its_shortcut(preact: bool) -> None:
    model = DRUNet(1, 1, 8, depth=2, preact=preact)
    model.zero_init_last()
    blocks = [m for m in model.modules() if isinstance(m, DRBlock | PreActDRBlock)]
    assert blocks and all(isinstance(b, PreActDRBlock if preact else DRBlock) for b in blocks)
    for block in blocks:
        last = block.conv3.weight if preact else block.bn3.weight
        assert torch.count_nonzero(last) == 0


def test_pad_to_multiple_replicates_the_bottom_and_right_border() -> None:
    x = torch.arange(6.0).reshape(1, 1, 2, 3)  # [[0, 1, 2], [3, 4, 5]]
    padded, size = pad_to_multiple(x, 4)
    assert size == (2, 3)
    expected = torch.tensor([[0, 1, 2, 2], [3, 4, 5, 5], [3, 4, 5, 5], [3, 4, 5, 5]])
    assert torch.equal(padded[0, 0], expected.float())
    assert torch.equal(crop_to(padded, size), x)
    same, size = pad_to_multiple(torch.ones(2, 3, 8, 16), 8)  # already a multiple: unchanged
    assert same.shape == (2, 3, 8, 16) and size == (8, 16)
    with pytest.raises(ValueError, match="multiple must be >= 1, got 0"):
        pad_to_multiple(x, 0)
