"""Every registered model through the shared tester, and the registry's own errors."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from drunet.errors import DrunetError
from drunet.models import DEFAULT_PRESET, PRESETS, DRUNet, SmpModel, create_model, model_names
from tests.models.model_tester import ModelTester


def preset(name: str, **overrides: Any) -> dict[str, Any]:
    return {**PRESETS[name], **overrides}


class TestDRUNet(ModelTester):
    name = "drunet"
    model_class = DRUNet
    kwargs = preset(DEFAULT_PRESET, init_features=8, depth=3)
    multiple = 8


class TestDRUNetPreactZeroPad(ModelTester):
    name = "drunet_ref"  # the class-default layout ("drunet" is the default preset)
    model_class = DRUNet
    kwargs = preset("drunet_ref", init_features=8, depth=2, preact=True, shortcut="zero_pad")
    in_channels = 1
    out_channels = 1
    multiple = 4


class TestDRUNetGroupNormSilu(ModelTester):
    name = "drunet"
    model_class = DRUNet
    kwargs = preset(
        DEFAULT_PRESET, init_features=8, depth=2, norm="group", act="silu", se_reduction=0
    )
    multiple = 4


# The presets, shrunk by overriding width and depth; their layout (one or two blocks per stage,
# no 3×3 conv after a block, NHWC) stays. "drunet_ref" is tested by TestDRUNetPreactZeroPad.
class TestDRUNetS(ModelTester):
    name = "drunet_s"
    model_class = DRUNet
    kwargs = preset("drunet_s", init_features=8, depth=3)
    multiple = 8

    @pytest.mark.integration
    def test_onnx_export_matches_pytorch_at_two_sizes(self) -> None:
        self.check_onnx_export()  # in the default suite (the others run it with -m slow)


class TestDRUNetS2(ModelTester):
    name = "drunet_s2"
    model_class = DRUNet
    kwargs = preset("drunet_s2", init_features=8, depth=3)
    in_channels = 2
    multiple = 16  # 2**depth × the stem's stride

    @pytest.mark.integration
    def test_onnx_export_matches_pytorch_at_two_sizes(self) -> None:
        self.check_onnx_export()  # the bilinear up-sampling exported, in the default suite


class TestDRUNetM(ModelTester):
    name = "drunet_m"
    model_class = DRUNet
    kwargs = preset("drunet_m", init_features=8, depth=2)
    in_channels = 1
    multiple = 4


class TestDRUNetL(ModelTester):
    name = "drunet_l"
    model_class = DRUNet
    kwargs = preset("drunet_l", init_features=4, depth=2)
    out_channels = 1
    multiple = 4


class TestUnetResnet34(ModelTester):
    name = "unet_resnet34"
    model_class = SmpModel
    kwargs = {}
    in_channels = 1

    @pytest.mark.integration
    def test_onnx_export_matches_pytorch_at_two_sizes(self) -> None:
        self.check_onnx_export()  # in the default suite (the others run it with -m slow)


class TestUnetResnet18(ModelTester):
    name = "unet_resnet34"
    model_class = SmpModel
    kwargs = {"encoder_name": "resnet18"}


class TestSmpFPN(ModelTester):
    name = "smp:FPN:resnet18"
    model_class = SmpModel
    kwargs = {"arch": "FPN", "encoder_name": "resnet18"}
    in_channels = 1
    out_channels = 3


class TestSmpUnetPlusPlusShallow(ModelTester):
    # encoder_depth 3: the encoder stages that never run are removed, so every parameter
    # receives a gradient (DDP refuses unused ones).
    name = "smp:UnetPlusPlus:resnet18"
    model_class = SmpModel
    kwargs = {"arch": "UnetPlusPlus", "encoder_name": "resnet18", "encoder_depth": 3}
    in_channels = 2
    multiple = 8


def test_every_registered_model_has_a_tester() -> None:
    tested = {cls.name for cls in ModelTester.__subclasses__()}
    assert tested >= set(model_names())
    assert any(name.startswith("smp:") for name in tested)


def test_registry_builds_the_named_classes() -> None:
    for name in ("drunet", *PRESETS):
        assert isinstance(create_model(name, init_features=8, depth=2), DRUNet)
    assert isinstance(create_model("unet_resnet34"), SmpModel)


def test_unknown_model_lists_choices() -> None:
    with pytest.raises(ValueError, match="unknown model 'resunet'.*drunet.*unet_resnet34"):
        create_model("resunet")


def test_unknown_keyword_is_named() -> None:
    with pytest.raises(ValueError, match="widht"):
        create_model("drunet", widht=3)


def test_unknown_smp_encoder_is_named() -> None:
    with pytest.raises(ValueError, match="resnet1000"):
        create_model("unet_resnet34", encoder_name="resnet1000")


def test_pretrained_names_fail_offline_with_a_fix(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # an empty cache
    with pytest.raises(DrunetError, match="not in the local Hugging Face cache.*never downloads"):
        create_model("unet_resnet34", encoder_weights="imagenet")
    with pytest.raises(DrunetError, match="no such file, and not a pretrained name"):
        create_model("unet_resnet34", encoder_weights=str(tmp_path / "missing.pt"))


@pytest.mark.parametrize("channels", [1, 4])
def test_encoder_weights_adapt_to_any_channel_count(tmp_path, channels: int) -> None:
    """A 3-channel encoder state dict (saved as a plain PyTorch file, read weights_only) loads
    into a 1- or 4-channel model: the stem as smp adapts it, everything else as saved."""
    donor = create_model("unet_resnet34", in_channels=3, encoder_name="resnet18")
    state = {k: v.clone() for k, v in donor.net.encoder.state_dict().items()}
    path = tmp_path / "encoder.pt"
    torch.save(state, path)
    model = create_model(
        "unet_resnet34", in_channels=channels, encoder_name="resnet18", encoder_weights=str(path)
    )
    loaded = model.net.encoder.state_dict()
    stem = state["conv1.weight"]  # (64, 3, 7, 7)
    repeated = stem[:, [0, 1, 2, 0]] * (3 / 4)
    expected = stem.sum(dim=1, keepdim=True) if channels == 1 else repeated
    torch.testing.assert_close(loaded["conv1.weight"], expected)
    for key, value in state.items():
        if key != "conv1.weight":
            assert torch.equal(loaded[key], value), key


def test_imagenet_from_the_local_cache_is_used(monkeypatch, tmp_path) -> None:
    from safetensors.torch import save_file

    from drunet.models import baseline

    donor = create_model("unet_resnet34", encoder_name="resnet18")
    cached = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in donor.net.encoder.state_dict().items()}, str(cached))
    monkeypatch.setattr(baseline, "_hf_cached", lambda repo, revision: cached)
    model = create_model("unet_resnet34", encoder_name="resnet18", encoder_weights="imagenet")
    assert torch.equal(model.net.encoder.conv1.weight, donor.net.encoder.conv1.weight)


def test_local_encoder_weights_file_is_loaded(tmp_path) -> None:
    from safetensors.torch import save_file

    donor = create_model("unet_resnet34", encoder_name="resnet18")
    path = tmp_path / "resnet18_encoder.safetensors"
    save_file({k: v.contiguous() for k, v in donor.net.encoder.state_dict().items()}, str(path))
    torch.manual_seed(99)
    model = create_model("unet_resnet34", encoder_name="resnet18", encoder_weights=str(path))
    for key, value in donor.net.encoder.state_dict().items():
        assert torch.equal(model.net.encoder.state_dict()[key], value), key
