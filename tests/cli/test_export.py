"""`drunet export` in-process: ONNX of a trained run gives the Predictor's masks."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort

from drunet.cli.main import app
from drunet.datasets import read_image
from drunet.inference import Predictor


def test_onnx_export_reproduces_the_predictors_masks(runner, trained_run, tiny_data, tmp_path):
    path = tmp_path / "tiny.onnx"
    result = runner.invoke(app, ["export", str(trained_run), "--out", str(path)])
    assert result.exit_code == 0, result.output
    assert "opset 18" in result.output and "matches PyTorch" in result.output
    info = json.loads((tmp_path / "tiny.onnx.json").read_text())
    assert info["opset"] == 18 and info["parity"]["mask_mismatches"] == 0
    assert max(info["parity"]["max_abs_diff"].values()) <= 1e-4

    # Preprocess with nothing but the sidecar, as a user without drunet would.
    norm = info["input"]["normalization"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    predictor = Predictor.from_run(trained_run)
    for image_path in sorted((tiny_data / "images").iterdir()):  # 48×48 and 40×56
        image = read_image(image_path)
        x = (image.astype(np.float32) / 255 - np.float32(norm["mean"][0])) / np.float32(
            norm["std"][0]
        )
        logits = session.run(None, {"image": x.transpose(2, 0, 1)[None]})[0]
        np.testing.assert_array_equal((logits[0, 0] > 0).astype(np.uint8), predictor.predict(image))


def test_pt2_export_writes_the_program_and_its_sidecar(runner, trained_run, tmp_path) -> None:
    result = runner.invoke(
        app, ["export", str(trained_run), "--format", "pt2", "--out", str(tmp_path / "m.pt2")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m.pt2").is_file() and (tmp_path / "m.pt2.json").is_file()


def test_unknown_format_is_a_one_line_error(runner, trained_run) -> None:
    result = runner.invoke(app, ["export", str(trained_run), "--format", "tflite"])
    assert result.exit_code == 2 and "--format 'tflite' is not one of onnx, pt2" in result.output


def test_missing_run_is_named(runner, tmp_path) -> None:
    result = runner.invoke(app, ["export", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "nowhere" in result.output


def test_export_help_documents_the_options(runner) -> None:
    result = runner.invoke(app, ["export", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--format", "--out", "--opset", "--no-check", "--runs-dir"):
        assert option in result.output, option
