"""Starting from other weights: matching tensors load, the stem adapts, a new head stays fresh."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from drunet.checkpoint import build_model, save_config_and_weights
from drunet.config import ExperimentConfig, config_from_dict
from drunet.errors import DrunetError
from drunet.weights import adapt_input_channels, init_from
from tests.conftest import TINY_PARAMS


def cfg(in_channels: int = 3, num_classes: int = 2, **params: object) -> ExperimentConfig:
    params = {**TINY_PARAMS, **params}
    model = {"in_channels": in_channels, "num_classes": num_classes, "params": params}
    return config_from_dict({"model": model})


def saved(tmp_path: Path, config: ExperimentConfig, seed: int = 0) -> tuple[Path, dict]:
    torch.manual_seed(seed)
    model = build_model(config)
    save_config_and_weights(tmp_path, "best.safetensors", model, config)
    return tmp_path, model.state_dict()


def test_adapting_to_one_channel_sums_the_kernels() -> None:
    weight = torch.arange(2 * 3 * 1 * 1, dtype=torch.float32).view(2, 3, 1, 1)
    adapted = adapt_input_channels(weight, 1)
    assert adapted.flatten().tolist() == [0 + 1 + 2, 3 + 4 + 5]
    # A grey image through the adapted conv = the RGB image with three equal channels.
    grey = torch.rand(1, 1, 4, 4)
    torch.testing.assert_close(
        torch.nn.functional.conv2d(grey, adapted),
        torch.nn.functional.conv2d(grey.expand(1, 3, 4, 4), weight),
    )


def test_adapting_to_more_channels_repeats_and_rescales() -> None:
    weight = torch.tensor([[1.0, 2.0, 3.0]]).view(1, 3, 1, 1)
    adapted = adapt_input_channels(weight, 4)
    assert adapted.flatten().tolist() == pytest.approx([0.75, 1.5, 2.25, 0.75])


def test_same_architecture_loads_everything(tmp_path: Path) -> None:
    source, state = saved(tmp_path, cfg())
    model = build_model(cfg())
    report = init_from(model, source)
    assert report.adapted == [] and report.reinitialised == []
    assert len(report.loaded) == len(state)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[key], atol=0, rtol=0)


def test_other_classes_and_channels_adapt_the_stem_and_refresh_the_head(tmp_path: Path) -> None:
    source, state = saved(tmp_path, cfg(in_channels=3, num_classes=2))
    torch.manual_seed(5)
    model = build_model(cfg(in_channels=1, num_classes=4))
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    report = init_from(model, source)
    after = model.state_dict()
    assert report.reinitialised == ["head.weight", "head.bias"]
    stem, refine = (
        "encoder.stem.0.0.weight",
        "decoder.refine.0.weight",
    )  # the default reads the image twice
    assert report.adapted == [stem, refine]
    torch.testing.assert_close(after[stem], state[stem].sum(1, keepdim=True))
    # The refine conv reads the up-sampled features, then the image: only the image's three
    # input channels are summed into one; the feature channels load as saved.
    features = state[refine].shape[1] - 3
    expected = torch.cat([state[refine][:, :features], state[refine][:, features:].sum(1, True)], 1)
    torch.testing.assert_close(after[refine], expected)
    for key in report.reinitialised:
        torch.testing.assert_close(after[key], fresh[key], atol=0, rtol=0)
    for key in report.loaded:
        torch.testing.assert_close(after[key], state[key], atol=0, rtol=0)
    assert "loaded" in report.summary() and "head.weight" in report.summary()


def test_a_foreign_family_fits_nothing(tmp_path: Path) -> None:
    source, _ = saved(tmp_path, cfg())
    other = config_from_dict(
        {
            "model": {
                "name": "unet_resnet34",
                "in_channels": 3,
                "num_classes": 2,
                "params": {"encoder_name": "resnet18", "encoder_depth": 3},
            }
        }
    )
    with pytest.raises(DrunetError, match="none of its tensors fit"):
        init_from(build_model(other), source)
