"""`--json` on predict and export: stdout is one JSON document of what was written and failed."""

from __future__ import annotations

import json

from drunet.cli.main import app


def test_predict_json_lists_written_and_failed(runner, trained_run, tiny_data, tmp_path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    good = sorted((tiny_data / "images").iterdir())[:2]
    for image in good:
        (inputs / image.name).write_bytes(image.read_bytes())
    (inputs / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    args = ["predict", str(inputs), "--model", str(trained_run), "--out", str(out), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 3, result.output
    report = json.loads(result.stdout)
    assert report["written"] == [str(out / f"{image.stem}_mask.png") for image in good]
    assert list(report["failed"]) == [str(inputs / "broken.png")]
    assert "not an image" in report["failed"][str(inputs / "broken.png")]
    assert report["skipped"] == [] and report["models"] == [str(trained_run / "best.safetensors")]


def test_export_json_names_the_files_and_the_parity(runner, trained_run, tmp_path) -> None:
    path = tmp_path / "m.onnx"
    result = runner.invoke(app, ["export", str(trained_run), "--out", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["path"] == str(path) and report["sidecar"] == str(path) + ".json"
    assert report["format"] == "onnx" and report["opset"] == 18
    assert report["parity"]["mask_mismatches"] == 0
    assert max(report["parity"]["max_abs_diff"].values()) <= report["parity"]["tolerance"]
