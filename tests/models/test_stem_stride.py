"""``stem_stride=2`` (the ``drunet_s2`` preset): the U-Net runs at half resolution and one
full-resolution conv refines its up-sampled output beside the image."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from drunet.config import ExperimentConfig
from drunet.models import PRESETS, DRUNet
from tests.models.test_presets import count, expected_parameters


def test_parameter_count_is_drunet_s_plus_the_refine_conv() -> None:
    # The stride changes no kernel shape; the refine conv is 3×3 from 16 + 3 channels to 16
    # (no bias) and its BatchNorm (weight and bias): 9·19·16 + 2·16 = 2768.
    base = expected_parameters(3, 1, 16, 4, 1, False)
    assert count(DRUNet(3, 1, **PRESETS["drunet_s2"])) == base + 9 * 19 * 16 + 2 * 16
    assert base + 2768 == 1_464_153


@pytest.mark.parametrize(("stride", "level0"), [(1, 64), (2, 32)])
def test_every_level_runs_at_the_stem_stride(stride: int, level0: int) -> None:
    model = DRUNet(1, 1, 4, depth=2, blocks_per_stage=1, stem_stride=stride).eval()
    seen: dict[str, tuple[int, ...]] = {}
    model.encoder.stages[0].register_forward_hook(lambda m, i, o: seen.update(enc0=i[0].shape))
    model.decoder.stages[0].register_forward_hook(lambda m, i, o: seen.update(dec0=o.shape))
    with torch.no_grad():
        out = model(torch.randn(1, 1, 64, 64))
    assert seen["enc0"][-2:] == (level0 // 2, level0 // 2)  # after the first 2×2 pool
    assert seen["dec0"][-2:] == (level0, level0)
    assert out.shape == (1, 1, 64, 64)
    assert model.multiple == 4 * stride
    assert (model.decoder.refine is not None) == (stride == 2)


def test_the_refine_conv_sees_the_upsampled_features_and_the_image() -> None:
    torch.manual_seed(0)
    model = DRUNet(2, 1, 4, depth=1, blocks_per_stage=1, se_reduction=0, stem_stride=2).eval()
    x = torch.randn(1, 2, 8, 8)
    seen: dict[str, torch.Tensor] = {}
    model.decoder.stages[0].register_forward_hook(lambda m, i, o: seen.update(dec0=o))
    model.decoder.refine.register_forward_hook(lambda m, i, o: seen.update(refine_in=i[0]))
    with torch.no_grad():
        model(x)
    up = F.interpolate(seen["dec0"], size=(8, 8), mode="bilinear", align_corners=False)
    torch.testing.assert_close(seen["refine_in"], torch.cat([up, x], dim=1))


def test_a_stride_other_than_1_or_2_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ValidationError, match=r"model\.params\.stem_stride"):
        ExperimentConfig.model_validate(
            {"model": {"name": "drunet_s", "params": {"stem_stride": 3}}}
        )
    model = {"in_channels": 1, "num_classes": 2, "params": {"stem_stride": 2}}
    config = ExperimentConfig.model_validate({"model": model})
    assert config.model.spec().kwargs["stem_stride"] == 2
