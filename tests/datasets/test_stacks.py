"""Multi-page TIFF stacks in a dataset are volumes of 2D slices, split by stack (no leakage)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from drunet.datasets import (
    LayoutOptions,
    SegmentationDataset,
    compute_normalization,
    discover,
    holdout_split,
    kfold_split,
    make_synthetic,
    read_frames,
    read_image,
    read_pair,
    verify_dataset,
    write_split_file,
)
from drunet.datasets.stacks import frame_count, page_count
from drunet.errors import DataError


def _stacks(root: Path, slices: int = 12, per_stack: int = 3, **kwargs) -> Path:
    sizes = ((32, 40),)
    return make_synthetic(root, slices, sizes=sizes, stack_slices=per_stack, **kwargs)


def _by_case(pairs) -> dict[str, list[int | None]]:
    cases: dict[str, list[int | None]] = {}
    for pair in pairs:
        cases.setdefault(pair.case, []).append(pair.page)
    return cases


def test_a_folder_of_stacks_is_a_dataset_of_slices(tmp_path):
    root = _stacks(tmp_path / "data")
    layout = discover(root)
    assert len(layout.pairs) == 12
    assert _by_case(layout.pairs) == {f"stack{n:02d}": [0, 1, 2] for n in range(4)}
    pair = next(p for p in layout.pairs if p.case == "stack02" and p.page == 1)
    assert pair.name == "stack02#0001"
    image, mask = read_pair(pair)
    frames = read_frames(root / "images" / "stack02.tif")
    masks = tifffile.imread(root / "masks" / "stack02.tif")
    np.testing.assert_array_equal(image, frames[1])
    np.testing.assert_array_equal(mask, masks[1])


@pytest.mark.parametrize("seed", range(5))
def test_splits_keep_every_stack_on_one_side(tmp_path, seed):
    layout = discover(_stacks(tmp_path / "data"), LayoutOptions(seed=seed, val_fraction=0.25))
    train, val = _by_case(layout.train), _by_case(layout.val)
    assert not train.keys() & val.keys() and len(val) == 1 and len(train) == 3
    assert all(pages == [0, 1, 2] for pages in [*train.values(), *val.values()])
    for fold in range(2):
        folded_train, folded_val = kfold_split(layout.pairs, folds=2, fold=fold, seed=seed)
        assert not _by_case(folded_train).keys() & _by_case(folded_val).keys()
        assert len(folded_train) == len(folded_val) == 6


def test_a_single_stack_is_split_slice_by_slice(tmp_path):
    layout = discover(_stacks(tmp_path / "data", slices=10, per_stack=10))
    assert len(layout.train) == 8 and len(layout.val) == 2  # like ISBI 2012's one volume
    assert {p.case for p in layout.pairs} == {"stack00"}


def test_split_files_name_stacks_and_take_all_their_slices(tmp_path):
    root = _stacks(tmp_path / "data")
    layout = discover(root)
    train, val = holdout_split(layout.pairs, 0.25, seed=1)
    write_split_file(root / "split.json", train, val)
    names = json.loads((root / "split.json").read_text())
    assert len(names["train"]) == 3 and len(names["val"]) == 1  # stacks, once each
    again = discover(root, LayoutOptions(split_file=Path("split.json")))
    assert sorted(p.name for p in again.val) == sorted(p.name for p in val)


def test_a_mask_stack_of_another_length_is_named(tmp_path):
    root = _stacks(tmp_path / "data", slices=6)
    short = tifffile.imread(root / "masks" / "stack01.tif")[:2]
    tifffile.imwrite(root / "masks" / "stack01.tif", short, photometric="minisblack")
    with pytest.raises(DataError, match=r"stack01\.tif.*mask has 2 page\(s\).*stack01\.tif: 3"):
        discover(root)
    lenient = discover(root, strict=False)
    assert {p.case for p in lenient.pairs} == {"stack00"}
    assert [p.kind for p in lenient.problems] == ["stack-mismatch"]


def test_verify_training_data_and_normalisation_read_slices(tmp_path):
    root = _stacks(tmp_path / "data", dtype="int16")
    report = verify_dataset(root)
    assert report.ok and report.summary is not None
    assert report.summary.pairs == 12 and report.summary.size_max == (32, 40)
    assert report.summary.bit_depths == {"int16": 12}
    layout = discover(root)
    norm = compute_normalization(layout.train)
    dataset = SegmentationDataset(layout.val, norm)
    image, mask = dataset[2]
    assert tuple(image.shape) == (1, 32, 40) and tuple(mask.shape) == (32, 40)


def test_an_imagej_hyperstack_gives_slices_of_several_channels(tmp_path):
    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    volume = rng.integers(0, 4000, (3, 2, 20, 24)).astype(np.uint16)  # Z, C, Y, X
    labels = rng.integers(0, 2, (3, 20, 24)).astype(np.uint8)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    tifffile.imwrite(root / "images" / "v.tif", volume, imagej=True, metadata={"axes": "ZCYX"})
    tifffile.imwrite(root / "masks" / "v.tif", labels, imagej=True, metadata={"axes": "ZYX"})
    tifffile.imwrite(root / "images" / "w.tif", volume[:1], imagej=True, metadata={"axes": "ZCYX"})
    tifffile.imwrite(root / "masks" / "w.tif", labels[0])
    pairs = discover(root).pairs
    assert _by_case(pairs) == {"v": [0, 1, 2], "w": [None]}
    image, mask = read_pair(next(p for p in pairs if p.page == 2))
    np.testing.assert_array_equal(image, volume[2].transpose(1, 2, 0))
    np.testing.assert_array_equal(mask, labels[2])


def test_training_runs_on_stacks(tmp_path):
    from drunet.config import config_from_dict
    from drunet.engine.train import train
    from tests.conftest import tiny_recipe

    root = _stacks(tmp_path / "data", slices=6)
    recipe = tiny_recipe(data={"root": str(root)}, runs_dir=str(tmp_path / "runs"))
    result = train(config_from_dict(recipe))
    assert (result.run_dir / "best.safetensors").is_file()


def test_pages_appended_one_by_one_are_one_stack(tmp_path):
    # imwrite(..., append=True) gives each page its own one-page "shaped" series; they are
    # alike, so they are one 3-page stack (this was refused as "images of different shapes").
    path = tmp_path / "appended.tif"
    for value in (10, 20, 30):
        tifffile.imwrite(path, np.full((6, 5), value, np.uint8), append=True)
    assert frame_count(path) == 3 and page_count(path) == 3
    assert [int(read_image(path, page=i).max()) for i in range(3)] == [10, 20, 30]
    odd = tmp_path / "odd.tif"  # pages that differ stay refused, naming their shapes
    tifffile.imwrite(odd, np.zeros((6, 5), np.uint8), append=True)
    tifffile.imwrite(odd, np.zeros((4, 5), np.uint8), append=True)
    shapes = r"images of different shapes or types \(\(6, 5\), \(4, 5\)\)"
    with pytest.raises(DataError, match=shapes):
        read_image(odd)
