"""The comparison report: models side by side, images ordered by disagreement, every file."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from drunet.compare import ModelReport, write_reports
from drunet.datasets import Pair, write_image, write_mask
from drunet.engine.epochs import EpochRecord
from drunet.report.compare_report import ModelMasks, compare_report, disagreement
from drunet.report.markdown import markdown
from tests.evaluation.conftest import square
from tests.evaluation.test_evaluate_report import decoded_pngs


def pairs_on_disk(root: Path, count: int) -> list[Pair]:
    pairs = []
    for i in range(count):
        image, mask = root / "images" / f"im{i}.png", root / "masks" / f"im{i}.png"
        write_image(image, (square(16, 2, 2, 8) * 200).astype(np.uint8))
        write_mask(mask, square(16, 2, 2, 8))
        pairs.append(Pair(image, mask))
    return pairs


def test_disagreement_by_hand() -> None:
    a, b, c = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), np.array([1, 1, 1, 1])
    assert disagreement([a, b], a) == 0.25
    assert disagreement([a, b, c], a) == pytest.approx((0.25 + 0.5 + 0.25) / 3)
    assert disagreement([b], a) == 0.25  # one model: its share of wrong pixels


def test_images_are_ordered_by_disagreement(tmp_path: Path) -> None:
    pairs = pairs_on_disk(tmp_path, 3)
    truth = square(16, 2, 2, 8)
    first = [truth, truth, truth]
    second = [np.roll(truth, s, axis=1) for s in (1, 4, 2)]  # im1 differs most, then im2
    models = [ModelMasks("drunet <s>", first, "runs/a"), ModelMasks("unet", second)]
    rows = [{"model": "drunet <s>", "Dice": "0.91234567"}, {"model": "unet", "Dice": "0.8"}]
    text = compare_report(rows, pairs, models, curves_png=None)
    assert re.findall(r'<tr data-name="([^"]*)"', text) == ["im1", "im2", "im0"]
    assert re.findall(r'class="case" id="case-(\d)"', text) == ["1", "2", "0"]
    assert "drunet &lt;s&gt;" in text and "drunet <s>" not in text and "0.91234567" in text
    assert 'data-key="dice_1"' in text
    assert len(decoded_pngs(text)) == 3 * 4  # image, truth, two models
    with pytest.raises(ValueError, match="2 masks for 3 images"):
        compare_report(rows, pairs, [ModelMasks("x", first[:2])])


def test_write_reports_writes_the_html_report(tmp_path: Path) -> None:
    pairs = pairs_on_disk(tmp_path, 2)
    history = [EpochRecord(e, 1.0 / e, 0.9 / e, 1e-3, 2.0, {"dice": 0.5 + e / 10}) for e in (1, 2)]
    reports = [
        ModelReport(
            name,
            f"runs/{name}",
            2,
            0.1,
            {"dice": 0.9, "iou": 0.8},
            1000,
            0.5,
            3.0,
            4.0,
            history,
            [square(16, 2, 2, 8)] * 2,
        )
        for name in ("drunet", "unet_resnet34")
    ]
    paths = write_reports(reports, pairs, tmp_path / "cmp")
    text = paths["report"].read_text()
    assert paths["report"].name == "report.html"
    assert 'id="curves"' in text and text.count("<tr data-name=") == 2
    assert (tmp_path / "cmp" / "compare.md").read_text() == markdown(
        [
            {
                "model": "drunet",
                "Dice": "0.9000",
                "IoU": "0.8000",
                "params (M)": "0.00",
                "GFLOPs/patch": "0.5",
                "train img/s": "3.00",
                "infer img/s": "4.00",
                "epochs": "2",
                "minutes": "0.1",
            },
            {
                "model": "unet_resnet34",
                "Dice": "0.9000",
                "IoU": "0.8000",
                "params (M)": "0.00",
                "GFLOPs/patch": "0.5",
                "train img/s": "3.00",
                "infer img/s": "4.00",
                "epochs": "2",
                "minutes": "0.1",
            },
        ]
    )


def test_markdown_keeps_every_cell_whole() -> None:
    rows = [{"model": "unet_resnet34", "Dice": "0.712345"}, {"model": "a|b", "IoU": "1"}]
    assert markdown(rows).splitlines() == [
        "| model | Dice | IoU |",
        "|---|---|---|",
        "| unet_resnet34 | 0.712345 |  |",
        "| a\\|b |  | 1 |",
    ]
