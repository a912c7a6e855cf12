"""A 12-page stack: trained on as slices, predicted page by page into a 12-page mask TIFF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from drunet import train
from drunet.config import config_from_dict
from drunet.datasets import read_image, write_mask
from drunet.datasets.synthetic import make_synthetic
from drunet.inference import Predictor
from tests.conftest import tiny_recipe


def test_a_stack_trains_and_predicts_page_by_page(tmp_path: Path) -> None:
    root = make_synthetic(tmp_path / "data", 24, sizes=((40, 48),), stack_slices=12)
    recipe = tiny_recipe(data={"root": str(root)}, runs_dir=str(tmp_path / "runs"), name="s")
    result = train(config_from_dict(recipe))
    stack = root / "images" / "stack00.tif"
    predictor = Predictor.from_run(result.run_dir, device="cpu")
    masks = predictor.predict_stack(stack)
    assert masks.shape == (12, 40, 48)
    for page in range(12):  # each page equals predicting that page alone
        np.testing.assert_array_equal(masks[page], predictor.predict(read_image(stack, page=page)))
    out = tmp_path / "stack00_mask.tif"
    write_mask(out, masks)
    assert len(tifffile.TiffFile(out).pages) == 12
    np.testing.assert_array_equal(tifffile.imread(out), masks)


def test_drunet_predict_of_a_stack_writes_a_mask_stack(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from drunet.cli.main import app

    root = make_synthetic(tmp_path / "data", 24, sizes=((40, 48),), stack_slices=12)
    recipe = tiny_recipe(data={"root": str(root)}, runs_dir=str(tmp_path / "runs"), name="s")
    run = train(config_from_dict(recipe)).run_dir
    stack = root / "images" / "stack01.tif"
    out = tmp_path / "out"
    args = ["predict", str(stack), "--model", str(run), "--out", str(out), "--device", "cpu"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    written = tifffile.imread(out / "stack01_mask.tif")
    assert written.shape == (12, 40, 48)
    predictor = Predictor.from_run(run, device="cpu")
    for page in range(12):  # each page equals predicting that page alone
        np.testing.assert_array_equal(
            written[page], predictor.predict(read_image(stack, page=page))
        )
    again = CliRunner().invoke(app, [*args, "--continue"])
    assert again.exit_code == 0, again.output
