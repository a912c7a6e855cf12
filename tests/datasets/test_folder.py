"""Pairs are matched by stem and bad folders explained (``discover``); hold-out splits by seed."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import pytest

from drunet.datasets import Pair, discover, holdout_split, read_pair
from drunet.datasets.folder import scan_pairs
from drunet.errors import DataError

IMAGE = np.zeros((4, 4), np.uint8)
MASK = np.zeros((4, 4), np.uint8)


def test_pairs_are_matched_by_stem_and_sorted(tmp_path, write_pair):
    root = tmp_path / "data"
    for stem, suffix in [("b", ".tif"), ("a", ".png"), ("c", ".jpg")]:
        write_pair(stem, IMAGE, MASK, image_suffix=suffix)
    (root / "images" / "notes.txt").write_text("not an image")
    (root / "images" / "._a.png").write_bytes(b"macOS resource fork")
    (root / "masks" / ".hidden.png").write_bytes(b"")
    pairs = scan_pairs(root / "images", root / "masks").pairs
    assert [p.image.name for p in pairs] == ["a.png", "b.tif", "c.jpg"]
    assert [p.mask.name for p in pairs] == ["a.png", "b.png", "c.png"]
    assert all(p.image.parent == root / "images" and p.mask.parent == root / "masks" for p in pairs)


def test_missing_root_names_the_folder_and_the_layout(tmp_path):
    with pytest.raises(DataError, match=r"nowhere does not exist.*expected images/ \+ masks/"):
        discover(tmp_path / "nowhere")


def test_missing_masks_folder(tmp_path, write_pair):
    pair = write_pair("a", IMAGE, MASK)
    for mask in pair.mask.parent.iterdir():
        mask.unlink()
    pair.mask.parent.rmdir()
    with pytest.raises(DataError, match=r"missing folder .*masks.*expected layout"):
        discover(tmp_path / "data")


def test_empty_folders_say_no_pairs(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DataError, match="no image/mask pairs"):
        discover(tmp_path)


def test_unmatched_images_are_counted_and_the_first_ten_listed(tmp_path, write_pair):
    for i in range(12):
        write_pair(f"img{i:02d}", IMAGE, MASK)
    masks = tmp_path / "data" / "masks"
    for i in range(1, 12):
        (masks / f"img{i:02d}.png").unlink()
    with pytest.raises(DataError) as info:
        discover(tmp_path / "data")
    message = str(info.value)
    assert "11 problem(s)" in message and "image has no mask" in message
    assert all(f"img{i:02d}" in message for i in range(1, 11))
    assert "img11" not in message and "1 more" in message
    assert "img00" not in message  # it has its mask


def test_masks_without_images_are_listed(tmp_path, write_pair):
    write_pair("a", IMAGE, MASK)
    write_pair("orphan", IMAGE, MASK)
    (tmp_path / "data" / "images" / "orphan.png").unlink()
    with pytest.raises(DataError, match=r"1 problem\(s\).*orphan\.png: mask has no image"):
        discover(tmp_path / "data")


def test_duplicate_stems_are_rejected(tmp_path, write_pair):
    write_pair("a", IMAGE, MASK)
    write_pair("a", IMAGE, MASK, image_suffix=".tif")
    with pytest.raises(DataError, match=r"a\.tif: has the same stem as a\.png"):
        discover(tmp_path / "data")


def test_read_pair_rejects_a_size_mismatch_naming_both_files(write_pair):
    pair = write_pair("scan", np.zeros((4, 6), np.uint8), np.zeros((4, 5), np.uint8))
    with pytest.raises(DataError) as info:
        read_pair(pair)
    message = str(info.value)
    assert str(pair.image) in message and str(pair.mask) in message
    assert "6×4" in message and "5×4" in message


def _pairs(n: int) -> list[Pair]:
    return [Pair(Path(f"images/{i:03d}.png"), Path(f"masks/{i:03d}.png")) for i in range(n)]


@pytest.mark.parametrize(("n", "fraction", "n_val"), [(2, 0.2, 1), (10, 0.2, 2), (48, 0.25, 12)])
def test_split_is_a_partition_of_the_expected_size(n, fraction, n_val):
    pairs = _pairs(n)
    train, val = holdout_split(pairs, fraction, seed=3)
    assert len(val) == n_val and len(train) == n - n_val
    assert not set(train) & set(val)
    assert set(train) | set(val) == set(pairs)


def test_split_is_deterministic_and_order_independent():
    pairs = _pairs(30)
    shuffled = pairs[:]
    random.Random(1).shuffle(shuffled)
    assert holdout_split(pairs, 0.2, seed=5) == holdout_split(pairs, 0.2, seed=5)
    assert holdout_split(shuffled, 0.2, seed=5) == holdout_split(pairs, 0.2, seed=5)


def test_different_seeds_give_different_splits():
    pairs = _pairs(30)
    val_sets = {frozenset(holdout_split(pairs, 0.2, seed=s)[1]) for s in range(5)}
    assert len(val_sets) == 5


def test_single_pair_is_used_for_both_with_a_warning(caplog):
    pairs = _pairs(1)
    with caplog.at_level(logging.WARNING, logger="drunet.datasets.splits"):
        train, val = holdout_split(pairs)
    assert train == pairs and val == pairs
    assert "only one image" in caplog.text


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_split_rejects_bad_fractions(fraction):
    with pytest.raises(ValueError, match=str(fraction)):
        holdout_split(_pairs(4), fraction)
