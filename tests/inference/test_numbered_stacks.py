"""Stacks of numbered 2D files (``data.layout.stack``) in ``drunet evaluate`` and
``drunet predict``: scored per stack, and predicted as series grouped by the run's pattern."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from drunet.cli.main import app
from drunet.datasets import LayoutOptions, Pair, read_mask, write_image, write_mask
from drunet.datasets.stack_names import NumberedSlice
from drunet.evaluation import evaluate, evaluation_pairs, write_evaluation
from drunet.evaluation.stacks import stack_slice
from drunet.inference import Predictor
from drunet.inference.shard import prediction_units
from drunet.inference.slice_files import split_series
from drunet.outputs import MANIFEST
from tests.evaluation.test_evaluate_stacks import STACKS
from tests.inference.run_factory import tiny_run
from tests.inference.test_predictor import MinusHalf, make_config

PATTERN = "{name}_z{index}"
INDICES = (0, 1, 10)  # the slices of each stack of test_evaluate_stacks.STACKS, renumbered


def _config(stack: str | None):
    config = make_config()
    layout = LayoutOptions(stack=stack)
    return config.model_copy(update={"data": config.data.model_copy(update={"layout": layout})})


def test_numbered_stacks_are_scored_per_stack(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for name, (predicted, truth) in STACKS.items():  # the same counts as the TIFF stacks
        for z, image, mask in zip(INDICES, predicted, truth, strict=True):
            write_mask(root / "images" / f"{name}_z{z}.png", image * 255)
            write_mask(root / "masks" / f"{name}_z{z}.png", mask)
    pairs, _ = evaluation_pairs(root, _config(PATTERN), "all")
    evaluation = evaluate(Predictor(MinusHalf(), _config(PATTERN)), pairs)
    assert evaluation.failed == {}
    assert evaluation.names == [f"{s}_z{z}" for s in "ab" for z in INDICES]
    assert evaluation.stacks == ["a"] * 3 + ["b"] * 3
    assert evaluation.slices == [*INDICES, *INDICES]
    stacks = {s.name: s for s in evaluation.stack_scores()}
    a, b = stacks["a"], stacks["b"]
    assert (a.slices, a.counts["tp"][1], a.counts["fp"][1], a.counts["fn"][1]) == (3, 20, 4, 5)
    assert a.per_class["dice"][1] == pytest.approx(40 / 49)
    assert (b.counts["tp"][1], b.counts["fp"][1], b.counts["fn"][1]) == (24, 0, 8)
    assert b.mean["dice"] == pytest.approx(6 / 7)
    write_evaluation(evaluation, tmp_path / "eval")
    assert (tmp_path / "eval" / "per_stack.csv").read_text().count("\n") == 5  # header + 2 × 2

    plain, _ = evaluation_pairs(root, _config(None), "all")  # a run without the pattern
    assert not evaluate(Predictor(MinusHalf(), _config(None)), plain).has_stacks


def test_the_stack_and_slice_of_a_pair() -> None:
    image, mask = Path("i/x.png"), Path("m/x.png")
    assert stack_slice(Pair(image, mask)) == (None, None)
    assert stack_slice(Pair(image, mask, page=4)) == ("x", 4)
    named = NumberedSlice(PATTERN, "cellB", 12)
    assert stack_slice(Pair(image, mask, numbered=named)) == ("cellB", 12)
    folder = NumberedSlice("slice_{index}", "", 7)  # no {name}: the folder is one stack
    assert stack_slice(Pair(image, mask, numbered=folder)) == ("slice_*", 7)


def test_series_follow_the_run_s_pattern() -> None:
    names = ["010_a.png", "003_a.png", "002_b.png", "001_b.png", "cat.png", "004_c.png"]
    files = [Path("f") / n for n in names]
    series, others = split_series(files, "{index}_{name}")
    assert series == [
        [Path("f/003_a.png"), Path("f/010_a.png")],  # numeric order
        [Path("f/001_b.png"), Path("f/002_b.png")],
    ]
    assert others == [Path("f/cat.png"), Path("f/004_c.png")]  # off the pattern; a lone slice
    assert split_series(files) == ([], files)  # by prefix + number, none of them is a series
    units = prediction_units(files, context=True, pattern="{index}_{name}")
    assert sorted(map(len, units)) == [1, 1, 2, 2]


def test_cli_predicts_each_stack_of_the_run_s_pattern_with_its_neighbours(tmp_path) -> None:
    run = tiny_run(tmp_path / "run", context_slices=1, stack="{index}_{name}")
    volume = np.random.default_rng(0).integers(0, 256, (5, 24, 28), dtype=np.uint8)
    stacks = {
        "a": [tmp_path / "in" / f"{z:03d}_a.png" for z in (2, 3, 10)],
        "b": [tmp_path / "in" / f"{z:03d}_b.png" for z in (1, 2)],
    }
    for path, page in zip([*stacks["a"], *stacks["b"]], volume, strict=True):
        write_image(path, page)
    out = tmp_path / "out"
    args = ["predict", str(tmp_path / "in"), "--model", str(run), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--no-overlay", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in out.iterdir() if p.name != MANIFEST)
    assert written == sorted(f"{p.stem}_mask.png" for files in stacks.values() for p in files)
    predictor = Predictor.from_run(run, device="cpu")
    for files in stacks.values():
        expected = predictor.predict_slices(files)
        for path, mask in zip(files, expected, strict=True):
            np.testing.assert_array_equal(read_mask(out / f"{path.stem}_mask.png"), mask)
    across = predictor.predict_slices([*stacks["a"], *stacks["b"]])  # one series: b sees a
    assert not np.array_equal(across[3], predictor.predict_slices(stacks["b"])[0])
