"""A tiny dataset, a tiny recipe and one trained run shared by the CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from drunet.cli.main import app
from drunet.datasets import make_synthetic
from tests.conftest import tiny_recipe


@pytest.fixture(scope="session")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    return make_synthetic(root, num_images=6, sizes=((48, 48), (40, 56)), seed=3)


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe()))
    return path


@pytest.fixture(scope="session")
def trained_run(
    runner: CliRunner, tiny_data: Path, tiny_config: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    args = ["train", "--data", str(tiny_data), "--config", str(tiny_config)]
    result = runner.invoke(app, [*args, "--runs-dir", str(runs), "--name", "tiny"])
    assert result.exit_code == 0, result.output
    return runs / "tiny"
