"""Misleading messages and tracebacks, through the CLI: each is one line naming the file or flag
and the fix, exit code 2, nothing written."""

from __future__ import annotations

import pytest

import drunet.export as export_module
from drunet.export_checks import opset_range
from tests.robustness.conftest import assert_user_error, invoke


def test_predict_into_a_file_says_a_folder_is_needed(trained_run, images, tmp_path) -> None:
    out = tmp_path / "preds"
    out.write_text("not a folder")
    result = invoke("predict", images, "--model", trained_run, "--out", out)
    assert_user_error(result, f"--out {out} is a file", "choose a folder")
    assert "free some space" not in result.output and "File exists" not in result.output
    assert out.read_text() == "not a folder"
    assert sorted(tmp_path.iterdir()) == sorted([out, images])


def test_predict_into_a_folder_under_a_file_names_the_file(trained_run, images, tmp_path) -> None:
    blocker = tmp_path / "preds"
    blocker.write_text("not a folder")
    result = invoke("predict", images, "--model", trained_run, "--out", blocker / "sub")
    assert_user_error(result, f"is inside {blocker}, which is a file", "choose a folder")
    assert "free some space" not in result.output


@pytest.mark.parametrize("opset", [0, 7, 17, 99])
def test_export_refuses_an_opset_the_exporter_cannot_write(trained_run, tmp_path, opset) -> None:
    low, high = opset_range()
    out = tmp_path / "m.onnx"
    result = invoke("export", trained_run, "--out", out, "--opset", opset)
    assert_user_error(result, f"--opset {opset} is not supported", f"opsets {low} to {high}")
    assert len(result.output.strip().splitlines()) == 1  # no logged traceback either
    assert list(tmp_path.iterdir()) == []


def test_export_whose_parity_check_fails_writes_nothing(trained_run, tmp_path, monkeypatch):
    monkeypatch.setattr(export_module, "to_pt2", lambda model, channels: b"program")
    monkeypatch.setattr(export_module, "runner", lambda data, fmt: None)
    far_off = export_module.Parity({"64x64": 0.5, "97x131": 2e-5})
    monkeypatch.setattr(export_module, "parity", lambda *args: far_off)
    out = tmp_path / "m.pt2"
    result = invoke("export", trained_run, "--out", out, "--format", "pt2")
    assert_user_error(result, "differs from PyTorch by 0.5", "nothing was written")
    assert list(tmp_path.iterdir()) == []


def test_export_under_a_file_names_the_file(trained_run, tmp_path) -> None:
    blocker = tmp_path / "deploy"
    blocker.write_text("a file")
    result = invoke("export", trained_run, "--out", blocker / "m.onnx")
    assert_user_error(result, f"is inside {blocker}, a file", "choose another --out")
    assert "free some space" not in result.output
