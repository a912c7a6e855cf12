"""The evaluation report: content, escaping, embedded PNGs, the worst cases and the size bound."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from drunet.evaluation import write_evaluation_report
from drunet.evaluation.cases import CaseCollector, foreground_dice
from drunet.report.figures import FALSE_NEGATIVE, FALSE_POSITIVE, WRONG_CLASS, error_map
from tests.evaluation.conftest import make_folder_case, run_folder, shifted_cases, square

DATA_URI = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def decoded_pngs(text: str) -> list[np.ndarray]:
    images = []
    for payload in DATA_URI.findall(text):
        data = base64.b64decode(payload, validate=True)
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        assert image is not None and image.size > 0
        images.append(image)
    return images


def test_error_map_colours_by_hand() -> None:
    truth = np.array([[0, 1, 1, 2]])
    prediction = np.array([[1, 1, 0, 1]])
    colours = [tuple(c) for c in error_map(prediction, truth)[0]]
    assert colours == [FALSE_POSITIVE, (235, 235, 235), FALSE_NEGATIVE, WRONG_CLASS]
    assert FALSE_POSITIVE != FALSE_NEGATIVE


def test_foreground_dice_by_hand() -> None:
    truth, prediction = square(4, 0, 0, 2), square(4, 0, 0, 1)  # tp 1, fn 3
    assert foreground_dice(prediction, truth, 2, None) == pytest.approx(2 / 5)
    assert foreground_dice(np.zeros((2, 2)), np.zeros((2, 2)), 2, None) == 1.0  # empty rule
    # class 2 absent from both: 1.0, averaged with class 1's 2/5
    assert foreground_dice(prediction, truth, 3, None) == pytest.approx((2 / 5 + 1) / 2)


def test_collector_keeps_the_worst_cases_and_the_confusion_matrix(tmp_path: Path) -> None:
    shifts = shifted_cases(tmp_path, 10)
    evaluation, collector = run_folder(tmp_path, worst=3)
    worst = collector.worst_cases()
    assert len(worst) == 3 and all(c.panels for c in worst)
    assert sum(bool(c.panels) for c in collector.cases) == 3  # the others dropped theirs
    expected = sorted(range(10), key=lambda i: (-shifts[i], i))[:3]  # larger shift, lower Dice
    assert [c.index for c in worst] == expected
    assert [c.dice for c in worst] == sorted(c.dice for c in worst)
    assert collector.confusion.sum() == 10 * 32 * 32
    assert len(collector.cases) == evaluation.num_images == 10


def test_report_holds_every_section_and_row(tmp_path: Path) -> None:
    shifted_cases(tmp_path, 9, classes=4)
    evaluation, collector = run_folder(tmp_path, hd95=True)
    path = write_evaluation_report(evaluation, collector, tmp_path / "out", meta=["model: m"])
    text = path.read_text()
    assert path.name == "report.html" and text.startswith("<!DOCTYPE html>")
    for anchor in ("summary", "distribution", "confusion", "worst", "per-image", "cases"):
        assert f'id="{anchor}"' in text
    assert text.count("<tr data-name=") == 9
    for i in range(9):  # every row links to its case, which exists
        assert f'href="#case-{i}"' in text and f'id="case-{i}"' in text
    summary = evaluation.summary()
    assert f"{summary['mean']['dice']:.4f}" in text and "HD95 (px)" in text
    for reduction in ("micro", "macro", "micro-imagewise", "macro-imagewise"):
        assert f"<td>{reduction}</td>" in text
    assert 'data-key="dice_2"' in text  # per-class Dice columns for multi-class data
    assert "http://" not in text and "https://" not in text  # nothing from the network
    pngs = decoded_pngs(text)
    # histogram, confusion matrix, 9 worst × 4 panels, 9 strips
    assert len(pngs) == 2 + 9 * 4 + 9


def test_user_text_is_escaped(tmp_path: Path) -> None:
    name = 'x<img src=y onerror="alert(1)">&'
    make_folder_case(tmp_path, name, square(8, 0, 0, 4), square(8, 0, 0, 3))
    evaluation, collector = run_folder(tmp_path)
    evaluation.class_names = ["bg", "<b>cell</b>"]
    path = write_evaluation_report(
        evaluation, collector, tmp_path / "out", meta=["data: <script>alert(2)</script>"]
    )
    text = path.read_text()
    assert "<img src=y" not in text and "<script>alert" not in text and "<b>cell" not in text
    assert "x&lt;img src=y onerror=&quot;alert(1)&quot;&gt;&amp;" in text
    assert "&lt;b&gt;cell&lt;/b&gt;" in text


def test_run_curves_and_config_are_shown(tmp_path: Path) -> None:
    shifted_cases(tmp_path, 2)
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.csv").write_text(
        "epoch,train_loss,val_loss,lr,seconds,dice,iou,dice_0,dice_1\n"
        "1,0.9,0.8,0.001,2,0.5,0.4,0.9,0.5\n2,0.7,0.6,0.0009,2,0.6,0.5,0.92,0.6\n"
    )
    (run / "config.yaml").write_text("model:\n  name: drunet_s <&>\n")
    evaluation, collector = run_folder(tmp_path)
    text = write_evaluation_report(evaluation, collector, tmp_path / "out", run_dir=run).read_text()
    assert 'id="training"' in text and "name: drunet_s &lt;&amp;&gt;" in text
    assert len(decoded_pngs(text)) == 1 + 2 * 4 + 2 + 1  # + the curves
    assert 'id="confusion"' not in text  # binary: no confusion matrix


def test_collector_and_evaluation_must_agree(tmp_path: Path) -> None:
    shifted_cases(tmp_path, 2)
    evaluation, _ = run_folder(tmp_path)
    with pytest.raises(ValueError, match="on_case"):
        write_evaluation_report(evaluation, CaseCollector(2), tmp_path / "out")


def test_500_images_stay_under_20_mb(tmp_path: Path, one_thread: None) -> None:
    # Noise images compress worst; 500 of them at 96 × 96 with their masks.
    rng = np.random.default_rng(0)
    for i in range(500):
        truth = (rng.random((12, 12)) > 0.6).repeat(8, 0).repeat(8, 1).astype(np.uint8)
        prediction = truth.copy()
        prediction[rng.random(truth.shape) > 0.9] ^= 1
        make_folder_case(tmp_path, f"{i:03d}", truth, prediction)
    evaluation, collector = run_folder(tmp_path)
    path = write_evaluation_report(evaluation, collector, tmp_path / "out")
    size = path.stat().st_size
    assert evaluation.num_images == 500 and path.read_text().count("<tr data-name=") == 500
    assert size < 20e6, f"{size / 1e6:.1f} MB"
