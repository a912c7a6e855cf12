"""Helpers shared by the dataset tests: write a tiny ``images/`` + ``masks/`` folder by hand."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from drunet.datasets import Pair, write_image, write_mask

WritePair = Callable[..., Pair]


@pytest.fixture
def write_pair(tmp_path: Path) -> WritePair:
    """``write_pair(stem, image, mask, root=tmp_path / "data")`` → the written ``Pair``."""

    def write(
        stem: str,
        image: np.ndarray,
        mask: np.ndarray,
        root: Path | None = None,
        image_suffix: str = ".png",
    ) -> Pair:
        root = root or tmp_path / "data"
        pair = Pair(root / "images" / f"{stem}{image_suffix}", root / "masks" / f"{stem}.png")
        write_image(pair.image, image)
        write_mask(pair.mask, mask)
        return pair

    return write
