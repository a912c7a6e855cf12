"""Signed 16-bit images (CT-like, negative values) train and predict through the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from drunet.cli.main import app
from drunet.datasets import read_image, read_mask
from drunet.datasets.synthetic import make_synthetic
from tests.conftest import tiny_recipe


def test_int16_with_a_ct_window_trains_and_predicts(runner, tmp_path: Path) -> None:
    data = make_synthetic(tmp_path / "data", 8, sizes=((40, 48),), dtype="int16")
    image = read_image(next((data / "images").iterdir()))
    assert image.dtype == np.int16 and image.min() < 0
    config = tmp_path / "ct.yaml"
    recipe = tiny_recipe(data={"normalization": {"window": [-1000, 1000]}})
    config.write_text(yaml.safe_dump(recipe))
    args = [
        "train",
        "--data",
        str(data),
        "--config",
        str(config),
        "--runs-dir",
        str(tmp_path / "runs"),
    ]
    result = runner.invoke(app, [*args, "--name", "ct"])
    assert result.exit_code == 0, result.output
    stored = yaml.safe_load((tmp_path / "runs" / "ct" / "config.yaml").read_text())
    assert stored["data"]["normalization"]["window"] == [-1000.0, 1000.0]
    out = tmp_path / "preds"
    inputs = sorted((data / "images").iterdir())
    model = str(tmp_path / "runs" / "ct")
    command = ["predict", str(data / "images"), "--model", model, "--out", str(out)]
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    for path in inputs:
        mask = read_mask(out / f"{path.stem}_mask.png")
        assert mask.shape == (40, 48) and set(np.unique(mask)) <= {0, 1}
