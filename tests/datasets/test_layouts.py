"""``discover`` finds every supported layout; splits are seeded, k folds partition the pairs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from drunet.datasets import (
    LayoutOptions,
    Pair,
    discover,
    kfold_split,
    read_pair,
    read_split_file,
    write_image,
    write_mask,
    write_split_file,
)
from drunet.errors import DataError

IMAGE = np.arange(12, dtype=np.uint8).reshape(3, 4)
MASK = (IMAGE % 2).astype(np.uint8)


def _folder(root: Path, stems: list[str], images: str = "images", masks: str = "masks") -> Path:
    for stem in stems:
        write_image(root / images / f"{stem}.png", IMAGE)
        write_mask(root / masks / f"{stem}.png", MASK)
    return root


def _names(pairs: list[Pair]) -> list[str]:
    return [p.name for p in pairs]


@pytest.mark.parametrize("masks", ["masks", "labels"])
def test_images_with_masks_or_labels(tmp_path, masks):
    root = _folder(tmp_path, [f"{i:02d}" for i in range(10)], masks=masks)
    layout = discover(root)
    assert len(layout.train) == 8 and len(layout.val) == 2 and layout.test == []
    assert sorted(_names(layout.pairs)) == [f"{i:02d}" for i in range(10)]
    assert f"images/ + {masks}/" in layout.source and "seed 0" in layout.split
    assert all(p.mask.parent.name == masks for p in layout.pairs)


def _nnunet(root: Path, cases: list[str], channels: int = 2, meta: dict | None = None) -> Path:
    for n, case in enumerate(cases):
        for c in range(channels):
            write_image(root / "imagesTr" / f"{case}_{c:04d}.png", IMAGE + 10 * c + n)
        write_mask(root / "labelsTr" / f"{case}.png", MASK * (1 + n % 2))
    if meta is not None:
        (root / "dataset.json").write_text(json.dumps(meta))
    return root


def test_nnunet_with_two_channels_and_dataset_json(tmp_path):
    meta = {
        "channel_names": {"0": "DAPI", "1": "GFP"},
        "labels": {"background": 0, "nucleus": 1, "membrane": 2, "ignore": 3},
        "numTraining": 5,
        "file_ending": ".png",
    }
    root = _nnunet(tmp_path, [f"cell_{i:03d}" for i in range(5)], meta=meta)
    write_image(root / "imagesTr" / "cell_000_0000.tif", IMAGE)  # another ending: not a case file
    layout = discover(root, LayoutOptions(val_fraction=0.4))
    assert "nnU-Net" in layout.source
    assert layout.channel_names == ["DAPI", "GFP"]
    assert layout.class_names == ["background", "nucleus", "membrane"]
    assert layout.ignore_index == 3
    assert len(layout.train) == 3 and len(layout.val) == 2
    pair = next(p for p in layout.pairs if p.name == "cell_001")
    assert pair.image.name == "cell_001_0000.png"
    assert [p.name for p in pair.extra_channels] == ["cell_001_0001.png"]
    image, mask = read_pair(pair)
    assert image.shape == (3, 4, 2)
    np.testing.assert_array_equal(image[:, :, 0], IMAGE + 1)
    np.testing.assert_array_equal(image[:, :, 1], IMAGE + 11)
    np.testing.assert_array_equal(mask, MASK * 2)


def test_nnunet_v1_labels_and_modality_without_file_ending(tmp_path):
    meta = {"modality": {"0": "EM"}, "labels": {"0": "background", "1": "membrane"}}
    root = _nnunet(tmp_path, ["a", "b", "c"], channels=1, meta=meta)
    layout = discover(root)
    assert layout.channel_names == ["EM"] and layout.class_names == ["background", "membrane"]
    assert layout.ignore_index is None
    assert all(p.extra_channels == () for p in layout.pairs)


def test_nnunet_without_dataset_json_infers_channels(tmp_path):
    layout = discover(_nnunet(tmp_path, ["a", "b"], channels=3))
    assert all(len(p.image_files) == 3 for p in layout.pairs)
    assert layout.class_names is None and layout.channel_names is None


def test_nnunet_missing_channel_file_is_named(tmp_path):
    root = _nnunet(tmp_path, ["a", "b", "c"], meta={"channel_names": {"0": "x", "1": "y"}})
    (root / "imagesTr" / "b_0001.png").unlink()
    with pytest.raises(DataError, match=r"b_0000\.png: case 'b' lacks channel file\(s\) b_0001"):
        discover(root)
    lenient = discover(root, strict=False)
    assert [p.kind for p in lenient.problems] == ["missing-channel"]
    assert sorted(_names(lenient.pairs)) == ["a", "c"]


def test_nnunet_3d_file_ending_is_refused(tmp_path):
    root = _nnunet(tmp_path, ["a"], meta={"file_ending": ".nii.gz"})
    with pytest.raises(DataError, match=r"\.nii\.gz.*2D"):
        discover(root)


@pytest.mark.parametrize("relative", [True, False])
def test_explicit_image_and_mask_folders(tmp_path, relative):
    _folder(tmp_path, ["a", "b", "c"], images="scans", masks="truth")
    images, masks = (
        (Path("scans"), Path("truth")) if relative else (tmp_path / "scans", tmp_path / "truth")
    )
    layout = discover(tmp_path if relative else None, LayoutOptions(images=images, masks=masks))
    assert sorted(_names(layout.pairs)) == ["a", "b", "c"]
    assert "explicit folders" in layout.source


def test_train_val_test_sub_folders_fix_the_split(tmp_path):
    _folder(tmp_path / "train", ["t1", "t2", "t3"])
    _folder(tmp_path / "val", ["v1"])
    _nnunet(tmp_path / "test", ["x1", "x2"], channels=1)  # each part may use any layout
    layout = discover(tmp_path)
    assert _names(layout.train) == ["t1", "t2", "t3"]
    assert _names(layout.val) == ["v1"]
    assert _names(layout.test) == ["x1", "x2"]
    assert "val/ folder" in layout.split


def test_train_folder_alone_is_split_by_seed(tmp_path):
    _folder(tmp_path / "train", [f"{i}" for i in range(5)])
    (tmp_path / "test_unlabeled" / "images").mkdir(parents=True)  # ignored, like ISBI's
    layout = discover(tmp_path)
    assert len(layout.train) == 4 and len(layout.val) == 1 and "seeded" in layout.split


def test_test_folder_without_masks_is_skipped(tmp_path):
    _folder(tmp_path / "train", ["a", "b"])
    _folder(tmp_path / "val", ["c"])
    write_image(tmp_path / "test" / "images" / "d.png", IMAGE)
    assert discover(tmp_path).test == []


def test_fold_with_a_val_folder_is_an_error(tmp_path):
    _folder(tmp_path / "train", ["a", "b"])
    _folder(tmp_path / "val", ["c"])
    with pytest.raises(DataError, match=r"val exists.*fold"):
        discover(tmp_path, LayoutOptions(fold=0))


def test_split_file_round_trip(tmp_path):
    root = _folder(tmp_path / "data", [f"{i}" for i in range(6)])
    first = discover(root, LayoutOptions(seed=3))
    write_split_file(tmp_path / "split.json", first.train, first.val)
    assert read_split_file(tmp_path / "split.json") == {
        "train": _names(first.train),
        "val": _names(first.val),
    }
    again = discover(root, LayoutOptions(split_file=tmp_path / "split.json"))
    assert again.train == first.train and again.val == first.val
    assert "split file" in again.split


def test_split_file_with_nnunet_folds(tmp_path):
    root = _folder(tmp_path / "data", ["a", "b", "c", "d"])
    folds = [{"train": ["a", "b", "c"], "val": ["d"]}, {"train": ["b", "c", "d"], "val": ["a"]}]
    (tmp_path / "splits_final.json").write_text(json.dumps(folds))
    layout = discover(root, LayoutOptions(split_file=tmp_path / "splits_final.json", fold=1))
    assert _names(layout.val) == ["a"] and _names(layout.train) == ["b", "c", "d"]
    with pytest.raises(DataError, match="choose one with fold"):
        discover(root, LayoutOptions(split_file=tmp_path / "splits_final.json"))


def test_split_file_naming_unknown_cases_lists_them(tmp_path):
    root = _folder(tmp_path / "data", ["a", "b"])
    (tmp_path / "split.json").write_text(json.dumps({"train": ["a", "zz"], "val": ["b"]}))
    with pytest.raises(DataError, match=r"split\.json names 1 case\(s\) not in the dataset: zz"):
        discover(root, LayoutOptions(split_file=tmp_path / "split.json"))


def _pairs(n: int) -> list[Pair]:
    return [Pair(Path(f"images/{i:03d}.png"), Path(f"masks/{i:03d}.png")) for i in range(n)]


@pytest.mark.parametrize(("n", "folds"), [(5, 5), (23, 5), (10, 3), (7, 2)])
def test_kfold_validation_parts_are_disjoint_and_cover_all(n, folds):
    pairs = _pairs(n)
    vals = []
    for fold in range(folds):
        train, val = kfold_split(pairs, folds, fold, seed=11)
        assert set(train) | set(val) == set(pairs) and not set(train) & set(val)
        vals.append(set(val))
    assert set().union(*vals) == set(pairs)
    assert sum(len(v) for v in vals) == n  # disjoint
    assert max(map(len, vals)) - min(map(len, vals)) <= 1


def test_kfold_is_seeded_and_order_independent():
    pairs = _pairs(12)
    assert kfold_split(pairs, 4, 2, seed=1) == kfold_split(pairs[::-1], 4, 2, seed=1)
    assert kfold_split(pairs, 4, 2, seed=1) != kfold_split(pairs, 4, 2, seed=2)


def test_fold_option_selects_a_fold(tmp_path):
    root = _folder(tmp_path, [f"{i}" for i in range(10)])
    layout = discover(root, LayoutOptions(folds=5, fold=4, seed=2))
    assert len(layout.val) == 2 and layout.split == "fold 4 of 5 (seed 2)"


@pytest.mark.parametrize(("folds", "fold", "n"), [(5, 5, 10), (1, 0, 10), (5, 0, 3)])
def test_bad_folds_are_rejected(folds, fold, n):
    with pytest.raises((ValueError, DataError)):
        kfold_split(_pairs(n), folds, fold)


def test_unknown_layout_lists_what_was_found(tmp_path):
    (tmp_path / "pictures").mkdir()
    (tmp_path / "annotations").mkdir()
    with pytest.raises(DataError, match=r"no dataset layout in .*found annotations/, pictures/"):
        discover(tmp_path)


def test_unmatched_files_raise_naming_them_or_are_reported(tmp_path):
    root = _folder(tmp_path, ["a", "b"])
    write_image(root / "images" / "lonely.png", IMAGE)
    with pytest.raises(DataError, match=r"lonely\.png: image has no mask"):
        discover(root)
    layout = discover(root, strict=False)
    assert [(p.kind, p.path.name) for p in layout.problems] == [
        ("image-without-mask", "lonely.png")
    ]
    assert sorted(_names(layout.pairs)) == ["a", "b"]


def test_nnunet_channel_beyond_dataset_json_is_a_warning(tmp_path):
    root = _nnunet(tmp_path, ["a", "b"], channels=1, meta={"channel_names": {"0": "EM"}})
    write_image(root / "imagesTr" / "a_0001.png", IMAGE)
    layout = discover(root)  # a warning does not stop discovery
    (problem,) = layout.problems
    assert problem.kind == "extra-channel" and problem.path.name == "a_0001.png"
    assert all(p.extra_channels == () for p in layout.pairs)
