"""`drunet train` in-process: the run folder, flag overrides and user errors."""

from __future__ import annotations

import csv
import shutil

import pytest
import yaml

from drunet.checkpoint import read_weights
from drunet.cli.main import app


def test_train_writes_a_complete_run_folder(trained_run) -> None:
    names = {p.name for p in trained_run.iterdir()}
    assert {"config.yaml", "metrics.csv", "best.safetensors", "last.safetensors"} <= names
    rows = list(csv.DictReader((trained_run / "metrics.csv").open()))
    assert [row["epoch"] for row in rows] == ["1"]
    assert 0.0 <= float(rows[0]["dice"]) <= 1.0
    config = yaml.safe_load((trained_run / "config.yaml").read_text())
    assert config["model"]["in_channels"] == 1  # inferred from the grayscale images
    assert config["model"]["num_classes"] == 2
    assert config["model"]["params"]["init_features"] == 4  # from the YAML file
    _, stored = read_weights(trained_run / "best.safetensors")
    assert stored.model.params.model_dump() == config["model"]["params"]
    assert stored.data.normalization.mean == config["data"]["normalization"]["mean"]


def test_flags_override_the_config_file(runner, tiny_data, tiny_config, tmp_path) -> None:
    args = ["train", "--data", str(tiny_data), "--config", str(tiny_config), "--epochs", "2"]
    result = runner.invoke(
        app, [*args, "--batch-size", "3", "--runs-dir", str(tmp_path), "--name", "r"]
    )
    assert result.exit_code == 0, result.output
    config = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert config["train"]["epochs"] == 2 and config["data"]["batch_size"] == 3
    assert len((tmp_path / "r" / "metrics.csv").read_text().splitlines()) == 3  # header + 2
    assert "best validation dice" in result.output


def test_existing_run_name_is_refused_and_kept(runner, trained_run, tiny_data, tiny_config) -> None:
    before = (trained_run / "best.safetensors").read_bytes()
    args = ["train", "--data", str(tiny_data), "--config", str(tiny_config)]
    result = runner.invoke(app, [*args, "--runs-dir", str(trained_run.parent), "--name", "tiny"])
    assert result.exit_code == 2
    assert "already exists" in result.output and "Traceback" not in result.output
    assert (trained_run / "best.safetensors").read_bytes() == before


