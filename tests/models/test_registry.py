"""Every registered model through the shared tester, and the registry's own errors."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from drunet.models import DEFAULT_PRESET, PRESETS, DRUNet, SmpModel, create_model, model_names
from drunet.models.baseline import SmpParams
from drunet.models.family import ModelFamily
from drunet.models.presets import DRUNetParams
from drunet.models.registry import FAMILIES
from tests.models.model_tester import ModelTester


def preset(name: str, **overrides: Any) -> dict[str, Any]:
    return {**PRESETS[name], **overrides}


class TestDRUNet(ModelTester):
    name = "drunet"
    kwargs = preset(DEFAULT_PRESET, init_features=8, depth=3)
    multiple = 8


class TestDRUNetPreactZeroPad(ModelTester):
    name = "drunet_ref"  # the class-default layout ("drunet" is the default preset)
    kwargs = preset("drunet_ref", init_features=8, depth=2, preact=True, shortcut="zero_pad")
    in_channels = 1
    out_channels = 1
    multiple = 4


class TestDRUNetGroupNormSilu(ModelTester):
    name = "drunet"
    kwargs = preset(
        DEFAULT_PRESET, init_features=8, depth=2, norm="group", act="silu", se_reduction=0
    )
    multiple = 4


# The presets, shrunk by overriding width and depth; their layout (one or two blocks per stage,
# no 3×3 conv after a block, NHWC) stays. "drunet_ref" is tested by TestDRUNetPreactZeroPad.
class TestDRUNetS(ModelTester):
    name = "drunet_s"
    kwargs = preset("drunet_s", init_features=8, depth=3)
    multiple = 8

    @pytest.mark.integration
    def test_onnx_export_matches_pytorch_at_two_sizes(self) -> None:
        self.check_onnx_export()  # in the default suite (the others run it with -m slow)


class TestDRUNetS2(ModelTester):
    name = "drunet_s2"
    kwargs = preset("drunet_s2", init_features=8, depth=3)
    in_channels = 2
    multiple = 16  # 2**depth × the stem's stride

    @pytest.mark.integration
    def test_onnx_export_matches_pytorch_at_two_sizes(self) -> None:
        self.check_onnx_export()  # the bilinear up-sampling exported, in the default suite


class TestDRUNetM(ModelTester):
    name = "drunet_m"
    kwargs = preset("drunet_m", init_features=8, depth=2)
    in_channels = 1
    multiple = 4


class TestDRUNetL(ModelTester):
    name = "drunet_l"
    kwargs = preset("drunet_l", init_features=4, depth=2)
    out_channels = 1
    multiple = 4


class TestUnetResnet34(ModelTester):
    name = "unet_resnet34"
    kwargs = {}
    in_channels = 1

    @pytest.mark.integration
    def test_onnx_export_matches_pytorch_at_two_sizes(self) -> None:
        self.check_onnx_export()  # in the default suite (the others run it with -m slow)


class TestUnetResnet18(ModelTester):
    name = "unet_resnet34"
    kwargs = {"encoder_name": "resnet18"}


class TestSmpFPN(ModelTester):
    name = "smp:FPN:resnet18"
    in_channels = 1
    out_channels = 3


class TestSmpUnetPlusPlusShallow(ModelTester):
    # encoder_depth 3: the encoder stages that never run are removed, so every parameter
    # receives a gradient (DDP refuses unused ones).
    name = "smp:UnetPlusPlus:resnet18"
    kwargs = {"encoder_depth": 3}
    in_channels = 2
    multiple = 8


# Any registered name without a tester above gets one with its default arguments: a new family
# is run through the shared tester as soon as it is registered.
for _name in sorted(set(model_names()) - {c.name for c in ModelTester.__subclasses__()}):
    _tester = type(f"TestRegistered_{_name}", (ModelTester,), {"name": _name})
    globals()[_tester.__name__] = _tester


def test_every_family_and_name_has_a_tester() -> None:
    tested = {cls.name for cls in ModelTester.__subclasses__()}
    assert tested >= set(model_names())
    for family in FAMILIES:  # the fixed names, and the names a pattern answers
        assert any(family.resolve(name) for name in tested), family.tag


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.tag)
def test_params_fields_are_constructor_arguments(family: ModelFamily) -> None:
    arguments = set(inspect.signature(family.model_class).parameters) - {
        "in_channels",
        "out_channels",
    }
    fields = set(family.params.model_fields)
    assert fields <= arguments  # every params field reaches the constructor


def test_drunet_and_smp_arguments_match_their_params() -> None:
    """DRUNet's signature, ``hparams`` and params class list the same arguments; smp's
    architecture (and, for smp:ARCH:ENCODER, the encoder) is named by the model name."""
    drunet = set(inspect.signature(DRUNet).parameters) - {"in_channels", "out_channels"}
    assert set(DRUNetParams.model_fields) == drunet == set(DRUNet(1, 1, 4, depth=1).hparams)
    smp = set(inspect.signature(SmpModel).parameters) - {"in_channels", "out_channels"}
    assert smp - set(SmpParams.model_fields) == {"arch"}


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
