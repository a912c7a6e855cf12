"""Several stacks stored as numbered 2D files in one folder (``data.layout.stack``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from pydantic import ValidationError

from drunet.config import config_from_dict
from drunet.datasets import (
    LayoutOptions,
    NormalizationOptions,
    SegmentationDataset,
    discover,
    kfold_split,
    write_image,
    write_mask,
    write_split_file,
)
from drunet.datasets.context import context_pairs, read_context
from drunet.datasets.stack_names import NumberedSlice, match_slice
from drunet.engine.data import prepare_data
from drunet.errors import DataError
from tests.conftest import tiny_recipe

PATTERN = "{name}_z{index}"
# Pixel value of slice z of a stack: its offset + z, so every input channel says where it came
# from. cellA skips 3…9: z10 comes after z2 (numeric order), not after z1 (text order).
STACKS = {"cellA": (0, [0, 1, 2, 10]), "cellB": (100, [0, 1, 2]), "cellC": (200, [0, 1, 2, 3, 4])}
RAW = NormalizationOptions(mode="none", clip_percentiles=None)


def _write(root: Path, stacks: dict[str, tuple[int, list[int]]] = STACKS) -> Path:
    for name, (offset, indices) in stacks.items():
        for z in indices:
            stem = f"{name}_z{z}"
            write_image(root / "images" / f"{stem}.png", np.full((8, 8), offset + z, np.uint8))
            write_mask(root / "masks" / f"{stem}.png", np.full((8, 8), z % 2, np.uint8))
    return root


def _by_case(pairs) -> dict[str, list[int]]:
    cases: dict[str, list[int]] = {}
    for pair in pairs:
        cases.setdefault(pair.case, []).append(pair.numbered.index)
    return {case: sorted(indices) for case, indices in cases.items()}


@pytest.mark.parametrize(
    ("stem", "pattern", "expected"),
    [
        ("cellA_z12", PATTERN, ("cellA", 12)),
        ("a_z1_z3", PATTERN, ("a_z1", 3)),  # the index is the last number
        ("cell12", "{name}{index}", ("cell", 12)),
        ("07", "{index}", ("", 7)),
        ("s07.b", "s{index}.{name}", ("b", 7)),  # literal text is not a regular expression
        ("s07xb", "s{index}.{name}", None),
        ("cellA_zX", PATTERN, None),
        ("cellA_z1_mask", PATTERN, None),  # the whole stem must match
    ],
)
def test_a_stem_names_its_stack_and_slice(stem, pattern, expected):
    found = match_slice(stem, pattern)
    if expected is None:
        assert found is None
    else:
        assert found == NumberedSlice(pattern, *expected)


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("{name}_z", "exactly one {index}"),
        ("{index}_{index}", "exactly one {index}"),
        ("{name}_{name}_{index}", "once"),
        ("{stack}_{index}", "unknown placeholder"),
        ("{name}_z{index}}", "unmatched brace"),
    ],
)
def test_a_bad_pattern_is_refused_naming_the_key(pattern, says):
    with pytest.raises(ValidationError, match="data.layout.stack") as err:
        LayoutOptions(stack=pattern)
    assert says in str(err.value)


def test_each_file_is_a_slice_of_the_stack_its_name_names(tmp_path):
    layout = discover(_write(tmp_path / "data"), LayoutOptions(stack=PATTERN))
    assert _by_case(layout.pairs) == {name: indices for name, (_, indices) in STACKS.items()}
    pair = next(p for p in layout.pairs if p.image.stem == "cellA_z10")
    assert pair.numbered == NumberedSlice(PATTERN, "cellA", 10)
    assert (pair.case, pair.name, pair.page) == ("cellA", "cellA_z10", None)


def test_without_the_option_each_file_is_its_own_case(tmp_path):
    layout = discover(_write(tmp_path / "data"))
    assert len({p.case for p in layout.pairs}) == 12
    assert all(p.numbered is None and p.name == p.case for p in layout.pairs)


@pytest.mark.parametrize("seed", range(6))
def test_splits_never_separate_a_stack(tmp_path, seed):
    root = _write(tmp_path / "data")
    layout = discover(root, LayoutOptions(stack=PATTERN, seed=seed, val_fraction=0.34))
    train, val = _by_case(layout.train), _by_case(layout.val)
    assert len(train) == 2 and len(val) == 1 and not train.keys() & val.keys()
    assert {**train, **val} == {name: indices for name, (_, indices) in STACKS.items()}
    for fold in range(3):
        options = LayoutOptions(stack=PATTERN, seed=seed, fold=fold, folds=3)
        folded = discover(root, options)
        assert len(_by_case(folded.val)) == 1
        assert not _by_case(folded.train).keys() & _by_case(folded.val).keys()
        assert len(folded.train) + len(folded.val) == 12
    vals = [kfold_split(layout.pairs, 3, fold, seed)[1] for fold in range(3)]
    assert sorted(next(iter(_by_case(v))) for v in vals) == sorted(STACKS)


def test_split_files_name_the_stacks(tmp_path):
    root = _write(tmp_path / "data")
    options = LayoutOptions(stack=PATTERN)
    layout = discover(root, options)
    write_split_file(root / "split.json", layout.train, layout.val)
    names = json.loads((root / "split.json").read_text())
    assert sorted(names["train"] + names["val"]) == sorted(STACKS)
    (root / "split.json").write_text(json.dumps({"train": ["cellA", "cellC"], "val": ["cellB"]}))
    fixed = discover(root, LayoutOptions(stack=PATTERN, split_file=Path("split.json")))
    assert _by_case(fixed.val) == {"cellB": [0, 1, 2]}
    assert _by_case(fixed.train) == {"cellA": [0, 1, 2, 10], "cellC": [0, 1, 2, 3, 4]}


@pytest.mark.parametrize(
    ("stacks", "pattern"),
    [
        ({"cellA": (0, list(range(10)))}, PATTERN),  # one named stack
        (None, "{index}"),  # ISBI: 00.png … 09.png, the index is the whole stem
    ],
)
def test_a_single_stack_is_split_by_slice(tmp_path, stacks, pattern):
    root = tmp_path / "data"
    if stacks is not None:
        _write(root, stacks)
    else:
        for z in range(10):
            write_image(root / "images" / f"{z:02d}.png", np.full((8, 8), z, np.uint8))
            write_mask(root / "masks" / f"{z:02d}.png", np.zeros((8, 8), np.uint8))
    layout = discover(root, LayoutOptions(stack=pattern))
    assert len(layout.train) == 8 and len(layout.val) == 2
    assert not {p.image for p in layout.train} & {p.image for p in layout.val}
    assert sorted(p.numbered.index for p in layout.pairs) == list(range(10))


def test_a_file_off_the_pattern_is_a_problem_naming_it_and_the_pattern(tmp_path):
    root = _write(tmp_path / "data")
    write_image(root / "images" / "cellD-3.png", np.zeros((8, 8), np.uint8))
    write_mask(root / "masks" / "cellD-3.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match=r"cellD-3\.png: .*'\{name\}_z\{index\}'"):
        discover(root, LayoutOptions(stack=PATTERN))
    lenient = discover(root, LayoutOptions(stack=PATTERN), strict=False)
    assert [(p.path.name, p.kind) for p in lenient.problems] == [
        ("cellD-3.png", "stack-name-mismatch")
    ]
    assert len(lenient.pairs) == 12  # the rest is used


def test_a_multi_page_file_is_not_a_numbered_slice(tmp_path):
    root = _write(tmp_path / "data")
    pages = np.zeros((3, 8, 8), np.uint8)
    tifffile.imwrite(root / "images" / "cellD_z0.tif", pages, photometric="minisblack")
    tifffile.imwrite(root / "masks" / "cellD_z0.tif", pages, photometric="minisblack")
    lenient = discover(root, LayoutOptions(stack=PATTERN), strict=False)
    assert [(p.path.name, p.kind) for p in lenient.problems] == [
        ("cellD_z0.tif", "stack-name-multipage")
    ]
    assert "cellD" not in _by_case(lenient.pairs)


def _input_values(neighbours) -> list[int]:
    image = read_context(neighbours)  # (H, W, 2k+1) uint8
    assert (image == image[:1, :1]).all()
    return image[0, 0].tolist()


def test_context_takes_the_same_stack_s_images_in_index_order(tmp_path):
    layout = discover(_write(tmp_path / "data"), LayoutOptions(stack=PATTERN))
    by_stem = {p.image.stem: p for p in layout.pairs}
    expected_k1 = {
        "cellA_z0": [0, 0, 1],  # edge replicated
        "cellA_z2": [1, 2, 10],  # z10 follows z2
        "cellA_z10": [2, 10, 10],
        "cellB_z0": [100, 100, 101],  # never cellA's z10 or cellC's slices
        "cellB_z2": [101, 102, 102],
        "cellC_z2": [201, 202, 203],
    }
    stems = list(expected_k1)
    neighbours = context_pairs([by_stem[s] for s in stems], 1)
    assert {s: _input_values(n) for s, n in zip(stems, neighbours, strict=True)} == expected_k1
    (wide,) = context_pairs([by_stem["cellC_z1"]], 2)
    assert _input_values(wide) == [200, 200, 201, 202, 203]
    (whole,) = context_pairs([by_stem["cellB_z1"]], 3)  # wider than the stack
    assert _input_values(whole) == [100, 100, 100, 101, 102, 102, 102]
    for pair, group in zip([by_stem[s] for s in stems], neighbours, strict=True):
        assert all(n.mask == pair.mask for n in group)  # a neighbour's mask is never named
        assert [n.numbered.stack for n in group] == [pair.numbered.stack] * 3


def test_context_comes_from_the_folder_not_the_split(tmp_path):
    root = _write(tmp_path / "data")
    layout = discover(root, LayoutOptions(stack=PATTERN, seed=0, val_fraction=0.34))
    (held_out,) = {p.case for p in layout.val}
    offset, indices = STACKS[held_out]
    middle = next(p for p in layout.val if p.numbered.index == indices[1])
    dataset = SegmentationDataset([middle], RAW, context_slices=1)  # neighbours not in it
    image, mask = dataset[0]
    values = np.rint(image.numpy()[:, 0, 0] * 255).astype(int).tolist()
    assert values == [offset + indices[0], offset + indices[1], offset + indices[2]]
    assert (mask.numpy() == indices[1] % 2).all()  # the centre's mask alone


def test_training_data_with_stacks_and_context(tmp_path):
    root = _write(tmp_path / "data")
    data = {"root": str(root), "context_slices": 1, "layout": {"stack": PATTERN}}
    prepared = prepare_data(config_from_dict(tiny_recipe(data=data)))
    assert prepared.config.model.in_channels == 3
    assert not {p.case for p in prepared.train} & {p.case for p in prepared.val}


def test_two_files_of_one_slice_are_a_problem(tmp_path):
    root = _write(tmp_path / "data")
    write_image(root / "images" / "cellB_z01.png", np.zeros((8, 8), np.uint8))
    write_mask(root / "masks" / "cellB_z01.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match=r"cellB_z1\.png: is slice 1 of stack 'cellB'.*z01\.png"):
        discover(root, LayoutOptions(stack=PATTERN))
    lenient = discover(root, LayoutOptions(stack=PATTERN), strict=False)
    assert [(p.path.name, p.kind) for p in lenient.problems] == [
        ("cellB_z1.png", "duplicate-slice")
    ]
    assert _by_case(lenient.pairs)["cellB"] == [0, 1, 2]
