"""One order of precedence in ``drunet compare``, ``plan`` and ``verify`` (as in ``train``):
defaults < --config < --set < flags, merged first and validated once."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
import typer.main
import yaml

from drunet.bounds import batch_pixel_bound
from drunet.cli.main import app

# Per command, every flag that sets a configuration key: (key, value given by --set, flag text,
# the value the configuration must end with). NOT_CONFIG_KEYS: the flags that set no key; a new
# flag must join one of the two (test_every_flag_is_classified). Verify's folder is an argument.
FLAG_KEYS: dict[str, dict[str, tuple[str, str, str, object]]] = {
    "compare": {
        "--data": ("data.root", "/set/data", "/flag/data", Path("/flag/data")),
        "--epochs": ("train.epochs", "5", "3", 3),
        "--budget-minutes": ("train.max_minutes", "5.5", "3.5", 3.5),
        "--device": ("train.device", "cpu", "AUTO", "auto"),
    },
    "plan": {
        "--data": ("data.root", "/set/data", "/flag/data", Path("/flag/data")),
        "--images": ("data.layout.images", "/set/images", "/flag/images", Path("/flag/images")),
        "--masks": ("data.layout.masks", "/set/masks", "/flag/masks", Path("/flag/masks")),
        "--split-file": ("data.layout.split_file", "/set.json", "/flag.json", Path("/flag.json")),
        "--model": ("model.name", "drunet_m", "drunet_s", "drunet_s"),
        "--num-classes": ("model.num_classes", "4", "3", 3),
        "--patch-size": ("data.augmentation.patch_size", "64", "32", 32),
        "--batch-size": ("data.batch_size", "5", "3", 3),
        "--minutes": ("train.max_minutes", "5.5", "3.5", 3.5),
        "--device": ("train.device", "cpu", "AUTO", "auto"),
    },
    "verify": {
        "data": ("data.root", "/set/data", "/flag/data", Path("/flag/data")),
        "--data": ("data.root", "/set/data", "/flag/data", Path("/flag/data")),
        "--images": ("data.layout.images", "/set/images", "/flag/images", Path("/flag/images")),
        "--masks": ("data.layout.masks", "/set/masks", "/flag/masks", Path("/flag/masks")),
        "--num-classes": ("model.num_classes", "4", "3", 3),
        "--patch-size": ("data.augmentation.patch_size", "64", "32", 32),
    },
}
NOT_CONFIG_KEYS = {
    "compare": {"--models", "--config", "--out", "--set", "--overwrite"},
    "plan": {"--config", "--memory-gb", "--max-images", "--set", "--json"},
    "verify": {"--config", "--set", "--json"},
}
# The other keys a flag is only valid with (images and masks go together; verify without a
# folder would look for the pairs on disk).
PARTNERS = {"--images": ["data.layout.masks=/m"], "--masks": ["data.layout.images=/i"]}


def _value(config: object, key: str) -> object:
    for part in key.split("."):
        config = getattr(config, part)
    return config


@pytest.fixture
def seen(monkeypatch) -> list:
    """Each command stops where it hands its configuration to the library, recording it."""
    from drunet.cli import compare, plan, verify
    from drunet.config import ExperimentConfig

    configs: list = []

    def record(config, *args, **kwargs):
        configs.append(config)
        raise typer.Exit(0)

    def record_verify(source, masks, *, layout, num_classes, patch_size, **kwargs):
        # verify passes pieces of its configuration: rebuild the keys these tests read.
        config = ExperimentConfig().model_copy(deep=True)
        config.data.root = Path(source)
        config.data.layout = layout
        config.model.num_classes = num_classes
        config.data.augmentation.patch_size = patch_size
        configs.append(config)
        raise typer.Exit(0)

    monkeypatch.setattr(compare, "compare_models", record)
    monkeypatch.setattr(plan, "plan_config", record)
    monkeypatch.setattr(verify, "verify_dataset", record_verify)
    return configs


def _base(command: str, tmp_path: Path, flag: str = "") -> list[str]:
    """The arguments every run of ``command`` needs besides the ones under test."""
    if command == "compare":
        return ["compare", "--out", str(tmp_path / "cmp"), "--models", "drunet"]
    if command == "verify" and flag != "data":
        return ["verify", "--set", "data.root=/base"]
    return [command]


def _flag(flag: str, text: str) -> list[str]:
    return [text] if not flag.startswith("--") else [flag, text]


@pytest.mark.parametrize("command", sorted(FLAG_KEYS))
def test_every_flag_is_classified(command: str) -> None:
    cli = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    flags = {param.opts[0] for param in cli.params}
    assert flags == set(FLAG_KEYS[command]) | NOT_CONFIG_KEYS[command]


CASES = [(command, flag) for command in sorted(FLAG_KEYS) for flag in sorted(FLAG_KEYS[command])]


@pytest.mark.parametrize(("command", "flag"), CASES)
def test_a_flag_beats_set_of_the_same_key(runner, seen, tmp_path, command, flag) -> None:
    key, set_value, flag_value, expected = FLAG_KEYS[command][flag]
    base = _base(command, tmp_path, flag)
    partner = [arg for item in PARTNERS.get(flag, []) for arg in ("--set", item)]
    given = ["--set", f"{key}={set_value}"]
    result = runner.invoke(app, [*base, *partner, *given, *_flag(flag, flag_value)])
    assert result.exit_code == 0, result.output
    assert _value(seen[0], key) == expected
    alone = runner.invoke(app, [*base, *partner, *given])  # --set applies on its own
    assert alone.exit_code == 0, alone.output
    assert str(_value(seen[1], key)) == str(Path(set_value) if "/" in set_value else set_value)


@pytest.mark.parametrize("command", sorted(FLAG_KEYS))
def test_set_beats_the_config_file(runner, seen, tmp_path, command) -> None:
    file = tmp_path / "exp.yaml"
    file.write_text("model:\n  num_classes: 3\ndata:\n  augmentation:\n    patch_size: 96\n")
    base = _base(command, tmp_path)
    given = ["--config", str(file), "--set", "data.augmentation.patch_size=64"]
    result = runner.invoke(app, [*base, *given])
    assert result.exit_code == 0, result.output
    assert (seen[0].data.augmentation.patch_size, seen[0].model.num_classes) == (64, 3)


def _given(source: str, key: str, value: str, tmp_path: Path) -> list[str]:
    if source == "--set":
        return ["--set", f"{key}={value}"]
    section, _, leaf = key.partition(".")
    file = tmp_path / f"{key}.yaml"
    file.write_text(yaml.safe_dump({section: {leaf: yaml.safe_load(value)}}))
    return ["--config", str(file)]


@pytest.mark.parametrize("command", ["plan", "verify"])
@pytest.mark.parametrize("source", ["--set", "--config"])
def test_patch_size_is_checked_against_the_other_sources(
    runner, seen, tmp_path, command, source
) -> None:
    # --patch-size 64 with the largest batch the machine's bound allows passes; --patch-size
    # 128 with the same batch (four times the pixels) is refused: the flag sees that batch.
    batch = str(batch_pixel_bound() // (64 * 64))
    base = [*_base(command, tmp_path), *_given(source, "data.batch_size", batch, tmp_path)]
    ok = runner.invoke(app, [*base, "--patch-size", "64"])
    assert ok.exit_code == 0, ok.output
    assert seen[0].data.augmentation.patch_size == 64
    if command == "plan":  # verify hands on the patch size, not the batch
        assert seen[0].data.batch_size == int(batch)
    bad = runner.invoke(app, [*base, "--patch-size", "128"])
    assert bad.exit_code == 2 and "data.batch_size" in bad.output, bad.output
    assert "Traceback" not in bad.output


@pytest.mark.parametrize("source", ["--set", "--config"])
def test_compare_epochs_are_checked_against_the_other_sources(
    runner, seen, tmp_path, source
) -> None:
    # folds × epochs ≤ 10⁶: 300,000 epochs pass with 2 folds set elsewhere, not with 5.
    base = _base("compare", tmp_path)
    ok = runner.invoke(
        app, [*base, "--epochs", "300000", *_given(source, "data.layout", "{folds: 2}", tmp_path)]
    )
    assert ok.exit_code == 0, ok.output
    assert (seen[0].train.epochs, seen[0].data.layout.folds) == (300000, 2)
    bad = runner.invoke(app, [*base, "--epochs", "300000"])
    assert bad.exit_code == 2 and "data.layout.folds × train.epochs" in bad.output, bad.output


def test_compare_budget_runs_until_the_budget_unless_epochs_are_set(runner, seen, tmp_path):
    base = [*_base("compare", tmp_path), "--budget-minutes", "2"]
    assert runner.invoke(app, base).exit_code == 0
    assert (seen[0].train.epochs, seen[0].train.max_minutes) == (100000, 2.0)
    assert runner.invoke(app, [*base, "--set", "train.epochs=7"]).exit_code == 0
    assert seen[1].train.epochs == 7
    assert runner.invoke(app, [*base, "--epochs", "3", "--set", "train.epochs=7"]).exit_code == 0
    assert seen[2].train.epochs == 3
