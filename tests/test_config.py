"""Experiment configuration: shipped files load, bad keys and values are named, YAML round-trips."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from drunet.config import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
    set_fields,
)
from drunet.configs import CONFIG_DIR
from drunet.datasets import AugmentationOptions, LayoutOptions, NormalizationOptions
from drunet.errors import ConfigError, DrunetError
from drunet.models.presets import DEFAULT_PRESET, PRESETS

CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))


def test_the_package_ships_config_files() -> None:
    assert {p.name for p in CONFIGS} >= {"default.yaml", "baseline.yaml", "isbi2012.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads(path: Path) -> None:
    config = load_config(path)
    assert isinstance(config, ExperimentConfig)
    assert config.model.name in {DEFAULT_PRESET, "unet_resnet34"}
    assert config_from_dict(config_to_dict(config)) == config


def test_default_config_values() -> None:
    config = load_config(CONFIG_DIR / "default.yaml")
    assert config.model.name == DEFAULT_PRESET
    assert config.model.in_channels is None and config.model.num_classes is None
    assert config.data.root is None
    assert config.runs_dir == Path("runs")
    assert config.data.augmentation.patch_size == 256 and config.train.epochs == 20
    assert config.train.lr == pytest.approx(1e-3)
    assert config.train.device == "auto" and config.train.monitor == "dice"


def test_baseline_config_selects_the_smp_unet() -> None:
    config = load_config(CONFIG_DIR / "baseline.yaml")
    assert config.model.name == "unet_resnet34"
    pinned = config.model.pinned().params.model_dump()
    assert pinned == {"encoder_name": "resnet34", "encoder_depth": 5}


def test_empty_dict_gives_the_documented_defaults() -> None:
    config = config_from_dict({})
    assert config.name is None
    assert config.data.layout.val_fraction == 0.2 and config.data.batch_size == 4
    assert config.train.epochs == 20 and config.train.warmup_epochs == 0
    assert config.train.steps_per_epoch is None and config.train.precision == "auto"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"nmae": "x"}, "nmae"),
        ({"train": {"lrr": 0.1}}, "train.lrr"),
        ({"data": {"patchsize": 64}}, "data.patchsize"),
        ({"model": {"classes": 3}}, "model.classes"),
    ],
)
def test_unknown_keys_are_errors_naming_the_key(data: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"unknown key '{key}'"):
        config_from_dict(data)


def test_every_bad_key_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"train": {"lrr": 1, "epochs": 0}, "extra": 1})
    message = str(info.value)
    assert "unknown key 'train.lrr'" in message
    assert "unknown key 'extra'" in message
    assert "'train.epochs'" in message


@pytest.mark.parametrize(
    ("data", "key", "value"),
    [
        ({"train": {"epochs": 0}}, "train.epochs", "0"),
        ({"train": {"lr": -0.1}}, "train.lr", "-0.1"),
        ({"train": {"lr": 0}}, "train.lr", "0"),
        ({"data": {"augmentation": {"patch_size": 4}}}, "data.augmentation.patch_size", "4"),
        ({"data": {"layout": {"val_fraction": 1.0}}}, "data.layout.val_fraction", "1.0"),
        ({"data": {"batch_size": "four"}}, "data.batch_size", "'four'"),
        ({"train": {"device": "tpu"}}, "train.device", "'tpu'"),
        ({"train": {"monitor": "loss"}}, "train.monitor", "'loss'"),
        ({"train": {"epochs": 2.5}}, "train.epochs", "2.5"),
        ({"model": {"num_classes": 1}}, "model.num_classes", "1"),
        ({"model": {"in_channels": 0}}, "model.in_channels", "0"),
    ],
)
def test_bad_values_name_the_key_and_the_value(data: dict, key: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, source="exp.yaml")
    message = str(info.value)
    assert message.startswith("invalid configuration in exp.yaml: ")
    assert f"'{key}'" in message
    assert f"(got {value})" in message


def test_config_error_is_a_drunet_error() -> None:
    assert issubclass(ConfigError, DrunetError)


def test_assignment_is_validated_too() -> None:
    config = config_from_dict({})
    with pytest.raises(ValueError):
        config.train.epochs = 0
    assert config.train.epochs == 20


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("train:\n  epochs: [1, 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML") as info:
        load_config(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("text", ["- 1\n- 2\n", "just a string\n", "42\n"])
def test_non_mapping_yaml_names_the_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "list.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="must be a mapping") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_bad_key_in_a_file_names_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("train:\n  lrr: 0.1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and "unknown key 'train.lrr'" in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="cannot read config") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    assert load_config(path) == ExperimentConfig()


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    config = ExperimentConfig(
        name="exp-1",
        runs_dir=tmp_path / "runs",
        model=ModelConfig(
            name="drunet", in_channels=3, num_classes=4, params={"init_features": 8, "depth": 3}
        ),
        data=DataConfig(
            root=tmp_path / "data",
            layout=LayoutOptions(val_fraction=0.25),
            augmentation=AugmentationOptions(patch_size=96),
            normalization=NormalizationOptions(
                mean=[0.1, 0.2, 0.30000000000000004], std=[0.5, 0.25, 1 / 3]
            ),
        ),
        train=TrainConfig(epochs=7, lr=3e-4, steps_per_epoch=5, device="cpu", amp=False),
    )
    path = tmp_path / "sub" / "config.yaml"
    save_config(config, path)
    loaded = load_config(path)
    assert loaded == config
    assert loaded.data.normalization.std[2] == 1 / 3  # floats survive YAML exactly
    assert isinstance(loaded.data.root, Path)


def test_config_to_dict_is_plain_data(tmp_path: Path) -> None:
    config = config_from_dict({"data": {"root": str(tmp_path)}})
    data = config_to_dict(config)
    assert data["data"]["root"] == str(tmp_path)
    assert data["runs_dir"] == "runs"
    assert config_from_dict(data) == config


@pytest.mark.parametrize(("num_classes", "out_channels"), [(2, 1), (3, 3), (5, 5), (17, 17)])
def test_out_channels(num_classes: int, out_channels: int) -> None:
    spec = ModelConfig(in_channels=1, num_classes=num_classes).spec()
    assert spec.out_channels == out_channels and spec.num_classes == num_classes


def test_spec_without_channels_or_classes_is_an_error() -> None:
    with pytest.raises(ConfigError, match="model.in_channels and model.num_classes"):
        ModelConfig(num_classes=2).spec()
    with pytest.raises(ConfigError, match="model.in_channels and model.num_classes"):
        ModelConfig(in_channels=3).spec()


# --- typed model arguments, loss terms, flags -----------------------------------------------


def test_drunet_alias_is_resolved_once_and_stored_resolved() -> None:
    config = config_from_dict({"model": {"name": "drunet"}})
    assert config.model.name == DEFAULT_PRESET
    assert config_to_dict(config)["model"]["name"] == DEFAULT_PRESET


def test_spec_fills_the_preset_and_keeps_what_was_set() -> None:
    model = ModelConfig(name="drunet_m", in_channels=1, num_classes=4, params={"depth": 3})
    spec = model.spec()
    assert spec.kwargs == {**PRESETS["drunet_m"], "depth": 3}
    assert (spec.in_channels, spec.num_classes, spec.out_channels) == (1, 4, 4)
    # Only what was set is written; pinned() writes the preset's values out.
    assert config_to_dict(ExperimentConfig(model=model))["model"]["params"] == {"depth": 3}
    pinned = model.pinned()
    assert pinned.params.model_dump() == {**PRESETS["drunet_m"], "depth": 3}
    assert pinned.spec() == spec


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            {"name": "drunet_s", "params": {"init_featurs": 8}},
            "unknown key 'model.params.init_featurs'",
        ),
        ({"name": "unet_resnet34", "params": {"depth": 3}}, "unknown key 'model.params.depth'"),
        ({"name": "drunet", "params": {"depth": 40}}, "'model.params.depth'"),
        ({"name": "drunet", "params": {"init_features": 100000}}, "'model.params.init_features'"),
        ({"name": "drunet", "params": {"norm": "batchnorm"}}, "'model.params.norm'"),
        ({"name": "resnet"}, "unknown model 'resnet'"),
        ({"num_classes": 70000}, "'model.num_classes'"),
        ({"in_channels": 5000}, "'model.in_channels'"),
    ],
)
def test_a_bad_model_argument_names_the_key(model: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from_dict({"model": model})


def test_loss_terms_are_typed_by_name() -> None:
    config = config_from_dict({"loss": [{"name": "focal", "gamma": 3}, {"name": "bce"}]})
    focal, bce = config.loss or []
    assert (focal.name, focal.gamma, focal.weight, focal.alpha) == ("focal", 3.0, 1.0, None)
    assert bce.name == "bce"
    assert config_from_dict(config_to_dict(config)) == config


@pytest.mark.parametrize(
    ("loss", "message"),
    [
        ([{"name": "focal", "gama": 1}], "unknown key 'loss.0.focal.gama'"),
        ([{"name": "lovasz"}], "'loss.0'"),
        ([{"weight": 1}], "'loss.0'"),
        ([{"name": "dice", "weight": -1}], "'loss.0.dice.weight'"),
        ([], "'loss'"),
        ("dice", "'loss'"),
    ],
)
def test_a_bad_loss_term_names_the_key(loss: object, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from_dict({"loss": loss})


def test_set_fields_takes_text_as_text() -> None:
    config = set_fields(
        ExperimentConfig(), {"name": "2024", "data.root": Path("my data #1"), "train.epochs": 3}
    )
    assert config.name == "2024"
    assert config.data.root == Path("my data #1")
    assert config.train.epochs == 3
    assert set_fields(ExperimentConfig(), {"name": "null"}).name == "null"


def test_set_fields_names_an_unknown_key() -> None:
    with pytest.raises(ConfigError, match="unknown key 'trian'"):
        set_fields(ExperimentConfig(), {"trian.epochs": 3})


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("train.lr=inf", "train.lr"),
        ("train.lr=.nan", "train.lr"),
        ("train.max_minutes=inf", "train.max_minutes"),
        ("train.device=gpu", "train.device"),
        ("train.encoder_lr_scale=0", "train.encoder_lr_scale"),
    ],
)
def test_non_finite_and_malformed_training_values_are_named(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"'{key}'")):
        apply_overrides(ExperimentConfig(), [override])


def test_device_names_are_validated_but_not_probed() -> None:
    # Availability is checked when the run starts (drunet.device), not when a config loads.
    for device in ("auto", "cpu", "cuda", "cuda:3", "mps"):
        assert (
            apply_overrides(ExperimentConfig(), [f"train.device={device}"]).train.device == device
        )


def test_yaml_aliases_that_expand_to_billions_are_refused(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines) + "\n")  # 9^9 ≈ 387 million strings once expanded
    with pytest.raises(ConfigError, match="more than 100,000 values once its YAML aliases") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_an_error_about_a_huge_value_stays_short() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"train": {"epochs": list(range(50_000))}})
    assert "'train.epochs'" in str(info.value) and len(str(info.value)) < 500


# ---------------------------------------------------------------- the legacy channels_last key


def test_a_legacy_train_channels_last_moves_to_the_models_params() -> None:
    # Configs stored before one switch held train.channels_last; it is now the model's param.
    config = config_from_dict(
        {"model": {"name": "unet_resnet34"}, "train": {"channels_last": True, "epochs": 3}}
    )
    assert config.model.params.channels_last is True
    assert config.train.epochs == 3
    assert "channels_last" not in TrainConfig.model_fields
    assert "channels_last" not in config_to_dict(config)["train"]
    assert config_to_dict(config)["model"]["params"]["channels_last"] is True


def test_a_legacy_channels_last_does_not_override_the_params() -> None:
    config = config_from_dict(
        {
            "model": {"name": "drunet_s", "params": {"channels_last": False, "depth": 3}},
            "train": {"channels_last": True},
        }
    )
    assert config.model.params.channels_last is False and config.model.params.depth == 3


def test_a_legacy_false_channels_last_is_dropped_and_the_preset_decides(tmp_path: Path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text(
        "model: {name: drunet_s, in_channels: 1, num_classes: 2}\n"
        "train: {channels_last: false, epochs: 2}\n"
    )
    config = load_config(path)
    assert config.train.epochs == 2 and config.model.params.channels_last is None
    assert config.model.spec().kwargs["channels_last"] is True  # drunet_s's own value
