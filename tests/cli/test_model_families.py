"""Model families through the CLI: compare takes smp:ARCH:ENCODER names, and the weights a user
names to start from (encoder weights, --init-from) are read safely: one line, exit 2."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from drunet.cli.main import app
from tests.conftest import tiny_recipe

WIDE = {"COLUMNS": "400"}  # long temporary paths stay on one line


def test_compare_trains_an_smp_name_beside_drunet(
    runner: CliRunner, tiny_data: Path, tiny_config: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cmp"
    args = ["compare", "--data", str(tiny_data), "--config", str(tiny_config), "--out", str(out)]
    result = runner.invoke(app, [*args, "--models", "drunet,smp:Unet:resnet18", "--epochs", "1"])
    assert result.exit_code == 0, result.output
    reports = json.loads((out / "compare.json").read_text())
    assert [r["model"] for r in reports] == ["drunet", "smp:Unet:resnet18"]
    smp_run = Path(reports[1]["run_dir"])
    assert smp_run.name == "smp-Unet-resnet18"  # a folder name without colons
    assert yaml.safe_load((smp_run / "config.yaml").read_text())["model"]["name"] == (
        "smp:Unet:resnet18"
    )
    assert 0.0 <= reports[1]["scores"]["dice"] <= 1.0 and reports[1]["epochs"] == 1


def test_compare_refuses_a_malformed_smp_name_naming_it(
    runner: CliRunner, tiny_data: Path, tiny_config: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cmp"
    args = ["compare", "--data", str(tiny_data), "--config", str(tiny_config), "--out", str(out)]
    result = runner.invoke(app, [*args, "--models", "drunet,smp:Unet:resnet1000"], env=WIDE)
    assert result.exit_code == 2, result.output
    assert "resnet1000" in result.output and "Traceback" not in result.output


@pytest.fixture
def pickled(tmp_path: Path) -> Path:
    path = tmp_path / "weights.pt"
    path.write_bytes(pickle.dumps({"conv1.weight": object()}))
    return path


@pytest.mark.parametrize("model", ["smp:Unet:resnet18", "drunet"])
def test_encoder_weights_in_a_pickle_are_one_line_exit_2(
    runner: CliRunner, tiny_data: Path, tmp_path: Path, pickled: Path, model: str
) -> None:
    recipe = tiny_recipe()
    if model != "drunet":  # a light smp model: its own params instead of DRUNet's
        recipe["model"] = {"name": model, "params": {"encoder_depth": 3}}
    config = tmp_path / "recipe.yaml"
    config.write_text(yaml.safe_dump(recipe))
    runs = tmp_path / "runs"
    args = ["train", "--data", str(tiny_data), "--config", str(config), "--runs-dir", str(runs)]
    setting = f"train.encoder_weights={pickled}"
    result = runner.invoke(app, [*args, "--set", setting], env=WIDE)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if str(pickled) in line]
    assert len(lines) == 1 and "train.encoder_weights" in lines[0], result.output
    assert "Traceback" not in result.output and "weights_only" not in result.output
    assert not runs.exists()  # refused before a run folder exists


@pytest.mark.parametrize("content", [None, b"\x00" * 64], ids=["pickle", "damaged"])
def test_init_from_a_pickle_or_damaged_file_is_one_line_exit_2(
    runner: CliRunner,
    tiny_data: Path,
    tiny_config: Path,
    tmp_path: Path,
    pickled: Path,
    content: bytes | None,
) -> None:
    if content is not None:
        pickled.write_bytes(content)
    runs = tmp_path / "runs"
    args = ["train", "--data", str(tiny_data), "--config", str(tiny_config)]
    flags = ["--runs-dir", str(runs), "--init-from", str(pickled)]
    result = runner.invoke(app, [*args, *flags], env=WIDE)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if str(pickled) in line]
    assert len(lines) == 1 and "--init-from" in lines[0], result.output
    assert "Traceback" not in result.output and "weights_only" not in result.output
    assert not runs.exists()
