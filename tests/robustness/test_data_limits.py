"""Untrusted sizes and values in dataset files are checked before anything is allocated.

Issue #13, class 4 (the data part) and class 7: a stray mask value, NaN in stored
normalisation, a hostile or wrong-typed ``dataset.json``, a split file in another encoding.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from pydantic import ValidationError

from drunet.datasets import (
    LayoutOptions,
    MaskOptions,
    NormalizationOptions,
    discover,
    make_synthetic,
    read_image,
    read_mask,
    read_split_file,
    verify_dataset,
    write_image,
    write_mask,
)
from drunet.datasets.limits import DEFAULT_MAX_IMAGE_PIXELS, declared_pixels, parse_limit
from drunet.errors import DataError

from .conftest import assert_user_error, invoke

# --- a stray mask value does not become 60001 classes ---------------------------------------


@pytest.fixture
def stray_value_data(tmp_path: Path) -> Path:
    root = make_synthetic(tmp_path / "data", num_images=4, sizes=((32, 32),), seed=1)
    mask = read_mask(root / "masks" / "001.png")
    mask[0, 0] = 60000
    write_mask(root / "masks" / "001.png", mask)
    return root


def test_a_mask_value_above_the_cap_is_an_error_naming_file_value_and_fix(stray_value_data):
    report = verify_dataset(stray_value_data)
    [error] = report.errors
    assert error.path == stray_value_data / "masks" / "001.png"
    assert "60000" in error.message and "max_classes = 256" in error.message
    assert "--set data.masks.max_classes=60001" in error.fix
    assert report.summary is not None and report.summary.num_classes == 2  # not 60001
    with pytest.raises(DataError, match=r"001\.png.*60000"):
        report.raise_for_errors()


def test_training_refuses_the_stray_value_before_building_anything(stray_value_data, recipe):
    runs = stray_value_data.parent / "runs"
    result = invoke("train", "--data", stray_value_data, "--config", recipe, "--runs-dir", runs)
    assert_user_error(result, "001.png", "60000", "data.masks.max_classes")
    assert not list(runs.rglob("*.safetensors"))


def test_a_raised_cap_or_configured_classes_accept_the_value(stray_value_data):
    raised = verify_dataset(stray_value_data, MaskOptions(max_classes=60001))
    assert not raised.errors and raised.summary and raised.summary.num_classes == 60001
    configured = verify_dataset(stray_value_data, num_classes=60001)  # model.num_classes
    assert not configured.errors


def test_the_cap_counts_classes_not_the_ignore_value(tmp_path):
    root = make_synthetic(tmp_path / "data", num_images=3, sizes=((32, 32),), seed=2)
    mask = read_mask(root / "masks" / "000.png")
    mask[:2, :2] = 65535
    write_mask(root / "masks" / "000.png", mask)
    report = verify_dataset(root, MaskOptions(ignore_index=65535))
    assert not report.errors and report.summary and report.summary.num_classes == 2
    assert report.summary.ignored_share > 0


# --- stored normalisation is finite ---------------------------------------------------------


@pytest.mark.parametrize("key", ["mean", "std", "clip_low", "clip_high"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_normalisation_values_are_rejected_naming_the_key(key, bad):
    values = {"mean": [0.5], "std": [0.2], "clip_low": [0.0], "clip_high": [1.0]}
    values[key] = [bad]
    with pytest.raises(ValidationError) as info:
        NormalizationOptions(**values)
    assert info.value.errors()[0]["loc"][0] == key


def test_non_finite_clip_percentiles_are_rejected():
    with pytest.raises(ValidationError, match="finite"):
        NormalizationOptions(clip_percentiles=(float("nan"), 99.0))


@pytest.mark.parametrize("window", [(float("nan"), 400.0), (-1000.0, float("inf"))])
def test_non_finite_windows_are_rejected_naming_the_key(window):
    with pytest.raises(ValidationError) as info:
        NormalizationOptions(window=window)
    assert info.value.errors()[0]["loc"][0] == "window"


# --- dataset.json is data, not trusted configuration -----------------------------------------


def _nnunet(root: Path, meta_text: str | bytes) -> Path:
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for case in ("a", "b", "c"):
        write_image(root / "imagesTr" / f"{case}_0000.png", image)
        write_mask(root / "labelsTr" / f"{case}.png", (image % 2).astype(np.uint8))
    path = root / "dataset.json"
    if isinstance(meta_text, bytes):
        path.write_bytes(meta_text)
    else:
        path.write_text(meta_text, encoding="utf-8")
    return root


def test_deeply_nested_dataset_json_is_a_data_error(tmp_path):
    depth = 100_000
    root = _nnunet(tmp_path, '{"labels": ' + "[" * depth + "]" * depth + "}")
    with pytest.raises(DataError, match=r"dataset\.json.*nested too deeply"):
        discover(root)


@pytest.mark.parametrize(
    ("meta", "key"),
    [
        ({"labels": ["background", "cell"]}, "'labels'"),
        ({"labels": "background"}, "'labels'"),
        ({"labels": {"background": 0, "cell": "1"}}, "labels.cell"),
        ({"labels": {"background": 0, "cell": True}}, "labels.cell"),
        ({"labels": {"0": "background", "1": 7}}, "labels.1"),
        ({"channel_names": ["CT"]}, "'channel_names'"),
        ({"channel_names": {"0": 5}}, "channel_names.0"),
        ({"channel_names": {"zero": "CT"}}, "channel_names.zero"),
        ({"modality": {"0": None, "1": "MR"}}, "modality.0"),
        ({"file_ending": 3}, "'file_ending'"),
    ],
)
def test_wrong_typed_dataset_json_fields_are_one_line_errors(tmp_path, meta, key):
    root = _nnunet(tmp_path, json.dumps(meta))
    with pytest.raises(DataError) as info:
        discover(root)
    message = str(info.value)
    assert "dataset.json" in message and key in message and "\n" not in message


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1"])
def test_dataset_json_in_another_encoding_says_save_as_utf8(tmp_path, encoding):
    root = _nnunet(
        tmp_path,
        json.dumps({"labels": {"fond": 0, "cellule é": 1}}, ensure_ascii=False).encode(encoding),
    )
    with pytest.raises(DataError, match=r"dataset\.json.*save it as UTF-8"):
        discover(root)


# --- split files ------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "latin-1"])
def test_split_file_in_another_encoding_names_the_file_and_utf8(tmp_path, encoding):
    path = tmp_path / "split.json"
    path.write_bytes(
        json.dumps({"train": ["café"], "val": ["b"]}, ensure_ascii=False).encode(encoding)
    )
    with pytest.raises(DataError, match=r"split\.json.*save it as UTF-8"):
        read_split_file(path)


def test_deeply_nested_split_file_is_a_data_error(tmp_path):
    path = tmp_path / "split.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DataError, match=r"split\.json"):
        read_split_file(path, fold=0)


def test_split_file_encoding_error_reaches_discover(tmp_path):
    root = make_synthetic(tmp_path / "data", num_images=3, sizes=((32, 32),))
    (root / "split.json").write_bytes(
        json.dumps({"train": ["000"], "val": ["001"]}).encode("utf-16")
    )
    with pytest.raises(DataError, match="save it as UTF-8"):
        discover(root, LayoutOptions(split_file=Path("split.json")))


# --- the pixel limit: environment, totals, every format ------------------------------------

_READ = (
    "import os, sys\n"
    "from drunet.datasets import read_image\n"
    "from drunet.errors import DataError\n"
    "print('opencv', os.environ.get('OPENCV_IO_MAX_IMAGE_PIXELS'))\n"
    "try:\n    print(read_image(sys.argv[1]).shape)\n"
    "except DataError as err:\n    print('DataError', err)\n"
)


def _run(code: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if "MAX_IMAGE_PIXELS" not in k} | env
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=environ, capture_output=True, text=True
    )


@pytest.fixture
def small_png(tmp_path: Path) -> Path:
    path = tmp_path / "small.png"
    write_image(path, np.zeros((20, 30), np.uint8))
    return path


@pytest.mark.parametrize("value", ["abc", "-1", "1e9", "0", "99999999999999999999999"])
def test_a_malformed_pixel_limit_is_a_one_line_error_not_a_native_crash(small_png, value):
    out = _run(_READ, str(small_png), DRUNET_MAX_IMAGE_PIXELS=value)
    assert out.returncode == 0, out.stderr[-2000:]  # 134 (SIGABRT) before the fix
    assert f"opencv {2**28}" in out.stdout  # the bad value never reached OpenCV
    [line] = [line for line in out.stdout.splitlines() if line.startswith("DataError")]
    assert "DRUNET_MAX_IMAGE_PIXELS" in line and repr(value) in line and "whole number" in line


def test_verify_reports_a_malformed_limit_without_crashing(good_data):
    code = "from drunet.cli.main import main; main()"
    out = _run(code, "verify", str(good_data), DRUNET_MAX_IMAGE_PIXELS="abc", COLUMNS="300")
    assert out.returncode == 2, out.stderr[-2000:]
    [line] = (out.stdout + out.stderr).strip().splitlines()  # one line, not one per file
    assert "DRUNET_MAX_IMAGE_PIXELS is 'abc'" in line


def test_importing_drunet_keeps_the_users_opencv_limit_and_applies_its_own(tmp_path):
    path = tmp_path / "big.png"
    write_image(path, np.zeros((2000, 1000), np.uint8))  # 2 MP
    out = _run(
        _READ,
        str(path),
        OPENCV_IO_MAX_IMAGE_PIXELS="1000000000000",
        DRUNET_MAX_IMAGE_PIXELS="1000000",
    )
    assert "opencv 1000000000000" in out.stdout  # not overwritten
    assert "DataError" in out.stdout and "2,000,000 pixels" in out.stdout
    assert "1,000,000 pixels allowed (DRUNET_MAX_IMAGE_PIXELS" in out.stdout


def test_a_malformed_opencv_limit_is_replaced_rather_than_crashing(small_png):
    out = _run(_READ, str(small_png), OPENCV_IO_MAX_IMAGE_PIXELS="lots")
    assert out.returncode == 0 and f"opencv {2**28}" in out.stdout and "(20, 30, 1)" in out.stdout


def test_the_default_limit_is_2_to_the_28():
    assert DEFAULT_MAX_IMAGE_PIXELS == 2**28
    assert parse_limit("268435456") == 2**28
    assert [parse_limit(v) for v in ("abc", "-1", "1e9", "0", "", " 12 ")] == [None] * 5 + [12]


@pytest.fixture
def limit(monkeypatch: pytest.MonkeyPatch):
    def set_limit(pixels: int) -> None:
        monkeypatch.setenv("DRUNET_MAX_IMAGE_PIXELS", str(pixels))

    return set_limit


def test_the_limit_applies_to_the_total_of_a_multi_page_tiff(tmp_path, limit):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.zeros((3, 100, 100), np.uint8), photometric="minisblack")
    limit(25_000)  # each page (10 000) fits, the stack (30 000) does not
    with pytest.raises(DataError, match=r"stack\.tif.*30,000 pixels.*25,000 pixels allowed"):
        read_image(path)
    limit(30_000)
    assert read_image(path).shape == (100, 100, 3)


def test_the_limit_counts_the_decoded_bytes_of_a_tiff(tmp_path, limit):
    path = tmp_path / "wide.tif"  # 400 pixels of 8 float64 samples: 64 bytes each
    tifffile.imwrite(path, np.zeros((20, 20, 8)), photometric="minisblack", planarconfig="contig")
    limit(1000)  # 400 pixels fit, 25 600 bytes exceed 16 bytes × 1000
    with pytest.raises(DataError, match=r"wide\.tif.*would decode to"):
        read_image(path)


def test_the_limit_applies_to_palette_png_masks(tmp_path, limit):
    from PIL import Image

    path = tmp_path / "palette.png"
    image = Image.fromarray(np.zeros((200, 100), np.uint8), mode="P")
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.save(path)
    limit(10_000)
    with pytest.raises(DataError, match=r"palette\.png.*20,000 pixels"):
        read_mask(path)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif"])
def test_the_limit_is_checked_from_the_header_of_every_format(tmp_path, limit, suffix):
    path = tmp_path / f"image{suffix}"
    write_image(path, np.zeros((120, 100, 3), np.uint8))
    limit(11_999)
    with pytest.raises(DataError, match=rf"image\{suffix}.*12,000 pixels.*default 2\*\*28"):
        read_image(path)
    limit(12_000)
    assert read_image(path).shape == (120, 100, 3)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp"])
def test_the_header_is_read_before_decoding(tmp_path, suffix):
    write_image(tmp_path / f"image{suffix}", np.zeros((120, 100, 3), np.uint8))
    data = np.fromfile(tmp_path / f"image{suffix}", np.uint8)
    kind = {".png": "PNG", ".jpg": "JPEG", ".bmp": "BMP"}[suffix]
    assert declared_pixels(data, kind) == 12_000


def test_a_dataset_json_with_more_labels_than_the_cap_is_an_error(tmp_path):
    labels = {"background": 0, **{f"class {k}": k for k in range(1, 300)}}
    root = _nnunet(tmp_path, json.dumps({"labels": labels}))
    report = verify_dataset(root)
    [error] = report.errors
    assert "300 labels" in error.message and "max_classes=300" in error.fix
    assert report.summary is not None and report.summary.num_classes == 2
    assert not verify_dataset(root, MaskOptions(max_classes=300)).errors
