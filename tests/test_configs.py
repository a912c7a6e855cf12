"""The experiment files shipped in ``drunet/configs``: found by name, and only what differs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from drunet.checkpoint import build_model
from drunet.cli.main import app
from drunet.config import ExperimentConfig, load_config, set_fields
from drunet.configs import CONFIG_DIR, bundled_configs, find_config
from drunet.datasets import make_synthetic
from drunet.errors import ConfigError


def test_bundled_names_resolve_to_the_packaged_files() -> None:
    assert {"default", "baseline", "isbi2012"} <= set(bundled_configs())
    assert find_config("isbi2012") == CONFIG_DIR / "isbi2012.yaml"
    assert find_config("isbi2012.yaml") == CONFIG_DIR / "isbi2012.yaml"


def test_an_existing_path_is_returned_as_it_is(tmp_path: Path, monkeypatch) -> None:
    own = tmp_path / "default.yaml"  # a user's file wins over the bundled one of that name
    own.write_text("train: {epochs: 3}\n")
    assert find_config(str(own)) == own
    monkeypatch.chdir(tmp_path)
    assert find_config("default.yaml") == Path("default.yaml")


def test_an_unknown_name_lists_the_bundled_configs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="isbi2012") as err:
        find_config("isbi2013")
    assert "config isbi2013:" in str(err.value) and "default" in str(err.value)
    with pytest.raises(ConfigError, match="no such file, nor a bundled config"):
        find_config(str(tmp_path / "missing.yaml"))


def _leaves(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize("name", bundled_configs())
def test_bundled_configs_state_only_what_differs_from_the_defaults(name: str) -> None:
    stated = _leaves(yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text()) or {})
    defaults = _leaves(ExperimentConfig().model_dump(mode="json"))
    same = {key: value for key, value in stated.items() if defaults.get(key, object()) == value}
    assert not same, f"{name}.yaml repeats defaults: {same}"


def _parameters(config: ExperimentConfig) -> int:
    config = set_fields(config, {"model.in_channels": 1, "model.num_classes": 2})
    return sum(p.numel() for p in build_model(config).parameters())


def test_config_default_builds_the_default_model() -> None:
    # default.yaml once set init_features: 32, a 5.8 M-parameter model instead of 1.46 M.
    config = load_config(find_config("default"))
    assert config == ExperimentConfig()
    assert _parameters(config) == _parameters(ExperimentConfig())


def test_the_cli_takes_a_bundled_name(tmp_path: Path) -> None:
    data = make_synthetic(tmp_path / "data", num_images=6, sizes=((40, 40),), seed=0)  # 6 folds
    result = CliRunner().invoke(app, ["verify", str(data), "--config", "isbi2012", "--json"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["verify", str(data), "--config", "isbi2013"])
    assert result.exit_code == 2 and "isbi2012" in result.output
