"""Fuzzing the readers of user files: any input gives a result or a user error naming it.

Image and mask files (random bytes; real PNG/TIFF/JPEG/BMP files truncated or with bytes
flipped; random bytes behind a real header; random names and suffixes) either decode to a sane
array or raise ``DataError`` naming the file. Valid masks read back exactly what was written,
0/255 rule included. Config dicts, YAML files and ``--set`` overrides either load or raise
``ConfigError`` naming the key, the override or the file. Never another exception, a hang or a
crash.

The inputs come from ``fuzz_inputs.py``. Counts here are small so the default suite stays
fast; ``fuzz_long.py`` next to this file runs the same properties (``PROPERTIES``) with many
more examples.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from drunet.config import (
    ExperimentConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
)
from drunet.datasets import MaskOptions, read_image, read_mask, write_image, write_mask
from drunet.datasets.io import IMAGE_DTYPES
from drunet.datasets.masks import decode_mask
from drunet.errors import ConfigError, DataError
from tests.datasets.test_formats import _expected, _palette_png
from tests.robustness.fuzz_inputs import (
    MASK_NAME_SUFFIXES,
    PALETTE,
    any_files,
    config_dicts,
    corrupted_files,
    file_bytes,
    file_names,
    fix_png_crcs,
    fresh_folder,
    index_masks,
    mask_options,
    overrides,
    random_files,
    set_size,
    written,
    yaml_files,
)

PROPERTIES: dict[str, tuple[Callable[..., None], dict[str, st.SearchStrategy]]] = {}
OUTCOMES: Counter[str] = Counter()  # how the examples ended; fuzz_long.py reports it


def fuzz(max_examples: int, **strategies: st.SearchStrategy) -> Callable:
    """``@given(**strategies)`` with a bounded count, marked ``integration`` (random examples);
    records the property for fuzz_long.py."""

    def decorate(test: Callable[..., None]) -> Callable[..., None]:
        PROPERTIES[test.__name__] = (test, strategies)
        bounded = settings(max_examples=max_examples, deadline=None)(given(**strategies)(test))
        return pytest.mark.integration(bounded)

    return decorate


# ---- images ---------------------------------------------------------------------------------


def check_image_file(data: bytes, name: str) -> None:
    """Decodes to ``(H, W, C)`` uint8/uint16/float32, or a ``DataError`` naming the file."""
    with written(data, name) as path:
        try:
            image = read_image(path)
        except DataError as err:
            assert str(path) in str(err), str(err)
            OUTCOMES["DataError"] += 1
            return
    assert isinstance(image, np.ndarray) and image.ndim == 3, getattr(image, "shape", image)
    assert image.dtype in IMAGE_DTYPES and min(image.shape) >= 1
    OUTCOMES["decoded"] += 1


@fuzz(60, data=random_files(), name=file_names())
def test_random_bytes_as_images(data: bytes, name: str) -> None:
    check_image_file(data, name)


@fuzz(80, data=corrupted_files(), name=file_names())
def test_corrupted_images(data: bytes, name: str) -> None:
    check_image_file(data, name)


# ---- masks ----------------------------------------------------------------------------------


@fuzz(80, data=any_files(masks=True), name=file_names(MASK_NAME_SUFFIXES), options=mask_options)
def test_broken_files_as_masks(data: bytes, name: str, options: MaskOptions) -> None:
    """Decodes to ``(H, W)`` non-negative int64 indices, or a ``DataError`` naming the file."""
    with written(data, name) as path:
        try:
            decoded = decode_mask(path, options)
        except DataError as err:
            assert str(path) in str(err), str(err)
            OUTCOMES["DataError"] += 1
            return
    mask = decoded.mask
    assert mask.ndim == 2 and min(mask.shape) >= 1 and mask.dtype == np.int64
    assert mask.min() >= 0
    if decoded.binary_255:
        assert set(np.unique(mask).tolist()) <= {0, 1}
    OUTCOMES[f"decoded ({decoded.source})"] += 1


@fuzz(60, mask=index_masks(), name=file_names(MASK_NAME_SUFFIXES), options=mask_options)
def test_valid_masks_read_back_exactly(mask: np.ndarray, name: str, options: MaskOptions) -> None:
    """Values come back as written, except the documented 0/255 → 0/1 rule (masks.py, rule 4)."""
    with fresh_folder() as folder:
        write_mask(folder / name, mask)
        decoded = decode_mask(folder / name, options)
    np.testing.assert_array_equal(decoded.values, np.unique(mask))
    expected = _expected(mask, options)  # 0/255 only, 255 present, binary_255, ignore ≠ 255
    assert decoded.binary_255 == (not np.array_equal(expected, mask))
    assert decoded.mask.dtype == np.int64 and decoded.source == "index"
    np.testing.assert_array_equal(decoded.mask, expected)
    OUTCOMES["0/255 → 0/1" if decoded.binary_255 else "unchanged"] += 1


# ---- configuration --------------------------------------------------------------------------


def _check_accepted(config: ExperimentConfig) -> None:
    """What a run folder stores (``config_to_dict`` → YAML) loads back to the same settings."""
    stored = yaml.safe_dump(config_to_dict(config), sort_keys=False)
    again = config_from_dict(yaml.safe_load(stored))
    assert yaml.safe_dump(config_to_dict(again), sort_keys=False) == stored


@fuzz(80, data=config_dicts)
def test_random_config_dicts(data: dict[Any, Any]) -> None:
    """Loads, or a ``ConfigError`` naming the source and an offending top-level key."""
    try:
        config = config_from_dict(data, source="fuzz.yaml")
    except ConfigError as err:
        message = str(err)
        assert message.startswith("invalid configuration in fuzz.yaml: "), message
        # A key is quoted alone or as the start of a path; a non-string key (YAML reads `no:`
        # as False) is shown as the value that was given.
        assert any(
            name in message for key in data for name in (f"'{key}'", f"'{key}.", f"(got {key!r})")
        ), message
        OUTCOMES["ConfigError"] += 1
        return
    _check_accepted(config)
    OUTCOMES["loaded"] += 1


@fuzz(60, data=yaml_files, name=file_names((".yaml", ".yml", "")))
def test_random_yaml_files(data: bytes, name: str) -> None:
    """Loads, or a ``ConfigError`` naming the file."""
    with written(data, name) as path:
        try:
            config = load_config(path)
        except ConfigError as err:
            assert str(path) in str(err), str(err)
            OUTCOMES["ConfigError"] += 1
            return
    _check_accepted(config)
    OUTCOMES["loaded"] += 1


@fuzz(60, items=overrides)
def test_random_overrides(items: list[str]) -> None:
    """Applies, or a ``ConfigError`` quoting the offending override."""
    try:
        config = apply_overrides(ExperimentConfig(), items)
    except ConfigError as err:
        message = str(err)
        assert any(item in message or repr(item) in message for item in items), message
        OUTCOMES["ConfigError"] += 1
        return
    _check_accepted(config)
    OUTCOMES["applied"] += 1


# ---- what the fuzzing found, pinned ---------------------------------------------------------


def test_palette_mask_declaring_a_huge_size_is_a_data_error(tmp_path: Path) -> None:
    # Pillow's decompression-bomb guard raised its own DecompressionBombError past read_mask.
    seed = file_bytes(lambda p: _palette_png(p, np.zeros((4, 4)), PALETTE), "seed.png")
    path = tmp_path / "huge.png"
    path.write_bytes(bytes(fix_png_crcs(set_size(bytearray(seed), 2**31, 3))))
    with pytest.raises(DataError, match=r"huge\.png.*decompression bomb"):
        read_mask(path)


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_config_file_not_in_utf8_is_a_config_error(tmp_path: Path, encoding: str) -> None:
    # read_text raised UnicodeDecodeError (a ValueError) instead of a ConfigError.
    path = tmp_path / "zürich.yaml"
    path.write_bytes("name: zürich\n".encode(encoding))
    with pytest.raises(ConfigError, match="not UTF-8 text") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_an_empty_key_is_shown_as_empty_not_as_the_top_level() -> None:
    # The key "" was reported as "unknown key '(top level)'".
    with pytest.raises(ConfigError, match=r"unknown key ''"):
        config_from_dict({"": 1})


def test_config_nested_too_deeply_is_a_config_error(tmp_path: Path) -> None:
    # PyYAML's RecursionError escaped load_config (and apply_overrides). Deeper than the
    # interpreter's recursion limit, whatever it is: importing bioimageio.spec raises it from
    # 1000 to 3000 for the rest of the process, and then 1000 levels parse (and fail as YAML).
    depth = sys.getrecursionlimit() + 100
    path = tmp_path / "deep.yaml"
    path.write_text("loss: " + "[" * depth, encoding="utf-8")
    with pytest.raises(ConfigError, match="too deeply") as info:
        load_config(path)
    assert str(path) in str(info.value)
    config = apply_overrides(ExperimentConfig(), ["name=" + "[" * depth])
    assert config.name == "[" * depth  # not YAML: kept as the text


@pytest.mark.parametrize(
    "text",
    [
        "data: {augmentation: {ops: [&a {name: blur, x: [*a]}]}}\n",  # an alias inside itself
        "data: {augmentation: {ops: [{name: blur, x: "
        + "[" * 300
        + "]" * 300
        + "}]}}\n",  # beyond pydantic's depth
        "data: {augmentation: {ops: [{name: blur, x: !!binary gA==}]}}\n",  # bytes, not text
    ],
)
def test_config_values_that_cannot_be_saved_with_the_run_are_config_errors(
    tmp_path: Path, text: str
) -> None:
    # These loaded, then config_to_dict (run folder, weights) raised ValueError.
    path = tmp_path / "exp.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="'data.augmentation.ops'|YAML aliases") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_png_chunk_longer_than_the_file_is_refused_before_decoding(tmp_path: Path) -> None:
    # OpenCV allocated the declared length first: a 70-byte file claiming a 2 GB IDAT chunk
    # cost 2 GB of memory and 1.6 s before failing.
    data = bytearray(file_bytes(lambda p: write_image(p, np.zeros((4, 4), np.uint8)), "s.png"))
    idat = data.index(b"IDAT") - 4
    data[idat : idat + 4] = (2**31 - 1).to_bytes(4, "big")
    path = tmp_path / "cut.png"
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"cut\.png.*IDAT chunk claims more bytes"):
        read_image(path)
