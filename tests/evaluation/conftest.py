"""Small synthetic evaluations for the report tests: masks, shifted predictions, images."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from drunet.datasets import write_image, write_mask
from drunet.evaluation import CaseCollector
from drunet.evaluation.folder import count_classes, evaluate_folder
from drunet.evaluation.result import Evaluation


def make_folder_case(
    root: Path, name: str, truth: np.ndarray, prediction: np.ndarray, image: bool = True
) -> None:
    """``root/masks/<name>.png``, ``root/pred/<name>_mask.png`` and (``image``) an image."""
    write_mask(root / "masks" / f"{name}.png", truth.astype(np.uint8))
    write_mask(root / "pred" / f"{name}_mask.png", prediction.astype(np.uint8))
    if image:
        rng = np.random.default_rng(abs(hash(name)) % 2**32)
        pixels = truth * 120 + rng.integers(0, 100, truth.shape)
        write_image(root / "images" / f"{name}.png", pixels.astype(np.uint8))


def square(size: int, top: int, left: int, side: int, value: int = 1) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    mask[top : top + side, left : left + side] = value
    return mask


def shifted_cases(root: Path, count: int, size: int = 32, classes: int = 2) -> list[int]:
    """``count`` cases whose prediction is the truth shifted right by ``i % 7`` pixels; names
    ``case-NNN``. Returns the shifts."""
    shifts = []
    for i in range(count):
        truth = square(size, 4, 4, size // 2)
        if classes > 2:
            truth[size // 2 + 6 :, 2:10] = 2 + i % (classes - 2)
        shift = i % 7
        make_folder_case(root, f"case-{i:03d}", truth, np.roll(truth, shift, axis=1))
        shifts.append(shift)
    return shifts


def run_folder(root: Path, worst: int = 12, **kwargs) -> tuple[Evaluation, CaseCollector]:
    """Evaluate ``root/pred`` against ``root`` with a report collector."""
    collector = CaseCollector(count_classes(root), worst=worst)
    evaluation = evaluate_folder(root / "pred", root, on_case=collector, **kwargs)
    return evaluation, collector


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shifted_cases(tmp_path, 9)
    return tmp_path


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread: per-image counting of hundreds of tiny images is slower with two
    threads on a busy machine than with one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
