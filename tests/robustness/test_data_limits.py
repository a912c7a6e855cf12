"""Untrusted sizes and values in dataset files are checked before anything is allocated.

Issue #13, class 4 (the data part) and class 7: a stray mask value, NaN in stored
normalisation, a hostile or wrong-typed ``dataset.json``, a split file in another encoding.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from drunet.datasets import (
    LayoutOptions,
    MaskOptions,
    NormalizationOptions,
    discover,
    make_synthetic,
    read_mask,
    read_split_file,
    verify_dataset,
    write_image,
    write_mask,
)
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
