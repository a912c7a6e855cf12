"""Presets: parameter counts from the architecture formula, state-dict keys, the NHWC flag, BN
fusion of pre-activation blocks (NHWC and fusion parity for every model: ``model_tester.py``)."""

from __future__ import annotations

import hashlib

import pytest
import torch
from torch import nn

from drunet.models import DEFAULT_PRESET, PRESETS, DRUNet, PreActDRBlock, fuse_conv_bn
from drunet.models.drunet import upgrade_state


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
    assert count(DRUNet(3, 1, **PRESETS[name])) == formula == parameters


# sha256 of the sorted "key:shape" lines of each preset's state dict (3 → 1 channels), taken
# from the code before blocks were split into DRBlock / PreActDRBlock (commit 215e2bf): weights
# files saved then must still load. Since DRUNet became encoder / decoder / head, its keys are
# hashed under the names they had before (drunet.models.drunet.upgrade_state maps them back).
BEFORE_SPLIT = {
    "encoder.stem.": "stem.",
    "encoder.stages.": "encoders.",
    "decoder.upsamples.": "upsamples.",
    "decoder.stages.": "decoders.",
    "decoder.refine.": "refine.",
}


def old_name(key: str) -> str:
    for new, old in BEFORE_SPLIT.items():
        if key.startswith(new):
            return old + key[len(new) :]
    return key


STATE_DICT_KEYS = {
    ("drunet_s", "projection", False): (246, "272a1cca02f6498c"),
    ("drunet_s", "projection", True): (214, "d1fc95686b92a2ba"),
    ("drunet_s", "zero_pad", False): (222, "f2defa904eb06d4b"),
    ("drunet_m", "projection", False): (422, "5d473c5cf730dd68"),
    ("drunet_m", "projection", True): (390, "3be0f507f18a313c"),
    ("drunet_l", "projection", False): (246, "ec354358b01223cf"),
    ("drunet_ref", "projection", False): (518, "8f36103c383846d2"),
    ("drunet_ref", "projection", True): (486, "0b8e0320939bed61"),
    ("drunet_ref", "zero_pad", False): (494, "acd6ecdc55901fe1"),
}


@pytest.mark.parametrize(("name", "shortcut", "preact"), list(STATE_DICT_KEYS))
def test_state_dict_keys_are_unchanged(name: str, shortcut: str, preact: bool) -> None:
    with torch.device("meta"):  # shapes only, nothing allocated
        model = DRUNet(3, 1, **{**PRESETS[name], "shortcut": shortcut, "preact": preact})
    state = model.state_dict()
    lines = "\n".join(sorted(f"{old_name(k)}:{tuple(v.shape)}" for k, v in state.items()))
    digest = hashlib.sha256(lines.encode()).hexdigest()[:16]
    assert (len(state), digest) == STATE_DICT_KEYS[(name, shortcut, preact)]
    assert upgrade_state(dict.fromkeys(map(old_name, state))).keys() == state.keys()


def test_reference_preset_is_the_reference_topology() -> None:
    ref, direct = DRUNet(3, 1, **PRESETS["drunet_ref"]), DRUNet(3, 1, 32)
    assert {k: v.shape for k, v in ref.state_dict().items()} == {
        k: v.shape for k, v in direct.state_dict().items()
    }
    assert not ref.channels_last and not direct.channels_last


def test_default_preset_is_a_preset() -> None:
    assert DEFAULT_PRESET in PRESETS


def test_channels_last_gives_the_same_logits_in_the_usual_layout() -> None:
    torch.manual_seed(0)
    nhwc = DRUNet(2, 3, 8, depth=2, channels_last=True).eval()
    nchw = DRUNet(2, 3, 8, depth=2).eval()
    nchw.load_state_dict(nhwc.state_dict())
    assert nhwc.encoder.stem[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 2, 30, 41)
    with torch.no_grad():
        out = nhwc(x)
        assert out.is_contiguous()  # NCHW, whatever the layout inside
        torch.testing.assert_close(out, nchw(x), atol=1e-5, rtol=1e-5)


def test_fusion_leaves_preactivation_and_group_norms_alone() -> None:
    preact = DRUNet(1, 1, 8, depth=1, preact=True)
    fused = fuse_conv_bn(preact)
    blocks = [m for m in fused.modules() if isinstance(m, PreActDRBlock)]
    assert blocks
    assert all(isinstance(b.bn1, nn.BatchNorm2d) for b in blocks)  # norm before its conv
    stem = fused.encoder.stem
    assert not any(isinstance(m, nn.BatchNorm2d) for m in stem.modules())  # stem is post
    group = fuse_conv_bn(DRUNet(1, 1, 8, depth=1, norm="group"))
    assert sum(isinstance(m, nn.GroupNorm) for m in group.modules()) > 0


def test_drunet_resolves_to_the_default_preset() -> None:
    from drunet.models.presets import resolve_preset
    from drunet.models.registry import check_name

    assert resolve_preset("drunet") == check_name("drunet") == DEFAULT_PRESET
    assert resolve_preset("drunet_ref") == check_name("drunet_ref") == "drunet_ref"
    assert resolve_preset("unet_resnet34") == check_name("unet_resnet34") == "unet_resnet34"
