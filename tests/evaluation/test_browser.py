"""The evaluation report in a real browser (headless Chromium): one row per image, sorting by a
column from the URL fragment, every image decoded, a screenshot that is not blank.

Skipped when no Chromium binary is found (``apt-get install chromium`` on Debian; ``.ci/run``
installs it). ``DRUNET_CHROMIUM`` names a binary explicitly.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from drunet.evaluation import write_evaluation_report
from drunet.evaluation.report import per_image_values
from tests.evaluation.conftest import run_folder, shifted_cases
from tests.evaluation.test_evaluate_report import decoded_pngs

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_chromium() -> str | None:
    explicit = os.environ.get("DRUNET_CHROMIUM")
    if explicit:
        return explicit
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


CHROMIUM = find_chromium()
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no chromium binary on PATH (apt-get install chromium, or set DRUNET_CHROMIUM)",
    ),
]


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)


def row_names(dom: str) -> list[str]:
    return re.findall(r'<tr data-name="([^"]*)"', dom)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], list[float]]:
    root = tmp_path_factory.mktemp("browser")
    shifted_cases(root, 9, size=48)
    evaluation, collector = run_folder(root, worst=4)
    path = write_evaluation_report(evaluation, collector, root / "out", meta=["browser test"])
    dice = [v["dice"] for v in per_image_values(evaluation)]
    return path, evaluation.names, dice


def test_one_row_per_image_and_every_image_decodes(report, tmp_path: Path) -> None:
    path, names, _ = report
    dom = chromium(tmp_path, "--dump-dom", path.as_uri()).stdout
    assert row_names(dom) == names  # as written: by name
    marker = re.search(r'id="image-check" data-ok="(\d+)" data-total="(\d+)"', dom)
    assert marker, "the load script did not run"
    images = len(decoded_pngs(path.read_text()))  # every data URI is a valid PNG
    assert (
        int(marker[1]) == int(marker[2]) == images == 1 + 4 * 4 + 9
    )  # histogram, 4 worst × 4, 9 strips


def test_sorting_by_dice_reorders_the_rows(report, tmp_path: Path) -> None:
    path, names, dice = report
    ascending = [n for _, n in sorted(zip(dice, names, strict=True), key=lambda x: x[0])]
    assert ascending != names  # the test would prove nothing otherwise
    dom = chromium(tmp_path, "--dump-dom", path.as_uri() + "#sort=dice").stdout
    assert row_names(dom) == ascending
    assert re.search(r'<th data-key="dice" aria-sort="ascending"', dom)
    dom = chromium(tmp_path, "--dump-dom", path.as_uri() + "#sort=-dice&filter=case-00").stdout
    descending = [n for _, n in sorted(zip(dice, names, strict=True), key=lambda x: -x[0])]
    assert row_names(dom) == descending
    hidden = re.findall(r'<tr data-name="([^"]*)" style="display: none;"', dom)
    assert sorted(hidden) == [n for n in names if not n.startswith("case-00")]


def test_screenshot_is_not_blank(report, tmp_path: Path) -> None:
    path, _, _ = report
    shot = tmp_path / "shot.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,1600", path.as_uri())
    pixels = cv2.imread(str(shot))
    assert pixels is not None and pixels.shape[:2] == (1600, 1200)
    assert float(np.var(pixels)) > 0
