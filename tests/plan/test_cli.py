"""`drunet plan`: the fingerprint and the plan as text and JSON; bad input is one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from drunet.cli.main import app
from drunet.plan.speed import Speed
from tests.plan.conftest import fake_speed, lines_mask, write_folder


@pytest.fixture(scope="module")
def thin_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five 101² images of 2-px lines (one held out for validation)."""
    return write_folder(tmp_path_factory.mktemp("thin"), [lines_mask(101, 2)] * 5)


def test_text_lists_the_fingerprint_and_one_reason_per_choice(thin_data: Path) -> None:
    result = CliRunner().invoke(app, ["plan", "--data", str(thin_data)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert "measured: 4 of 4 training pairs" in out
    assert "sizes (W×H): 101×101 … 101×101" in out
    assert "class 1: " in out and "width 2 px" in out
    assert "model.name = drunet_s  (plan: thinnest foreground structures 2.0 px" in out
    assert "data.augmentation.patch_size = 112  (plan: whole images" in out
    plan_lines = out[out.index("plan\n") :].splitlines()[1:]
    assert len(plan_lines) == 9 and all("  (" in line for line in plan_lines)
    assert plan_lines[-1].startswith("postprocess.select = true  (default: after training, each")


def test_json_has_the_fingerprint_plan_and_overrides(
    thin_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_speed(monkeypatch, {"drunet_s": 10.0, "drunet_s2": 1.0})  # s/sample: drunet_s is slow
    args = ["--data", str(thin_data), "--json", "--minutes", "6", "--set", "data.batch_size=3"]
    result = CliRunner().invoke(app, ["plan", *args])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["fingerprint"]["classes"][1]["width_median"] == 2.0
    assert document["fingerprint"]["empty_mask_fraction"] == 0.0
    choices = {c["key"]: c for c in document["plan"]["choices"]}
    assert choices["model.name"]["value"] == "drunet_s2"  # 6 minutes buy < 1 epoch of drunet_s
    assert "buys ≈1 epochs of drunet_s (< 50, measured here)" in choices["model.name"]["reason"]
    assert choices["train.max_minutes"] == {
        "key": "train.max_minutes",
        "value": 6.0,
        "reason": "set by you",
        "source": "user",
    }
    batch = choices["data.batch_size"]
    assert batch["source"] == "user" and batch["value"] == 3
    assert document["overrides"] == {"data.augmentation.patch_size": 128, "train.epochs": 100000}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "/no/such/folder"], "does not exist"),
        ([], "pass --data DIR"),
        (["--data", "{tmp}"], "no dataset layout"),
        (["--data", "{data}", "--set", "model.bogus=1"], "unknown key"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], message: str, thin_data: Path, tmp_path: Path
) -> None:
    args = [a.format(tmp=tmp_path, data=thin_data) for a in args]
    result = CliRunner().invoke(app, ["plan", *args], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert message in result.output
    assert result.output.count("error:") == 1 and "Traceback" not in result.output


def test_a_clean_up_set_by_hand_turns_the_choice_on_validation_off(thin_data: Path) -> None:
    args = ["plan", "--data", str(thin_data), "--json", "--set", "postprocess.min_size=9"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    choices = {c["key"]: c for c in json.loads(result.output)["plan"]["choices"]}
    assert choices["postprocess.select"] == {
        "key": "postprocess.select",
        "value": False,
        "reason": "set by you",
        "source": "user",
    }


def test_the_budget_is_weighed_on_the_device_named(
    thin_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    devices: list[str] = []

    def measured(_channels: int, _classes: int, device: str, steps: int | None, least: int):
        devices.append(device)
        return Speed({"drunet_s": 1e-3, "drunet_s2": 1e-3}.__getitem__, steps, least)

    monkeypatch.setattr("drunet.plan.apply.measured_speed", measured)
    args = ["plan", "--data", str(thin_data), "--minutes", "6", "--device", "CPU", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert devices == ["cpu"]
    missing = CliRunner().invoke(app, ["plan", "--data", str(thin_data), "--device", "cuda:7"])
    assert missing.exit_code == 2 and "cuda:7 is not available" in missing.output
