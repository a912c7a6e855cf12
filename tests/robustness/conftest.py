"""Shared pieces for the robustness suite: a runner, a tiny recipe, a good dataset."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from drunet.cli.main import app
from drunet.datasets import make_synthetic
from tests.conftest import tiny_recipe


@pytest.fixture
def good_data(tmp_path: Path) -> Path:
    return make_synthetic(tmp_path / "data", num_images=5, sizes=((40, 40),), seed=4)


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe(train={"steps_per_epoch": 1})))
    return path


def invoke(*args: str):
    """Run the CLI in-process with a wide terminal (messages stay on one line)."""
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "300"})


def assert_user_error(result, *fragments: str, code: int = 2) -> None:
    """Non-zero exit, one clear message containing every fragment, no traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), repr(result.exception)
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-epoch run of a tiny DRUNet (its folder), trained once per test module."""
    root = tmp_path_factory.mktemp("trained")
    data = make_synthetic(root / "data", num_images=5, sizes=((40, 40),), seed=4)
    recipe = root / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe(train={"epochs": 2, "steps_per_epoch": 1})))
    result = invoke(
        "train", "--data", data, "--config", recipe, "--runs-dir", root / "runs", "--name", "run"
    )
    assert result.exit_code == 0, result.output
    return root / "runs" / "run"


@pytest.fixture
def images(trained_run: Path, tmp_path: Path) -> Path:
    """A copy of the trained run's images (5 grayscale 40 × 40 PNGs) to predict."""
    folder = tmp_path / "images"
    shutil.copytree(trained_run.parent.parent / "data" / "images", folder)
    return folder
