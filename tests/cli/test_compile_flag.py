"""`drunet predict --compile`: the flag reaches the Predictor; same masks as without it."""

from __future__ import annotations

import numpy as np
import pytest

from drunet.inference import network as network_module
from tests.inference.test_compile import ShapeRecorder


@pytest.fixture
def shapes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    seen: list[tuple[int, ...]] = []
    monkeypatch.setattr(network_module, "_compiled", lambda m: ShapeRecorder(m, seen))
    return seen


def test_cli_compile_flag_reaches_the_predictor_and_writes_the_same_masks(
    runner, trained_run, tiny_data, tmp_path, shapes
) -> None:
    from drunet.cli.main import app
    from drunet.datasets import read_mask

    base = ["predict", str(tiny_data / "images"), "--model", str(trained_run), "--no-overlay"]
    plain = runner.invoke(app, [*base, "--out", str(tmp_path / "plain")])
    assert plain.exit_code == 0, plain.output
    assert shapes == []
    compiled = runner.invoke(app, [*base, "--out", str(tmp_path / "compiled"), "--compile"])
    assert compiled.exit_code == 0, compiled.output
    assert shapes  # every forward pass went through the compiled module
    masks = sorted((tmp_path / "plain").glob("*_mask.png"))
    assert len(masks) == 6
    for mask in masks:
        np.testing.assert_array_equal(read_mask(mask), read_mask(tmp_path / "compiled" / mask.name))
    onnx = runner.invoke(
        app, [*base, "--out", str(tmp_path / "x"), "--compile", "--backend", "onnxruntime"]
    )
    assert onnx.exit_code == 2 and "--compile compiles the torch network" in onnx.output
    assert not (tmp_path / "x").exists()
