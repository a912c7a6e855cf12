"""Checkpoints: safetensors + config round-trip exactly; anything else is refused, unread."""

from __future__ import annotations

import json
import pathlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import save, save_file
from torch import nn

from drunet.config import ExperimentConfig, config_from_dict, load_config
from drunet.checkpoint import (
    CONFIG_KEY,
    build_model,
    load_model,
    read_weights,
    save_config_and_weights,
    save_weights,
    unwrap,
)
from drunet.errors import DrunetError

TINY = {"init_features": 4, "depth": 2, "blocks_per_stage": 1}


def tiny_config(num_classes: int = 2, in_channels: int = 1, **params: object) -> ExperimentConfig:
    return config_from_dict(
        {
            "name": "tiny",
            "model": {
                "name": "drunet",
                "in_channels": in_channels,
                "num_classes": num_classes,
                "params": {**TINY, **params},
            },
            "data": {
                "root": "some/data",
                "normalization": {"mean": [0.25] * in_channels, "std": [0.5] * in_channels},
            },
            "train": {"epochs": 3, "lr": 0.01},
        }
    )


def trained_model(config: ExperimentConfig) -> nn.Module:
    """A model whose BatchNorm buffers moved away from their defaults, so they must be saved."""
    torch.manual_seed(0)
    model = build_model(config)
    model.train()
    with torch.no_grad():
        model(torch.randn(2, config.model.in_channels, 16, 16) * 3 + 1)
    return model.eval()


def test_build_model_uses_the_config() -> None:
    model = build_model(tiny_config(num_classes=3, in_channels=2))
    out = model(torch.zeros(1, 2, 20, 12))
    assert out.shape == (1, 3, 20, 12)
    assert model.state_dict()["stem.0.0.weight"].shape == (4, 2, 3, 3)  # init_features 4
    binary = build_model(tiny_config(num_classes=2))
    assert binary(torch.zeros(1, 1, 8, 8)).shape == (1, 1, 8, 8)


def test_build_model_without_in_channels_is_an_error() -> None:
    config = tiny_config()
    config.model.in_channels = None
    with pytest.raises(DrunetError, match="model.in_channels"):
        build_model(config)


def test_build_model_with_an_unknown_argument_names_the_model_key() -> None:
    with pytest.raises(DrunetError, match=r"config key 'model'.*widht"):
        build_model(tiny_config(widht=3))


def test_save_then_read_gives_identical_state_and_config(tmp_path: Path) -> None:
    config = tiny_config()
    model = trained_model(config)
    path = tmp_path / "w.safetensors"
    save_weights(path, model, config)
    state, loaded_config = read_weights(path)
    expected = model.state_dict()
    assert set(state) == set(expected)
    for key, value in expected.items():
        assert state[key].dtype == value.dtype and torch.equal(state[key], value), key
    # BatchNorm running statistics are non-default, so the equality above covers buffers too.
    assert not torch.equal(expected["stem.0.1.running_mean"], torch.zeros(4))
    assert int(state["stem.0.1.num_batches_tracked"]) == 1
    assert loaded_config == config


def test_load_model_gives_identical_eval_outputs(tmp_path: Path) -> None:
    config = tiny_config(num_classes=3)
    model = trained_model(config)
    path = tmp_path / "w.safetensors"
    save_weights(path, model, config)
    loaded, loaded_config = load_model(path)
    assert not loaded.training
    assert loaded_config.model.num_classes == 3 and loaded_config.data.normalization.mean == [0.25]
    x = torch.randn(2, 1, 21, 19)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_wrapped_models_are_saved_without_the_wrapper_prefix(tmp_path: Path) -> None:
    class Wrapper(nn.Module):
        def __init__(self, module: nn.Module) -> None:
            super().__init__()
            self.module = module

    config = tiny_config()
    model = trained_model(config)
    assert unwrap(Wrapper(model)) is model
    save_weights(tmp_path / "w.safetensors", Wrapper(model), config)
    state, _ = read_weights(tmp_path / "w.safetensors")
    assert set(state) == set(model.state_dict())
    load_model(tmp_path / "w.safetensors")  # loads without key errors


def test_config_is_stored_as_json_metadata(tmp_path: Path) -> None:
    config = tiny_config()
    path = tmp_path / "w.safetensors"
    save_weights(path, trained_model(config), config)
    data = path.read_bytes()
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    stored = json.loads(header["__metadata__"][CONFIG_KEY])
    assert stored["model"]["params"] == TINY
    assert stored["data"]["normalization"]["std"] == [0.5]


def test_save_config_and_weights_writes_both(tmp_path: Path) -> None:
    config = tiny_config()
    model = trained_model(config)
    save_config_and_weights(tmp_path, "last.safetensors", model, config)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "last.safetensors"]
    assert load_config(tmp_path / "config.yaml") == config
    assert read_weights(tmp_path / "last.safetensors")[1] == config


@pytest.mark.parametrize(
    "content",
    [b"", b"this is not a weights file at all", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}!!!!!"],
    ids=["zero-bytes", "garbage", "bad-header"],
)
def test_non_safetensors_files_name_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "weights.safetensors"
    path.write_bytes(content)
    with pytest.raises(DrunetError, match="not a safetensors weights file") as info:
        read_weights(path)
    assert str(path) in str(info.value)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.safetensors"
    with pytest.raises(DrunetError, match="cannot read weights") as info:
        load_model(path)
    assert str(path) in str(info.value)


class _Trap:
    """Unpickling this object creates the marker file: proof that a file was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_torch_pickle_files_are_refused_without_unpickling(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "trap": _Trap(marker)}, path)
    # Control: unpickling this file really does run the payload.
    torch.load(path, weights_only=False)
    assert marker.exists()
    marker.unlink()

    with pytest.raises(DrunetError, match="not a safetensors weights file") as info:
        load_model(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_safetensors_without_drunet_metadata_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.ones(3)}, str(path), metadata={"format": "pt"})
    with pytest.raises(DrunetError, match="no drunet configuration") as info:
        read_weights(path)
    assert str(path) in str(info.value)


def test_damaged_config_metadata_is_a_drunet_error(tmp_path: Path) -> None:
    path = tmp_path / "damaged.safetensors"
    path.write_bytes(save({"w": torch.ones(3)}, metadata={CONFIG_KEY: "{'model': truncated"}))
    with pytest.raises(DrunetError, match="damaged") as info:
        read_weights(path)
    assert str(path) in str(info.value)


def test_invalid_config_metadata_names_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad-config.safetensors"
    metadata = {CONFIG_KEY: json.dumps({"train": {"epochs": 0}})}
    path.write_bytes(save({"w": torch.ones(3)}, metadata=metadata))
    with pytest.raises(DrunetError, match=r"'train\.epochs'") as info:
        read_weights(path)
    assert str(path) in str(info.value)


def test_weights_that_do_not_fit_the_described_model_are_refused(tmp_path: Path) -> None:
    small = tiny_config()
    model = trained_model(small)
    path = tmp_path / "w.safetensors"
    save_weights(path, model, tiny_config(init_features=8))  # config describes a wider model
    with pytest.raises(DrunetError, match="do not fit") as info:
        load_model(path)
    assert str(path) in str(info.value)


def test_weights_with_wrong_class_count_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_weights(path, trained_model(tiny_config(num_classes=2)), tiny_config(num_classes=4))
    with pytest.raises(DrunetError, match="do not fit"):
        load_model(path)
