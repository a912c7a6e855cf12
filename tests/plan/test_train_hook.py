"""`drunet train` trains the plan below the user's values, says so before the first epoch and
keeps fingerprint.json and plan.json in the run folder; --no-plan trains the defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from drunet.cli.main import app
from tests.conftest import tiny_recipe
from tests.plan.conftest import fake_speed, lines_mask, write_folder


@pytest.fixture(scope="module")
def thin_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five 64² images of 2-px lines."""
    return write_folder(tmp_path_factory.mktemp("thin"), [lines_mask(64, 2)] * 5)


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"  # patch 32, batch 2, 1 epoch
    path.write_text(yaml.safe_dump(tiny_recipe()))
    return path


def _train(data: Path, config: Path, runs: Path, *args: str):
    argv = ["train", "--data", str(data), "--config", str(config), "--runs-dir", str(runs)]
    result = CliRunner().invoke(app, [*argv, "--name", "r", "-q", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output, runs / "r"


def test_train_uses_the_plan_below_the_users_values(
    thin_data: Path, tiny_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_speed(monkeypatch, {"drunet_s": 1e-3, "drunet_s2": 1e-3})  # 15 minutes buy plenty
    output, run = _train(thin_data, tiny_config, tmp_path, "--minutes", "15")
    line = "plan: model drunet_s (plan: thinnest foreground structures 2.0 px"
    assert line in output and output.index(line) < output.index("epoch   1  loss")
    lines = output.splitlines()
    first_epoch = next(i for i, text in enumerate(lines) if text.startswith("epoch   1"))
    keys = [text for text in lines[:first_epoch] if text.startswith("plan: ")]
    assert [text.split(" (")[0] for text in keys] == [
        "plan: model drunet_s",
        "plan: patch 32",
        "plan: batch 2",
    ]  # a few lines, before the first epoch
    assert "plan: batch 2 (user: set by you)" in output
    # The epoch line and the summary give the per-image Dice beside the pooled one; the
    # post-processing chosen on the one validation image follows the summary.
    assert "(per image " in lines[first_epoch] and "(per-image Dice " in output
    assert "post-processing chosen on 1 validation image(s) (0 empty)" in output
    assert "  postprocess.min_size = " in output
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["name"] == "drunet_s"  # the plan's
    assert config["data"]["batch_size"] == 2 and config["data"]["augmentation"]["patch_size"] == 32
    assert config["train"]["max_minutes"] == 15 and config["train"]["epochs"] == 1  # the user's
    assert config["postprocess"]["select"] is True and (run / "postprocess.json").is_file()
    plan = json.loads((run / "plan.json").read_text())
    assert plan["overrides"] == {"model.name": "drunet_s"}
    fingerprint = json.loads((run / "fingerprint.json").read_text())
    assert fingerprint["pairs"] == 4 and fingerprint["classes"][1]["width_median"] == 2.0


def test_no_plan_trains_the_defaults(thin_data: Path, tiny_config: Path, tmp_path: Path) -> None:
    output, run = _train(thin_data, tiny_config, tmp_path, "--no-plan")
    assert "plan:" not in output
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["name"] != "drunet_s"
    assert not (run / "plan.json").exists() and not (run / "fingerprint.json").exists()
