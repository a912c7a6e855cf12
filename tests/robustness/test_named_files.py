"""Issue 25, classes 6 and 7 (split files and stack patterns): every file the user names is read
safely — one line, exit 2 — and a ``data.layout.stack`` pattern that matches nothing names
itself and a file off the pattern."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from drunet.datasets import LayoutOptions
from drunet.datasets.layouts import discover
from drunet.datasets.splits import MAX_SPLIT_FILE_BYTES, read_split_file
from drunet.errors import DataError
from tests.robustness.conftest import assert_user_error, invoke

SPLIT_FILES = {
    "malformed JSON": (b'{"train": ["000", ', "is not valid JSON"),
    "wrong types": (b'{"train": "000", "val": [1]}', '"train" must be a list of case names'),
    "a mapping of the wrong keys": (b'{"training": []}', 'must map "train" and "val"'),
    "a number": (b"42", "got int"),
    "binary bytes": (bytes(range(256)) * 4, "not UTF-8 text"),
    "deep nesting": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    "a huge integer": (b'{"train": [' + b"9" * 100_000 + b'], "val": []}', "not valid JSON"),
}


@pytest.mark.parametrize("kind", SPLIT_FILES)
def test_a_bad_split_file_is_one_line(good_data, recipe, tmp_path, kind: str) -> None:
    content, fragment = SPLIT_FILES[kind]
    split = tmp_path / "split.json"
    split.write_bytes(content)
    runs = tmp_path / "runs"
    result = invoke(
        "train", "--data", good_data, "--config", recipe, "--split-file", split, "--runs-dir", runs
    )
    assert_user_error(result, str(split), fragment)
    assert len(result.output.strip().splitlines()) == 2, result.output  # device line + error
    assert not runs.exists()


def test_a_huge_split_file_is_refused_before_it_is_read(tmp_path) -> None:
    split = tmp_path / "split.json"
    with split.open("wb") as file:  # sparse: no disk space used
        file.truncate(MAX_SPLIT_FILE_BYTES + 1)
    with pytest.raises(DataError, match=f"has {MAX_SPLIT_FILE_BYTES + 1:,} bytes, more than"):
        read_split_file(split)


@pytest.mark.parametrize("target", ["folder", "fifo"])
def test_a_split_file_that_is_not_a_regular_file_is_refused(tmp_path, target: str) -> None:
    path = tmp_path / "split"
    if target == "folder":
        path.mkdir()
    else:
        os.mkfifo(path)  # reading it would block for ever
    with pytest.raises(DataError, match="is (a folder|not a regular file); give a JSON file"):
        read_split_file(path)


def test_a_stack_pattern_matching_no_file_names_the_pattern_and_a_file(good_data, recipe) -> None:
    result = invoke(
        "train",
        "--data",
        good_data,
        "--config",
        recipe,
        "--set",
        "data.layout.stack={name}_z{index}",
    )
    assert_user_error(
        result,
        "data.layout.stack '{name}_z{index}' matches none of the 5 file(s) in",
        "e.g. 000.png: stem '000' does not match",
        "rename the files to match it (e.g. cellA_z0.png)",
    )
    assert "no image/mask pairs" not in result.output


def test_a_pattern_matching_some_files_lists_the_others(tmp_path: Path) -> None:
    from drunet.datasets import make_synthetic

    data = make_synthetic(tmp_path / "d", num_images=3, sizes=((32, 32),))
    for folder in ("images", "masks"):
        (data / folder / "000.png").rename(data / folder / "a_z0.png")
    with pytest.raises(DataError, match=r"2 problem\(s\).*'001' does not match"):
        discover(data, LayoutOptions(stack="{name}_z{index}"))


@pytest.mark.parametrize("pattern", ["{name}", "{index}{index}", "{stack}_{index}", "{index"])
def test_a_malformed_stack_pattern_is_one_line(good_data, recipe, pattern: str) -> None:
    result = invoke(
        "train", "--data", good_data, "--config", recipe, "--set", f"data.layout.stack={pattern}"
    )
    assert_user_error(result, "data.layout.stack")