def test_missing_data_folder_is_named(runner, tmp_path) -> None:
    missing = tmp_path / "nowhere"
    result = runner.invoke(app, ["train", "--data", str(missing), "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "nowhere" in result.output and "Traceback" not in result.output
    assert not any(tmp_path.iterdir())  # no half-made run folder


def test_no_data_says_how_to_pass_it(runner, tmp_path) -> None:
    result = runner.invoke(app, ["train", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "--data" in result.output


def test_unknown_config_key_is_named(runner, tiny_data, tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epocs: 3\n")
    result = runner.invoke(app, ["train", "--data", str(tiny_data), "--config", str(bad)])
    assert result.exit_code == 2
    assert "train.epocs" in result.output and str(bad) in result.output


def test_unknown_model_lists_choices(runner, tiny_data, tiny_config, tmp_path) -> None:
    args = ["train", "--data", str(tiny_data), "--config", str(tiny_config), "--model", "resnet"]
    result = runner.invoke(app, [*args, "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "resnet" in result.output and "unet_resnet34" in result.output


def test_debug_shows_the_traceback(runner, tmp_path) -> None:
    result = runner.invoke(app, ["--debug", "train", "--data", str(tmp_path / "nowhere")])
    assert result.exit_code != 0
    assert result.exception is not None  # re-raised instead of printed as one line


def test_set_overrides_any_key_and_bad_keys_are_named(runner, tiny_data, tiny_config, tmp_path):
    args = ["train", "--data", str(tiny_data), "--config", str(tiny_config), "--quiet"]
    sets = [
        "--set",
        "train.optimizer=sgd",
        "--set",
        "train.lr=3e-3",
        "--set",
        "model.params.depth=1",
    ]
    result = runner.invoke(app, [*args, *sets, "--runs-dir", str(tmp_path), "--name", "s"])
    assert result.exit_code == 0, result.output
    config = yaml.safe_load((tmp_path / "s" / "config.yaml").read_text())
    assert config["train"]["optimizer"] == "sgd" and config["train"]["lr"] == 3e-3
    assert config["model"]["params"]["depth"] == 1
    assert "epoch   1" in result.output  # quiet mode: one plain line per epoch
    bad = runner.invoke(app, [*args, "--set", "train.optimiser=sgd"])
    assert bad.exit_code == 2 and "train.optimiser" in bad.output


def test_bad_loss_spec_is_named_before_any_run_folder(runner, tiny_data, tiny_config, tmp_path):
    args = ["train", "--data", str(tiny_data), "--config", str(tiny_config)]
    result = runner.invoke(
        app, [*args, "--set", "loss=[{name: lovasz}]", "--runs-dir", str(tmp_path / "r")]
    )
    assert result.exit_code == 2
    assert "loss.0" in result.output and "lovasz" in result.output
    assert not (tmp_path / "r").exists()


def test_resume_extends_a_finished_run(runner, tiny_data, tiny_config, tmp_path) -> None:
    args = ["train", "--data", str(tiny_data), "--config", str(tiny_config), "--quiet"]
    assert runner.invoke(app, [*args, "--runs-dir", str(tmp_path), "--name", "r"]).exit_code == 0
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "r"), "--epochs", "2", "-q"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "r" / "metrics.csv").open()))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert "epoch   2" in result.output and "epoch   1" not in result.output
    conflict = runner.invoke(app, ["train", "--resume", str(tmp_path / "r"), "--lr", "0.1"])
    assert conflict.exit_code == 2 and "--lr" in conflict.output


def test_flag_text_is_taken_as_typed(runner, tiny_data, tiny_config, tmp_path) -> None:
    # A name YAML would read as a number, a folder name YAML would cut at '#'.
    data = tmp_path / "folder with #hash"
    shutil.copytree(tiny_data, data)
    args = ["train", "--data", str(data), "--config", str(tiny_config), "--name", "2024"]
    result = runner.invoke(app, [*args, "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    config = yaml.safe_load((tmp_path / "runs" / "2024" / "config.yaml").read_text())
    assert config["name"] == "2024"
    assert config["data"]["root"] == str(data)


def test_a_misspelt_model_argument_is_named_before_a_run_folder(
    runner, tiny_data, tmp_path
) -> None:
    args = ["train", "--data", str(tiny_data), "--runs-dir", str(tmp_path / "runs")]
    result = runner.invoke(app, [*args, "--set", "model.params.init_featurs=8"])
    assert result.exit_code == 2
    assert "model.params.init_featurs" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_more_processes_than_gpus_is_refused_before_torchrun(runner, monkeypatch, tmp_path):
    import torch

    from drunet.cli import train as train_cli

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    launched = []
    monkeypatch.setattr(train_cli, "relaunch_with_torchrun", lambda n: launched.append(n) or 0)
    result = runner.invoke(
        app, ["train", "--devices", "2", "--device", "cuda", "--runs-dir", str(tmp_path)]
    )
    assert result.exit_code == 2, result.output
    assert "--devices 2 needs 2 GPUs" in result.output and "1 CUDA GPU(s)" in result.output
    assert launched == [] and not any(tmp_path.iterdir())


@pytest.mark.parametrize("variable", ["DRUNET_CPU_BF16", "DRUNET_KEEP_HEAP"])
def test_a_bad_cpu_override_stops_before_a_run_folder(
    runner, tiny_data, tiny_config, tmp_path, monkeypatch, variable
) -> None:
    monkeypatch.setenv(variable, "yes")
    args = ["train", "--data", str(tiny_data), "--config", str(tiny_config)]
    result = runner.invoke(app, [*args, "--runs-dir", str(tmp_path / "runs"), "--name", "b"])
    assert result.exit_code == 2, result.output
    assert f"{variable} 'yes' must be " in result.output
    assert result.output.count("error:") == 1 and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()
