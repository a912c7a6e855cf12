"""`drunet predict` / `drunet evaluate` and the Predictor API against bad inputs.

A bad input among good ones is listed at the end (exit 2) while the others are predicted; a bad
argument stops before anything is written. Never a traceback.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from drunet.datasets import read_image, write_image, write_mask
from drunet.errors import DrunetError
from drunet.inference import Predictor
from tests.robustness.conftest import assert_user_error, invoke


def predict(inputs: Path | str, run: Path, out: Path, *extra: str):
    return invoke("predict", inputs, "--model", run, "--out", out, *extra)


def test_empty_input_folder(trained_run, tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    result = predict(tmp_path / "empty", trained_run, tmp_path / "out")
    assert_user_error(result, "no images in", "empty")
    assert not (tmp_path / "out").exists()


def test_missing_path_and_empty_glob(trained_run, tmp_path) -> None:
    assert_user_error(predict(tmp_path / "nope.png", trained_run, tmp_path / "o"), "nope.png")
    result = predict(str(tmp_path / "*.tif"), trained_run, tmp_path / "o")
    assert_user_error(result, "*.tif", "no such image file, folder or glob match")


@pytest.mark.parametrize(
    ("content", "word"),
    [(b"", "0 bytes"), (b"\x89PNG\r\n\x1a\n\x00\x00", "could not be decoded"), (b"hi", "not")],
)
def test_broken_inputs_are_listed_and_the_rest_predicted(
    trained_run, images, tmp_path, content, word
) -> None:
    (images / "002.png").write_bytes(content)
    out = tmp_path / "out"
    result = predict(images, trained_run, out)
    assert_user_error(result, "1 input(s) failed", "002.png", word, code=3)
    masks = sorted(p.name for p in out.glob("*_mask.png"))
    assert masks == ["000_mask.png", "001_mask.png", "003_mask.png", "004_mask.png"]


def test_text_file_with_an_image_extension(trained_run, images, tmp_path) -> None:
    (images / "notes.tif").write_text("not a tiff")
    result = predict(images, trained_run, tmp_path / "out")
    assert_user_error(result, "notes.tif", code=3)
    assert len(list((tmp_path / "out").glob("*_mask.png"))) == 5


def test_nan_and_inf_in_a_float_tiff(trained_run, tmp_path) -> None:
    image = np.random.default_rng(0).random((40, 40), dtype=np.float32)
    image[3, 3], image[4, 4] = np.nan, np.inf
    write_image(tmp_path / "float.tif", image)
    result = predict(tmp_path / "float.tif", trained_run, tmp_path / "out")
    assert_user_error(result, "float.tif", "2 NaN or infinite value(s)", "nan_to_num")
    assert not list((tmp_path / "out").glob("*_mask.png"))


def test_wrong_channel_count_names_both(trained_run, tmp_path) -> None:
    write_image(tmp_path / "rgb.png", np.zeros((40, 40, 3), np.uint8))
    result = predict(tmp_path / "rgb.png", trained_run, tmp_path / "out")
    assert_user_error(result, "rgb.png", "3 channel(s)", "trained on 1")


@pytest.mark.parametrize("shape", [(1, 1), (3, 200), (200, 2)])
def test_tiny_and_extreme_aspect_images(trained_run, tmp_path, shape) -> None:
    write_image(tmp_path / "odd.png", np.full(shape, 200, np.uint8))
    result = predict(tmp_path / "odd.png", trained_run, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert read_image(tmp_path / "out" / "odd_mask.png").shape[:2] == shape


def test_unicode_and_spaces_in_input_and_output_paths(trained_run, images, tmp_path) -> None:
    fancy = tmp_path / "données été" / "scan 1"
    fancy.parent.mkdir()
    images.rename(fancy)
    out = tmp_path / "résultats ü"
    result = predict(fancy, trained_run, out)
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("*_mask.png"))) == 5


def test_inputs_are_never_overwritten(trained_run, images) -> None:
    before = {p: p.read_bytes() for p in images.iterdir()}
    # Predicting into the input folder would be fine, but not when a name collides:
    (images / "000_mask.png").write_bytes((images / "000.png").read_bytes())
    before[images / "000_mask.png"] = (images / "000.png").read_bytes()
    result = predict(images, trained_run, images)
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    for path, content in before.items():
        assert path.read_bytes() == content, path


def test_evaluate_names_mismatched_and_out_of_range_masks(trained_run, tmp_path) -> None:
    data = tmp_path / "data"
    shutil.copytree(trained_run.parent.parent / "data", data)
    write_mask(data / "masks" / "001.png", np.zeros((12, 13), np.uint8))
    bad = np.zeros((40, 40), np.uint8)
    bad[0, 0] = 7
    write_mask(data / "masks" / "002.png", bad)
    result = invoke("evaluate", "--model", trained_run, "--data", data, "--out", tmp_path / "ev")
    assert result.exit_code == 3, result.output  # the other pairs are scored
    assert "Traceback" not in result.output
    assert "001.png" in result.output and "002.png" in result.output


def test_predictor_api_raises_drunet_errors(trained_run) -> None:
    predictor = Predictor.from_run(trained_run)
    with pytest.raises(DrunetError, match="NaN or infinite"):
        predictor.predict(np.full((16, 16), np.nan, np.float32))
    with pytest.raises(DrunetError, match="channel"):
        predictor.predict(np.zeros((16, 16, 4), np.uint8))
    assert predictor.predict(np.zeros((1, 1), np.uint8)).shape == (1, 1)
