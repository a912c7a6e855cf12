"""`drunet train` in-process: the run folder, flag overrides and user errors."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import typer
import typer.main
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


# ---------------------------------------------------------------- one order of precedence
# defaults < --config < --set < flags, merged first and validated once (cli/train.py docstring).

# Every `drunet train` flag that sets a configuration key: (key, value given by --set, flag
# text, the value the configuration must end with). The flags that set no key are listed in
# NOT_CONFIG_KEYS; a new flag must join one of the two (test_every_train_flag_is_covered).
# PARTNERS: the other key a flag is only valid with (images and masks go together).
FLAG_KEYS = {
    "--data": ("data.root", "/set/data", "/flag/data", Path("/flag/data")),
    "--images": ("data.layout.images", "/set/images", "/flag/images", Path("/flag/images")),
    "--masks": ("data.layout.masks", "/set/masks", "/flag/masks", Path("/flag/masks")),
    "--fold": ("data.layout.fold", "1", "2", 2),
    "--split-file": ("data.layout.split_file", "/set.json", "/flag.json", Path("/flag.json")),
    "--model": ("model.name", "drunet_m", "drunet_s", "drunet_s"),
    "--epochs": ("train.epochs", "5", "3", 3),
    "--minutes": ("train.max_minutes", "5.5", "3.5", 3.5),
    "--batch-size": ("data.batch_size", "5", "3", 3),
    "--lr": ("train.lr", "0.5", "0.25", 0.25),
    "--init-from": ("train.init_from", "set.safetensors", "flag.safetensors", "flag.safetensors"),
    "--patch-size": ("data.augmentation.patch_size", "64", "32", 32),
    "--runs-dir": ("runs_dir", "/set/runs", "/flag/runs", Path("/flag/runs")),
    "--name": ("name", "from-set", "from-flag", "from-flag"),
    "--device": ("train.device", "cpu", "AUTO", "auto"),
}
NOT_CONFIG_KEYS = {"--config", "--set", "--resume", "--devices", "--quiet", "--plan"}
PARTNERS = {"--images": "data.layout.masks=/m", "--masks": "data.layout.images=/i"}


def _value(config: object, key: str) -> object:
    for part in key.split("."):
        config = getattr(config, part)
    return config


@pytest.fixture
def started(monkeypatch) -> list:
    """Replace the library's train / train_folds: record the configuration they receive. The
    plan (which reads the data these tests do not have) chooses nothing here."""
    from drunet.cli import train as train_cli
    from drunet.plan import Plan

    seen: list = []
    monkeypatch.setattr(train_cli, "plan_config", lambda config, user: (None, Plan(choices=[])))

    def record(config, reporter=None):
        seen.append(config)
        raise typer.Exit(0)

    monkeypatch.setattr(train_cli, "train", record)
    monkeypatch.setattr(train_cli, "train_folds", record)
    return seen


def test_every_train_flag_is_covered() -> None:
    command = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    flags = {param.opts[0] for param in command.params}
    assert flags == set(FLAG_KEYS) | NOT_CONFIG_KEYS


@pytest.mark.parametrize("flag", sorted(FLAG_KEYS))
def test_a_flag_beats_set_of_the_same_key(runner, started, flag: str) -> None:
    key, set_value, flag_value, expected = FLAG_KEYS[flag]
    partner = ["--set", PARTNERS[flag]] if flag in PARTNERS else []
    result = runner.invoke(
        app, ["train", *partner, "--set", f"{key}={set_value}", flag, flag_value]
    )
    assert result.exit_code == 0, result.output
    assert _value(started[0], key) == expected
    alone = runner.invoke(app, ["train", *partner, "--set", f"{key}={set_value}"])  # --set applies
    assert alone.exit_code == 0, alone.output
    assert str(_value(started[1], key)) == str(Path(set_value) if "/" in set_value else set_value)


def test_set_beats_the_config_file(runner, started, tmp_path) -> None:
    file = tmp_path / "exp.yaml"
    file.write_text("train:\n  epochs: 9\n  lr: 0.5\n")
    result = runner.invoke(app, ["train", "--config", str(file), "--set", "train.epochs=4"])
    assert result.exit_code == 0, result.output
    assert started[0].train.epochs == 4 and started[0].train.lr == 0.5


@pytest.mark.parametrize("source", ["--set", "--config"])
def test_a_flag_is_checked_against_the_other_sources(runner, started, tmp_path, source) -> None:
    def given(key: str, value: str) -> list[str]:
        if source == "--set":
            return ["--set", f"{key}={value}"]
        file = tmp_path / f"{key}.yaml"
        section, _, rest = key.partition(".")
        inner, _, leaf = rest.rpartition(".")
        tree: dict = {leaf: yaml.safe_load(value)}
        for part in reversed([section, *filter(None, inner.split("."))]):
            tree = {part: tree}
        file.write_text(yaml.safe_dump(tree))
        return ["--config", str(file)]

    # The README's example: fold 6 exists once the other source asks for 7 folds …
    ok = runner.invoke(app, ["train", "--fold", "6", *given("data.layout.folds", "7")])
    assert ok.exit_code == 0, ok.output
    assert (started[0].data.layout.fold, started[0].data.layout.folds) == (6, 7)
    # … and fold 2 does not with 2 folds, whichever source says so.
    bad = runner.invoke(app, ["train", "--fold", "2", *given("data.layout.folds", "2")])
    assert bad.exit_code == 2 and "fold 2 does not exist with folds=2" in bad.output
    # The model's arguments follow the model the flag names.
    smp = runner.invoke(
        app, ["train", "--model", "smp:Unet:resnet18", *given("model.params.encoder_depth", "3")]
    )
    assert smp.exit_code == 0, smp.output
    assert started[1].model.name == "smp:Unet:resnet18"
    assert started[1].model.params.encoder_depth == 3


def test_fold_all_on_data_that_cannot_train_leaves_no_folder(runner, tmp_path) -> None:
    runs = tmp_path / "runs"
    args = ["train", "--data", str(tmp_path / "nowhere"), "--fold", "all", "--runs-dir", str(runs)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "nowhere" in result.output
    assert not runs.exists()


def test_fold_all_takes_any_case(runner, started) -> None:
    result = runner.invoke(app, ["train", "--fold", "ALL", "--set", "data.layout.folds=3"])
    assert result.exit_code == 0, result.output
    assert started[0].data.layout.fold is None and started[0].data.layout.folds == 3


@pytest.mark.parametrize("source", ["--set", "--config"])
def test_devices_are_checked_against_the_configured_device(
    runner, monkeypatch, tmp_path, source
) -> None:
    import torch

    from drunet.cli import train as train_cli

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    launched: list[int] = []
    monkeypatch.setattr(train_cli, "relaunch_with_torchrun", lambda n: launched.append(n) or 0)
    file = tmp_path / "cpu.yaml"
    file.write_text("train:\n  device: cpu\n")
    cpu = ["--set", "train.device=cpu"] if source == "--set" else ["--config", str(file)]
    # auto is the one GPU here: two processes need two …
    refused = runner.invoke(app, ["train", "--devices", "2", "--runs-dir", str(tmp_path)])
    assert refused.exit_code == 2 and "--devices 2 needs 2 GPUs" in refused.output
    # … but the configuration trains on the CPU, where any number of processes can run.
    result = runner.invoke(app, ["train", "--devices", "2", *cpu, "--runs-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert launched == [2]


def test_a_missing_device_names_the_key_that_asked_for_it(runner, started) -> None:
    result = runner.invoke(app, ["train", "--set", "train.device=cuda:7"])
    assert result.exit_code == 2 and started == []
    assert "train.device cuda:7 is not available on this machine" in result.output
    flag = runner.invoke(app, ["train", "--device", "cuda:7", "--set", "train.device=cpu"])
    assert flag.exit_code == 2 and "--device cuda:7 is not available" in flag.output


# ---------------------------------------------------------------- the launcher's environment


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("RANK", "abc", "RANK='abc' is not an integer (this process's rank"),
        ("LOCAL_RANK", "x1", "LOCAL_RANK='x1' is not an integer"),
        ("WORLD_SIZE", "two", "WORLD_SIZE='two' is not an integer"),
        ("LOCAL_WORLD_SIZE", "0", "LOCAL_WORLD_SIZE=0 must be at least 1"),
        ("MASTER_PORT", "http", "MASTER_PORT='http' is not an integer"),
        ("MASTER_PORT", "70000", "MASTER_PORT=70000 is not a port (1..65535)"),
        ("RANK", "3", "RANK=3 is outside 0..0"),
    ],
)
def test_a_malformed_launcher_variable_is_one_line_before_a_run_folder(
    runner, tiny_data, tiny_config, tmp_path, monkeypatch, variable, value, message
) -> None:
    monkeypatch.setenv(variable, value)
    args = ["train", "--data", str(tiny_data), "--config", str(tiny_config)]
    for extra in ([], ["--resume", str(tmp_path / "nothing")]):
        result = runner.invoke(app, [*args, "--runs-dir", str(tmp_path / "runs"), *extra])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
        assert result.output.count("error:") == 1
        assert "unset it" in result.output or "choose a free port" in result.output
        assert not (tmp_path / "runs").exists()
