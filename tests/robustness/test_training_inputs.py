"""`drunet train` / `drunet verify` against broken datasets and configs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from drunet.datasets import write_image, write_mask
from tests.robustness.conftest import assert_user_error, invoke


def train(data: Path, recipe: Path, runs: Path, *extra: str):
    return invoke("train", "--data", data, "--config", recipe, "--runs-dir", runs, *extra)


def test_empty_folder(tmp_path, recipe) -> None:
    (tmp_path / "empty").mkdir()
    result = train(tmp_path / "empty", recipe, tmp_path / "runs")
    assert_user_error(result, "empty")
    assert not (tmp_path / "runs").exists()


def test_images_without_masks(good_data, recipe, tmp_path) -> None:
    for mask in (good_data / "masks").iterdir():
        mask.unlink()
    result = train(good_data, recipe, tmp_path / "runs")
    assert_user_error(result, "000.png")


@pytest.mark.parametrize(
    ("content", "word"),
    [(b"", "0 bytes"), (b"\x89PNG\r\n\x1a\n\x00\x00", "could not be decoded"), (b"hello", "not")],
)
def test_broken_image_files_are_named(good_data, recipe, tmp_path, content, word) -> None:
    (good_data / "images" / "002.png").write_bytes(content)
    result = train(good_data, recipe, tmp_path / "runs")
    assert_user_error(result, "002.png", word)


def test_wrong_extension_is_named(good_data, recipe, tmp_path) -> None:
    # A PNG named .tif still decodes (OpenCV sniffs content); a text file named .tif does not.
    (good_data / "images" / "003.png").unlink()
    (good_data / "images" / "003.tif").write_text("not a tiff")
    result = train(good_data, recipe, tmp_path / "runs")
    assert_user_error(result, "003.tif")


def test_size_mismatch_names_both_sizes(good_data, recipe, tmp_path) -> None:
    write_mask(good_data / "masks" / "001.png", np.zeros((12, 13), np.uint8))
    result = train(good_data, recipe, tmp_path / "runs")
    assert_user_error(result, "001.png")


def test_mask_value_beyond_class_count(good_data, recipe, tmp_path) -> None:
    mask = np.zeros((40, 40), np.uint8)
    mask[0, 0] = 9
    write_mask(good_data / "masks" / "000.png", mask)
    result = train(good_data, recipe, tmp_path / "runs", "--set", "model.num_classes=3")
    assert_user_error(result, "000.png", "9")


def test_nan_and_inf_in_float_tiffs(good_data, recipe, tmp_path) -> None:
    image = np.random.default_rng(0).random((40, 40, 1), dtype=np.float32)
    image[3, 3] = np.nan
    image[4, 4] = np.inf
    (good_data / "images" / "004.png").unlink()
    write_image(good_data / "images" / "004.tif", image)
    result = train(good_data, recipe, tmp_path / "runs")
    assert_user_error(result, "004.tif")
    assert "NaN" in result.output or "nan" in result.output or "finite" in result.output


@pytest.mark.parametrize("shape", [(1, 1), (3, 200)])
def test_tiny_and_extreme_aspect_images_train(good_data, recipe, tmp_path, shape) -> None:
    image = np.random.default_rng(1).integers(0, 255, (*shape, 1), dtype=np.uint8)
    write_image(good_data / "images" / "005.png", image)
    write_mask(good_data / "masks" / "005.png", (image[:, :, 0] > 128).astype(np.uint8))
    result = train(good_data, recipe, tmp_path / "runs", "--name", "ok")
    assert result.exit_code == 0, result.output


def test_unicode_and_spaces_in_paths(good_data, recipe, tmp_path) -> None:
    fancy = tmp_path / "données été" / "set 1"
    fancy.parent.mkdir()
    good_data.rename(fancy)
    runs = tmp_path / "runs ü"
    result = train(fancy, recipe, runs, "--name", "naïve run")
    assert result.exit_code == 0, result.output
    assert (runs / "naïve run" / "best.safetensors").is_file()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_runs_folder(good_data, recipe, tmp_path) -> None:
    runs = tmp_path / "ro"
    runs.mkdir()
    runs.chmod(0o500)
    try:
        result = train(good_data, recipe, runs)
        assert_user_error(result, "ro")
    finally:
        runs.chmod(0o700)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("train.epochs=0", "train.epochs"),
        ("train.lr=-1", "train.lr"),
        ("data.batch_size=0", "data.batch_size"),
        ("train.weight_decay=-0.1", "train.weight_decay"),
        ("data.augmentation.patch_size=0", "data.augmentation.patch_size"),
        ("train.epocs=3", "train.epocs"),
        ("train.epochs=many", "train.epochs"),
    ],
)
def test_bad_hyper_parameters_name_the_key(good_data, recipe, tmp_path, override, key) -> None:
    result = train(good_data, recipe, tmp_path / "runs", "--set", override)
    assert_user_error(result, key)
    assert not (tmp_path / "runs").exists()


def test_yaml_with_wrong_types(good_data, tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  batch_size: [1, 2]\nmodel:\n  nmae: drunet\n")
    result = invoke("train", "--data", good_data, "--config", bad)
    assert_user_error(result, "data.batch_size", "model.nmae", str(bad))


def test_yaml_syntax_error_names_the_file(good_data, tmp_path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("train: [epochs: 3\n")
    result = invoke("train", "--data", good_data, "--config", bad)
    assert_user_error(result, "broken.yaml")


def test_decompression_bomb_is_refused_with_the_limit(tmp_path) -> None:
    # The limit is read once per process, so the check runs in a fresh interpreter.
    import subprocess
    import sys

    import cv2

    path = tmp_path / "big.png"
    cv2.imwrite(str(path), np.zeros((2000, 1000), np.uint8))  # 2 MP, a few kB on disk
    code = (
        "from drunet.datasets import read_image\n"
        "from drunet.errors import DataError\n"
        f"try:\n    read_image({str(path)!r})\n"
        "except DataError as err:\n    print(err)\n"
    )
    env = {**os.environ, "DRUNET_MAX_IMAGE_PIXELS": "1000000"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert "big.png" in out.stdout and "1,000,000 pixels" in out.stdout
    assert "DRUNET_MAX_IMAGE_PIXELS" in out.stdout
