"""--device / --precision on every command: a missing device is one line (exit 2) naming what is
there, before any work; the chosen device is printed once; train records it in the config."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from drunet.cli.main import app
from drunet.device import DEVICE_ENV

WIDE = {"COLUMNS": "300"}
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")


def _one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


@no_cuda
@pytest.mark.parametrize(
    "args",
    [
        ["predict", "x.png"],
        ["evaluate"],
        ["export"],
        ["compare"],
        ["demo"],
        ["train"],
    ],
    ids=lambda args: args[0],
)
def test_a_missing_gpu_is_one_line_naming_what_is_available(runner, tmp_path, args) -> None:
    # Nothing else exists (no x.png, no run, no data): the device is checked first.
    out = ["--out", str(tmp_path / "out")] if args[0] in ("demo", "compare") else []
    result = runner.invoke(app, [*args, *out, "--device", "cuda"], env=WIDE)
    assert result.exit_code == 2, result.output
    line = _one_error_line(result.output)
    assert "--device cuda is not available on this machine; available: cpu" in line
    assert not (tmp_path / "out").exists()


@no_cuda
def test_drunet_device_is_the_default_and_named_when_wrong(runner, monkeypatch) -> None:
    monkeypatch.setenv(DEVICE_ENV, "cuda:1")
    result = runner.invoke(app, ["predict", "x.png"], env=WIDE)
    assert result.exit_code == 2
    assert f"{DEVICE_ENV} cuda:1 is not available" in _one_error_line(result.output)


def test_an_unknown_device_name_is_one_line(runner) -> None:
    result = runner.invoke(app, ["predict", "x.png", "--device", "gpu"], env=WIDE)
    assert result.exit_code == 2
    assert "'gpu' is not a device; use auto, cpu, cuda, cuda:N or mps" in result.output


def test_predict_prints_the_device_and_precision_once(runner, trained_run, tiny_data, tmp_path):
    image = next((tiny_data / "images").iterdir())
    args = ["predict", str(image), "--model", str(trained_run), "--out", str(tmp_path)]
    result = runner.invoke(app, [*args, "--device", "cpu", "--precision", "fp32"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert result.output.count("device: ") == 1 and "device: cpu (fp32)" in result.output
    assert (tmp_path / f"{image.stem}_mask.png").is_file()


def test_drunet_device_cpu_is_used_without_the_flag(
    runner, trained_run, tiny_data, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    image = next((tiny_data / "images").iterdir())
    args = ["predict", str(image), "--model", str(trained_run), "--out", str(tmp_path)]
    result = runner.invoke(app, args, env=WIDE)
    assert result.exit_code == 0, result.output
    assert "device: cpu" in result.output


def test_a_bad_precision_is_one_line(runner, trained_run, tiny_data) -> None:
    image = str(next((tiny_data / "images").iterdir()))
    for command in (["predict", image], ["evaluate", "--data", str(tiny_data)]):
        args = [*command, "--model", str(trained_run), "--precision", "fp8"]
        result = runner.invoke(app, args, env=WIDE)
        assert result.exit_code == 2, result.output
        assert "precision must be one of auto, fp32, fp16, bf16" in result.output


def test_evaluate_on_the_cpu_in_bf16(runner, trained_run, tiny_data, tmp_path) -> None:
    args = ["evaluate", "--model", str(trained_run), "--data", str(tiny_data)]
    result = runner.invoke(
        app,
        [*args, "--out", str(tmp_path), "--device", "cpu", "--precision", "bf16"],
        env=WIDE,
    )
    assert result.exit_code == 0, result.output
    assert "device: cpu (bf16)" in result.output


def test_train_records_the_device_in_the_run_config(
    runner, tiny_data, tiny_config, tmp_path
) -> None:
    args = ["train", "--data", str(tiny_data), "--config", str(tiny_config)]
    result = runner.invoke(
        app, [*args, "--runs-dir", str(tmp_path), "--name", "r", "--device", "cpu"], env=WIDE
    )
    assert result.exit_code == 0, result.output
    assert "device: cpu" in result.output
    config = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert config["train"]["device"] == "cpu"


def test_export_runs_the_parity_reference_on_the_device(runner, trained_run, tmp_path) -> None:
    path = tmp_path / "m.pt2"
    args = ["export", str(trained_run), "--format", "pt2", "--out", str(path)]
    result = runner.invoke(app, [*args, "--device", "cpu"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "device: cpu" in result.output and "matches PyTorch" in result.output
    assert Path(f"{path}.json").is_file()
