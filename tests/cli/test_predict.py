"""`drunet predict` in-process: default model, outputs, bad inputs, no clobbering."""

from __future__ import annotations

import shutil

import numpy as np

from drunet.cli.main import app
from drunet.datasets import read_image, read_mask
from drunet.inference import Predictor


def test_predict_folder_with_the_latest_run(runner, trained_run, tiny_data, tmp_path) -> None:
    out = tmp_path / "preds"
    args = ["predict", str(tiny_data / "images"), "--out", str(out)]
    result = runner.invoke(app, [*args, "--runs-dir", str(trained_run.parent)])
    assert result.exit_code == 0, result.output
    assert str(trained_run / "best.safetensors") in result.output.replace("\n", "")
    predictor = Predictor.from_run(trained_run)
    for image_path in sorted((tiny_data / "images").iterdir()):
        mask = read_mask(out / f"{image_path.stem}_mask.png")
        overlay = read_image(out / f"{image_path.stem}_overlay.png")
        image = read_image(image_path)
        assert mask.shape == image.shape[:2] and overlay.shape == (*image.shape[:2], 3)
        assert np.array_equal(mask, predictor.predict(image))
        assert set(np.unique(mask)) <= {0, 1}


def test_predict_single_file_with_explicit_weights(runner, trained_run, tiny_data, tmp_path):
    image = next((tiny_data / "images").iterdir())
    weights = trained_run / "last.safetensors"
    result = runner.invoke(
        app, ["predict", str(image), "--model", str(weights), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"{image.stem}_mask.png",
        f"{image.stem}_overlay.png",
    ]


def test_no_trained_run_is_explained(runner, tiny_data, tmp_path) -> None:
    args = ["predict", str(tiny_data / "images"), "--runs-dir", str(tmp_path / "empty")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "no trained run" in result.output and "drunet train" in result.output


def test_unreadable_input_is_listed_and_others_predicted(runner, trained_run, tiny_data, tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(tiny_data / "images", folder)
    (folder / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["predict", str(folder), "--model", str(trained_run), "--out", str(out)]
    )
    assert result.exit_code == 2
    assert "broken.png" in result.output
    assert len(list(out.glob("*_mask.png"))) == len(list((tiny_data / "images").iterdir()))


def test_outputs_never_overwrite_inputs(runner, trained_run, tiny_data, tmp_path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    source = next((tiny_data / "images").iterdir())
    shutil.copy(source, folder / "a.png")
    shutil.copy(source, folder / "a_mask.png")  # an input that `a.png`'s mask would replace
    before = (folder / "a_mask.png").read_bytes()
    result = runner.invoke(
        app, ["predict", str(folder), "--model", str(trained_run), "--out", str(folder)]
    )
    assert result.exit_code == 2
    assert "overwrite" in result.output
    assert (folder / "a_mask.png").read_bytes() == before


def test_missing_input_is_named(runner, trained_run, tmp_path) -> None:
    result = runner.invoke(
        app, ["predict", str(tmp_path / "ghost.png"), "--model", str(trained_run)]
    )
    assert result.exit_code == 2
    assert "ghost.png" in result.output
