"""Evaluation: per-image and per-class scores known by hand, the files written, the splits."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from drunet.config import config_from_dict
from drunet.datasets import discover, write_image, write_mask
from drunet.errors import DrunetError
from drunet.evaluation import evaluate, evaluation_pairs, write_evaluation
from drunet.inference import Predictor
from tests.inference.test_predictor import MinusHalf, make_config

TOP = np.array([[1] * 4] * 2 + [[0] * 4] * 2, np.uint8)  # top half
LEFT = TOP.T.copy()  # left half


def write_pair(root: Path, stem: str, predicted: np.ndarray, truth: np.ndarray) -> None:
    """An image MinusHalf predicts as ``predicted`` (255 → 1, 0 → 0) and its mask ``truth``."""
    write_image(root / "images" / f"{stem}.png", (predicted * 255).astype(np.uint8))
    write_mask(root / "masks" / f"{stem}.png", truth)


def everything(root: Path) -> list:
    return evaluation_pairs(root, make_config(), "all")[0]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_pair(root, "a", TOP, LEFT)  # fg: tp 4, fp 4, fn 4
    write_pair(root, "b", np.ones((4, 4), np.uint8), np.ones((4, 4), np.uint8))  # fg: tp 16
    return root


def test_scores_by_hand(dataset: Path) -> None:
    predictor = Predictor(MinusHalf(), make_config())
    evaluation = evaluate(predictor, everything(dataset))
    assert evaluation.names == ["a", "b"] and evaluation.failed == {}
    rows = {(r["image"], r["class"]): r for r in evaluation.rows()}
    a1 = rows[("a", 1)]
    assert (a1["tp"], a1["fp"], a1["fn"]) == (4, 4, 4)
    assert a1["dice"] == 0.5 and a1["iou"] == pytest.approx(1 / 3)
    assert a1["precision"] == 0.5 and a1["recall"] == 0.5
    assert rows[("b", 1)]["dice"] == 1.0
    b0 = rows[("b", 0)]  # background absent from both: reported as absent, no score
    assert (b0["tp"], b0["fp"], b0["fn"], b0["absent"]) == (0, 0, 0, 1)
    assert all(math.isnan(b0[k]) for k in ("dice", "iou", "precision", "recall"))
    assert a1["absent"] == 0
    one = evaluate(predictor, everything(dataset), absent_as_one=True)  # training's rule
    assert {(r["image"], r["class"]): r for r in one.rows()}[("b", 0)]["dice"] == 1.0

    summary = evaluation.summary()
    assert summary["images"] == 2 and summary["class_names"] == ["background", "class 1"]
    # macro: counts summed over the images (tp 20, fp 4, fn 4), then scored.
    assert summary["mean"]["dice"] == pytest.approx(40 / 48)
    assert summary["mean"]["iou"] == pytest.approx(20 / 28)
    assert summary["per_class"]["class 1"]["dice"] == pytest.approx(40 / 48)
    assert summary["per_class"]["background"]["dice"] == pytest.approx(0.5)  # tp 4, fp 4, fn 4
    assert summary["reductions"]["macro-imagewise"]["dice"] == pytest.approx(0.75)
    assert summary["reductions"]["micro"]["dice"] == pytest.approx(40 / 48)


def test_ignored_pixels_do_not_count(tmp_path: Path) -> None:
    config = make_config()
    config.data.masks.ignore_index = 255
    truth = LEFT.copy()
    truth[TOP != LEFT] = 255  # ignore exactly where prediction and truth disagree
    write_pair(tmp_path, "a", TOP, truth)
    evaluation = evaluate(Predictor(MinusHalf(), config), everything(tmp_path))
    assert evaluation.summary()["mean"]["dice"] == 1.0


def test_unreadable_pairs_are_recorded_and_the_rest_scored(dataset: Path) -> None:
    (dataset / "images" / "c.png").write_bytes(b"not an image")
    write_mask(dataset / "masks" / "c.png", np.zeros((4, 4), np.uint8))
    write_pair(dataset, "d", TOP, np.full((4, 4), 3, np.uint8))  # class 3 in a binary task
    evaluation = evaluate(Predictor(MinusHalf(), make_config()), everything(dataset))
    assert evaluation.names == ["a", "b"]
    failed = {p.name: reason for p, reason in evaluation.failed.items()}
    assert set(failed) == {"c.png", "d.png"}
    assert "not an image file" in failed["c.png"]
    assert "d.png" in failed["d.png"] and "2 classes" in failed["d.png"]


def test_files_written(dataset: Path, tmp_path: Path) -> None:
    evaluation = evaluate(Predictor(MinusHalf(), make_config()), everything(dataset), hd95=True)
    csv_path, json_path = write_evaluation(evaluation, tmp_path / "eval", {"model": "m"})
    rows = list(csv.DictReader(csv_path.open()))
    assert [(r["image"], r["class"]) for r in rows] == [
        ("a", "0"),
        ("a", "1"),
        ("b", "0"),
        ("b", "1"),
    ]
    assert rows[1]["dice"] == "0.500000" and rows[1]["tp"] == "4"
    # a: every pixel of a 2-pixel-thick half is outline. Top-half pixels lie 0, 0, 0, 0, 1, 1,
    # 2, 2 from the left half (and the reverse alike): the 95th percentile is 2.
    assert rows[1]["hd95"] == "2.000000"
    assert rows[2]["hd95"] == "" and rows[2]["absent"] == "1"  # b's background: in neither
    summary = json.loads(json_path.read_text())
    assert summary["model"] == "m" and summary["images"] == 2
    assert set(summary["hd95"]) == {"unit", "mean", "per_class", "undefined"}
    assert summary["hd95"]["unit"] == "px"
    assert summary["hd95"]["undefined"] == 0
    assert summary["hd95"]["mean"] == pytest.approx((2.0 + 0.0) / 2)  # foreground of a and b


def test_one_sided_empty_hd95_is_undefined_and_skipped(tmp_path: Path) -> None:
    write_pair(tmp_path, "a", np.zeros((4, 4), np.uint8), LEFT)  # nothing predicted
    write_pair(tmp_path, "b", TOP, TOP)
    evaluation = evaluate(Predictor(MinusHalf(), make_config()), everything(tmp_path), True)
    assert math.isnan(evaluation.hd95[0][1]) and evaluation.hd95[1][1] == 0.0
    summary = evaluation.summary()
    assert summary["hd95"]["undefined"] == 1 and summary["hd95"]["mean"] == 0.0


def test_splits_repeat_the_runs_split(tmp_path: Path) -> None:
    for i in range(5):
        write_pair(tmp_path, f"p{i}", TOP, TOP)
    config = make_config()
    config.data.layout.val_fraction = 0.4
    config.data.layout.seed = 3
    layout = discover(tmp_path, config.data.layout)
    pairs, text = evaluation_pairs(tmp_path, config, "val")
    assert pairs == layout.val and len(pairs) == 2 and "val split" in text
    assert evaluation_pairs(tmp_path, config, "train")[0] == layout.train
    assert len(evaluation_pairs(tmp_path, config, "all")[0]) == 5
    with pytest.raises(DrunetError, match="no test pairs"):
        evaluation_pairs(tmp_path, config, "test")


def test_data_defaults_to_the_runs_own_folder(tmp_path: Path) -> None:
    write_pair(tmp_path, "a", TOP, TOP)
    config = make_config()
    with pytest.raises(DrunetError, match="pass --data"):
        evaluation_pairs(None, config, "all")
    config.data.root = tmp_path
    assert len(evaluation_pairs(None, config, "all")[0]) == 1


def test_class_names_come_from_the_config(dataset: Path) -> None:
    config = config_from_dict(
        {
            "model": {"in_channels": 1, "num_classes": 2},
            "data": {
                "normalization": {"mean": [0.0], "std": [1.0], "clip_percentiles": None},
                "masks": {"class_names": ["sky", "cloud"]},
            },
        }
    )
    evaluation = evaluate(Predictor(MinusHalf(), config), everything(dataset))
    assert list(evaluation.summary()["per_class"]) == ["sky", "cloud"]


def test_on_case_gets_the_image_and_both_masks(dataset: Path) -> None:
    seen = []
    evaluation = evaluate(
        Predictor(MinusHalf(), make_config()), everything(dataset), on_case=seen.append
    )
    assert [case.name for case in seen] == evaluation.names == ["a", "b"]
    a = seen[0]
    assert a.image is not None and a.image.shape[:2] == (4, 4)
    np.testing.assert_array_equal(a.prediction, TOP)
    np.testing.assert_array_equal(a.reference, LEFT)
    assert (
        a.mask_path == dataset / "masks" / "a.png" and a.image_path == dataset / "images" / "a.png"
    )


def test_spacing_scales_hd95(dataset: Path) -> None:
    predictor = Predictor(MinusHalf(), make_config())
    pixels = evaluate(predictor, everything(dataset), hd95=True)
    scaled = evaluate(predictor, everything(dataset), hd95=True, spacing=(3.0, 3.0))
    assert pixels.hd95 is not None and scaled.hd95 is not None
    assert scaled.hd95[0][1] == 3 * pixels.hd95[0][1] == 6.0
    assert scaled.summary()["hd95"]["unit"] == "spacing [3.0, 3.0]"
