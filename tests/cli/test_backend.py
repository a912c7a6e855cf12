"""`drunet predict --backend onnxruntime`: the cached ONNX graph gives PyTorch's masks."""

from __future__ import annotations

import numpy as np
import pytest

from drunet.cli.main import app
from drunet.datasets import read_mask


@pytest.mark.integration
def test_onnxruntime_backend_writes_the_torch_masks(runner, trained_run, tiny_data, tmp_path):
    pytest.importorskip("onnxruntime")
    images = tiny_data / "images"
    base = ["predict", str(images), "--model", str(trained_run), "--no-overlay"]
    torch_run = runner.invoke(app, [*base, "--out", str(tmp_path / "torch"), "--precision", "fp32"])
    assert torch_run.exit_code == 0, torch_run.output
    onnx_run = runner.invoke(
        app, [*base, "--out", str(tmp_path / "onnx"), "--backend", "onnxruntime"]
    )
    assert onnx_run.exit_code == 0, onnx_run.output
    masks = sorted((tmp_path / "torch").glob("*_mask.png"))
    assert masks
    for mask in masks:
        expected = read_mask(mask)
        got = read_mask(tmp_path / "onnx" / mask.name)
        assert np.mean(expected == got) > 0.999
    assert list(trained_run.glob("*.onnx-cache/*.onnx"))  # built once, cached beside the weights
    bad = runner.invoke(app, [*base, "--out", str(tmp_path / "x"), "--backend", "tensorrt"])
    assert bad.exit_code == 2 and "unknown backend 'tensorrt'" in bad.output
