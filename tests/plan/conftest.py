"""Tiny synthetic datasets with known structure widths, sizes and empty fractions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from drunet.datasets import Pair, write_image, write_mask
from drunet.plan.speed import Speed


def lines_mask(size: int = 64, width: int = 2, step: int = 16) -> np.ndarray:
    """Horizontal lines ``width`` px thick every ``step`` rows: ``(size, size)`` uint8 0/1."""
    mask = np.zeros((size, size), np.uint8)
    for top in range(step // 2, size - width, step):
        mask[top : top + width] = 1
    return mask


def discs_mask(size: int = 64, radius: int = 10) -> np.ndarray:
    """Two filled discs of ``radius`` (cv2: ``2·radius + 1`` px across): uint8 0/1."""
    mask = np.zeros((size, size), np.uint8)
    cv2.circle(mask, (size // 4, size // 4), radius, 1, thickness=-1)
    cv2.circle(mask, (3 * size // 4, 3 * size // 4), radius, 1, thickness=-1)
    return mask


def write_folder(
    root: Path,
    masks: list[np.ndarray],
    image: Callable[[int, np.ndarray], np.ndarray] | None = None,
    suffix: str = ".png",
) -> Path:
    """``root/images`` + ``root/masks``: one gray uint8 image per mask (``image(i, mask)`` or
    the mask × 200 + 20), names ``000`` …"""
    for i, mask in enumerate(masks):
        pixels = image(i, mask) if image else (mask * 200 + 20).astype(np.uint8)[:, :, None]
        write_image(root / "images" / f"{i:03d}{suffix}", pixels)
        write_mask(root / "masks" / f"{i:03d}.png", mask)
    return root


def folder_pairs(root: Path) -> list[Pair]:
    """The pairs of a folder written by :func:`write_folder`, in name order."""
    images = sorted((root / "images").iterdir())  # any image suffix; masks are PNG
    return [Pair(path, root / "masks" / f"{path.stem}.png") for path in images]


def fake_speed(monkeypatch: pytest.MonkeyPatch, seconds: dict[str, float]) -> None:
    """Make the plan's training-speed measurement return ``seconds`` per 128² sample by model
    (deterministic plans in the CLI tests; drunet.plan.speed is measured in test_speed.py)."""

    def measured(_channels: int, _classes: int, _device: str, steps: int | None, least: int):
        return Speed(seconds.__getitem__, steps, least)

    monkeypatch.setattr("drunet.plan.apply.measured_speed", measured)
