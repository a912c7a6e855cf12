"""DRUNet as encoder → feature list → decoder → head, and weights saved before that split.

``data/drunet_before_split.safetensors`` was written by the DRUNet of commit eb5b171 (one class,
parameters ``stem.…``, ``encoders.…``, ``upsamples.…``, ``decoders.…``, ``refine.…``, ``head.…``):
for two tiny networks, their state dict (BatchNorm statistics randomised), an input and the
logits that code returned for it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save

from drunet.checkpoint import CONFIG_KEY, config_for, load_model
from drunet.config import config_to_dict
from drunet.models import DRUNet
from drunet.models.drunet import upgrade_state
from drunet.weights import init_from

FIXTURE = Path(__file__).parent / "data" / "drunet_before_split.safetensors"
CASES: dict[str, dict[str, Any]] = {  # the arguments the fixture's networks were built with
    "s2": dict(
        in_channels=2,
        out_channels=3,
        init_features=4,
        depth=2,
        blocks_per_stage=1,
        conv_after_block=False,
        stem_stride=2,
    ),
    "ref": dict(
        in_channels=1,
        out_channels=1,
        init_features=4,
        depth=2,
        preact=True,
        shortcut="zero_pad",
        se_reduction=2,
    ),
}


def before_split(case: str) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """The old state dict, the input and the old logits of ``case``."""
    data = load_file(FIXTURE)
    prefix = f"{case}/state/"
    state = {k[len(prefix) :]: v for k, v in data.items() if k.startswith(prefix)}
    return state, data[f"{case}/input"], data[f"{case}/logits"]


@pytest.mark.parametrize("case", CASES)
def test_old_weights_give_bit_identical_logits(case: str) -> None:
    old_state, x, expected = before_split(case)
    assert "stem.0.0.weight" in old_state and "encoder.stem.0.0.weight" not in old_state
    model = DRUNet(**CASES[case]).eval()
    model.load_state_dict(old_state)  # strict: every old key has a new home, none is left over
    with torch.no_grad():
        assert torch.equal(model(x), expected)


@pytest.mark.parametrize("case", CASES)
def test_old_keys_map_one_to_one_in_the_same_order(case: str) -> None:
    old_state, _, _ = before_split(case)
    new_keys = list(DRUNet(**CASES[case]).state_dict())
    # The fixture stores keys sorted; the old model's own order is stem, encoders, upsamples,
    # decoders, refine, head — the same as the new model's encoder, decoder, head.
    assert sorted(upgrade_state(old_state)) == sorted(new_keys)
    assert new_keys[0].startswith("encoder.stem.") and new_keys[-1] == "head.bias"
    renamed = upgrade_state({"stem.0.0.weight": 1, "encoders.1.0.conv1.weight": 2})
    assert renamed == {"encoder.stem.0.0.weight": 1, "encoder.stages.1.0.conv1.weight": 2}
    wrapped = upgrade_state({"module.decoders.0.0.bn1.bias": 3, "module.head.bias": 4}, "module.")
    assert wrapped == {"module.decoder.stages.0.0.bn1.bias": 3, "module.head.bias": 4}


def test_a_weights_file_saved_before_the_split_loads_and_inits(tmp_path: Path) -> None:
    old_state, x, expected = before_split("s2")
    config = config_for(DRUNet(**CASES["s2"]))
    path = tmp_path / "old.safetensors"
    metadata = {CONFIG_KEY: json.dumps(config_to_dict(config))}
    path.write_bytes(save(old_state, metadata=metadata))
    model, _ = load_model(path)
    with torch.no_grad():
        assert torch.equal(model(x), expected)
    report = init_from(DRUNet(**CASES["s2"]), path)  # matched by today's names
    assert report.adapted == [] and report.reinitialised == []
    assert len(report.loaded) == len(old_state)


def test_encoder_returns_the_feature_list_the_decoder_consumes() -> None:
    model = DRUNet(2, 3, init_features=4, depth=2, stem_stride=2).eval()
    x = torch.randn(1, 2, 32, 48)
    features = model.encoder(x)
    assert [tuple(f.shape) for f in features] == [
        (1, 2, 32, 48),  # the image (the refine conv reads it)
        (1, 4, 16, 24),  # level 0, after the stride-2 stem
        (1, 8, 8, 12),
        (1, 16, 4, 6),  # the bottleneck
    ]
    assert features[0] is x
    decoded = model.decoder(features)
    assert decoded.shape == (1, 4, 32, 48)
    with torch.no_grad():
        assert torch.equal(model.head(decoded), model(x))
