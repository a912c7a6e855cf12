"""Streamed evaluation of giant masks gives the numbers of the in-memory folder evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from drunet.cli.main import app
from drunet.datasets import MaskOptions, write_image
from drunet.errors import DataError
from drunet.evaluation.folder import evaluate_folder
from drunet.evaluation.giant import evaluate_giant
from drunet.giant.files import is_giant
from drunet.giant.masks import value_pairs
from drunet.giant.regions import ArraySource
from drunet.giant.tiff_sink import write_tiled_tiff


def masks(seed: int, values: list[int], shape: tuple[int, int] = (130, 90)) -> np.ndarray:
    return np.random.default_rng(seed).choice(values, shape).astype(np.uint8)


def both_ways(
    tmp_path: Path, pairs: dict[str, tuple[np.ndarray, np.ndarray]], **kwargs: object
) -> tuple[dict, dict]:
    (tmp_path / "pred").mkdir()
    (tmp_path / "truth").mkdir()
    cases = []
    for name, (pred, truth) in pairs.items():
        write_image(tmp_path / "pred" / f"{name}_mask.png", pred)
        write_image(tmp_path / "truth" / f"{name}.png", truth)
        cases.append((name, ArraySource(pred, f"{name}_mask.png"), ArraySource(truth, name)))
    whole = evaluate_folder(tmp_path / "pred", tmp_path / "truth", **kwargs)  # type: ignore[arg-type]
    streamed = evaluate_giant(cases, **kwargs)  # type: ignore[arg-type]
    assert repr(streamed.rows()) == repr(whole.rows())  # NaN (absent) compares as text
    return streamed.summary(), whole.summary()


def test_multi_class_with_an_ignored_value_scores_as_the_folder_evaluation(tmp_path: Path) -> None:
    pairs = {
        "a": (masks(0, [0, 1, 2]), masks(1, [0, 1, 2, 9])),
        "b": (masks(2, [0, 2]), masks(3, [0, 2])),  # class 1 absent from both
    }
    options = MaskOptions(ignore_index=9)
    streamed, whole = both_ways(tmp_path, pairs, mask_options=options)
    assert streamed == whole
    assert streamed["num_classes"] == 3 and streamed["images"] == 2


def test_0_255_masks_are_read_as_binary_like_whole_files(tmp_path: Path) -> None:
    pairs = {
        "a": (masks(4, [0, 255]), masks(5, [0, 255])),
        "b": (masks(6, [0, 1]), masks(7, [0, 255])),
    }
    streamed, whole = both_ways(tmp_path, pairs)
    assert streamed == whole and streamed["num_classes"] == 2
    pred, truth = pairs["a"][0] == 255, pairs["a"][1] == 255
    dice = 2 * (pred & truth).sum() / (pred.sum() + truth.sum())
    rows = evaluate_giant([("a", ArraySource(pairs["a"][0]), ArraySource(pairs["a"][1]))]).rows()
    assert rows[1]["dice"] == pytest.approx(dice)  # by hand


def test_bands_are_counted_without_reading_the_whole_mask() -> None:
    truth, pred = masks(8, [0, 1, 2], (1000, 7)), masks(9, [0, 1, 2], (1000, 7))
    pairs = value_pairs(ArraySource(pred), ArraySource(truth), band_rows=64)
    for (t, p), count in pairs.items():
        assert count == int(((truth == t) & (pred == p)).sum())
    assert sum(pairs.values()) == 7000


def test_values_outside_the_classes_and_size_mismatches_fail_the_case() -> None:
    good = ("good", ArraySource(masks(0, [0, 1])), ArraySource(masks(1, [0, 1])))
    stray = (
        "stray",
        ArraySource(masks(2, [0, 5]), "stray_mask.png"),
        ArraySource(masks(3, [0, 1]), "stray.png"),
    )
    small = (
        "small",
        ArraySource(masks(2, [0, 1], (10, 10))),
        ArraySource(masks(3, [0, 1]), "small.png"),
    )
    evaluation = evaluate_giant([good, stray, small])
    assert evaluation.names == ["good"]
    assert "value 5 outside the classes 0…1" in evaluation.failed[Path("stray.png")]
    assert "predict at the mask's size" in evaluation.failed[Path("small.png")]
    with pytest.raises(DataError, match="fractional"):
        value_pairs(ArraySource(np.full((4, 4), 0.5, np.float32)), ArraySource(np.zeros((4, 4))))


def test_drunet_evaluate_scores_giant_masks_region_by_region(tmp_path: Path) -> None:
    """Pyramidal masks (as drunet predict streams them) are scored streamed, with the numbers
    of the same masks saved as PNGs and read whole."""
    pairs = {"a": (masks(10, [0, 1, 3], (300, 200)), masks(11, [0, 1, 2, 3], (300, 200)))}
    pairs["b"] = (masks(12, [0, 2], (300, 200)), masks(13, [0, 1, 2], (300, 200)))
    for kind in ("pred", "truth", "pred_png", "truth_png"):
        (tmp_path / kind).mkdir()
    for name, (pred, truth) in pairs.items():
        for array, path in ((pred, f"pred/{name}_mask.tif"), (truth, f"truth/{name}.tif")):
            write_tiled_tiff(
                tmp_path / path, [array], height=300, width=200, dtype=np.uint8, tile=64
            )
            assert is_giant(tmp_path / path)  # pyramidal
        write_image(tmp_path / "pred_png" / f"{name}_mask.png", pred)
        write_image(tmp_path / "truth_png" / f"{name}.png", truth)
    out = tmp_path / "scores"
    args = ["evaluate", "--pred", str(tmp_path / "pred"), "--truth", str(tmp_path / "truth")]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    whole = evaluate_folder(tmp_path / "pred_png", tmp_path / "truth_png").summary()
    assert summary["num_classes"] == 4 and summary["images"] == 2
    assert {k: summary[k] for k in whole} == whole
    hd95 = CliRunner().invoke(app, [*args, "--out", str(out), "--hd95"])
    assert "HD95 needs the whole mask" in hd95.output
