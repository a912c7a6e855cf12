"""Checkpoints: safetensors + config round-trip exactly; anything else is refused, unread."""

from __future__ import annotations

import json
import pathlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import save, save_file
from torch import nn

from drunet.checkpoint import (
    CONFIG_KEY,
    build_model,
    load_model,
    read_weights,
    save_config_and_weights,
    save_weights,
    unwrap,
)
from drunet.config import ExperimentConfig, config_from_dict, config_to_dict, load_config
from drunet.errors import ConfigError, DrunetError
from tests.conftest import TINY_PARAMS
from tests.models.model_tester import assert_close_to_scale


def tiny_config(num_classes: int = 2, in_channels: int = 1, **params: object) -> ExperimentConfig:
    return config_from_dict(
        {
            "name": "tiny",
            "model": {
                "name": "drunet",
                "in_channels": in_channels,
                "num_classes": num_classes,
                "params": {**TINY_PARAMS, **params},
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
    assert model.state_dict()["encoder.stem.0.0.weight"].shape == (4, 2, 3, 3)  # init_features 4
    binary = build_model(tiny_config(num_classes=2))
    assert binary(torch.zeros(1, 1, 16, 16)).shape == (1, 1, 16, 16)


def test_build_model_without_in_channels_is_an_error() -> None:
    config = tiny_config()
    config.model.in_channels = None
    with pytest.raises(DrunetError, match="model.in_channels"):
        build_model(config)


def test_an_unknown_model_argument_is_refused_before_building() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'model.params.widht'"):
        tiny_config(widht=3)


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
    assert not torch.equal(expected["encoder.stem.0.1.running_mean"], torch.zeros(4))
    assert int(state["encoder.stem.0.1.num_batches_tracked"]) == 1
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
    assert stored["model"]["params"] == TINY_PARAMS
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
    with pytest.raises(DrunetError, match="no such run folder or weights file") as info:
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


# --- one weights format, three ways to point at it -------------------------------------------


def test_save_pretrained_round_trips_a_hand_built_drunet(tmp_path: Path) -> None:
    from drunet import DRUNet
    from drunet.checkpoint import PRETRAINED, PRETRAINED_CONFIG
    from drunet.hub.pretrained import from_pretrained, save_pretrained

    torch.manual_seed(0)
    model = DRUNet(2, 3, init_features=4, depth=2, blocks_per_stage=1, se_reduction=2).eval()
    assert save_pretrained(model, tmp_path / "m") == tmp_path / "m"
    stored = json.loads((tmp_path / "m" / PRETRAINED_CONFIG).read_text())
    assert stored["model"]["params"]["se_reduction"] == 2
    x = torch.randn(1, 2, 24, 20)
    # The folder, the weights file inside it: the same model, the same outputs.
    for source in (tmp_path / "m", tmp_path / "m" / PRETRAINED):
        loaded = from_pretrained(source)
        assert type(loaded) is DRUNet
        torch.testing.assert_close(loaded(x), model(x), atol=0, rtol=0)


def test_save_pretrained_round_trips_the_smp_baseline(tmp_path: Path) -> None:
    from drunet import SmpModel
    from drunet.hub.pretrained import from_pretrained, save_pretrained

    torch.manual_seed(0)
    model = SmpModel(1, 4, encoder_name="resnet18", encoder_depth=3).eval()
    save_pretrained(model, tmp_path)
    loaded = from_pretrained(tmp_path)
    assert type(loaded) is SmpModel and loaded.hparams == model.hparams
    x = torch.randn(1, 1, 33, 40)
    torch.testing.assert_close(loaded(x), model(x), atol=0, rtol=0)


def test_a_run_folder_loads_through_the_same_function(tmp_path: Path) -> None:
    from drunet.checkpoint import BEST, LAST, weights_path
    from drunet.hub.pretrained import from_pretrained

    config = tiny_config()
    model = trained_model(config)
    save_config_and_weights(tmp_path, LAST, model, config)
    assert weights_path(tmp_path) == tmp_path / LAST  # best is preferred once there
    save_config_and_weights(tmp_path, BEST, model, config)
    assert weights_path(tmp_path) == tmp_path / BEST
    x = torch.randn(1, 1, 16, 16)
    torch.testing.assert_close(from_pretrained(tmp_path)(x), model(x), atol=0, rtol=0)


def test_a_two_logit_model_cannot_be_described(tmp_path: Path) -> None:
    from drunet import DRUNet
    from drunet.hub.pretrained import save_pretrained

    with pytest.raises(DrunetError, match="one logit"):
        save_pretrained(DRUNet(1, 2, init_features=4, depth=1), tmp_path)


def test_a_folder_without_weights_names_the_three_forms(tmp_path: Path) -> None:
    from drunet.checkpoint import weights_path

    with pytest.raises(DrunetError, match="run folder, a save_pretrained folder or a .safetensors"):
        weights_path(tmp_path)


def test_predictor_takes_a_save_pretrained_folder_with_its_preprocessing(tmp_path: Path) -> None:
    from drunet.hub.pretrained import save_pretrained
    from drunet.inference import Predictor

    config = tiny_config()
    model = trained_model(config)
    save_config_and_weights(tmp_path / "run", "best.safetensors", model, config)
    save_pretrained(model, tmp_path / "shared", config)
    image = (torch.rand(20, 28) * 255).to(torch.uint8).numpy()
    from_run = Predictor.from_run(tmp_path / "run").predict(image)
    from_folder = Predictor.from_run(tmp_path / "shared").predict(image)
    assert from_folder.shape == (20, 28)
    assert (from_run == from_folder).all()


def test_weights_stored_with_the_legacy_channels_last_key_load(tmp_path: Path) -> None:
    # Weights saved before one switch hold train.channels_last in their metadata; the model
    # they describe is NHWC (model.params.channels_last) and gives the same logits.
    config = tiny_config(channels_last=False)
    model = trained_model(config)
    stored = config_to_dict(config)
    stored["model"]["params"].pop("channels_last")
    stored["train"]["channels_last"] = True
    path = tmp_path / "old.safetensors"
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    path.write_bytes(save(state, metadata={CONFIG_KEY: json.dumps(stored)}))
    loaded, loaded_config = load_model(path)
    assert loaded_config.model.params.channels_last is True
    assert "channels_last" not in config_to_dict(loaded_config)["train"]
    assert loaded.channels_last
    assert loaded.encoder.stem[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 1, 21, 19)
    with torch.no_grad():
        assert_close_to_scale(loaded(x), model(x))
