"""Tissue detection: darker tissue on bright glass (brightfield), brighter tissue on a dark
field (fluorescence), decided by the overview's border; one gray value keeps everything."""

from __future__ import annotations

import numpy as np

from drunet.giant.regions import ArraySource
from drunet.giant.tissue import DARK_BORDER, tissue_map

BOX = (40, 60, 100, 140)  # top, left, bottom, right


def _slide(background: tuple[int, int], tissue: tuple[int, int]) -> np.ndarray:
    rng = np.random.default_rng(0)
    image = rng.integers(*background, (160, 200, 3), dtype=np.uint8)
    top, left, bottom, right = BOX
    image[top:bottom, left:right] = rng.integers(*tissue, (bottom - top, right - left, 3))
    return image


def _box_mask() -> np.ndarray:
    expected = np.zeros((160, 200), bool)
    top, left, bottom, right = BOX
    expected[top:bottom, left:right] = True
    return expected


def test_brightfield_tissue_is_the_darker_side() -> None:
    found = tissue_map(ArraySource(_slide((225, 236), (60, 140))), margin=0)
    assert not found.bright and np.array_equal(found.tissue, _box_mask())


def test_fluorescence_tissue_is_the_brighter_side_when_the_border_is_dark() -> None:
    found = tissue_map(ArraySource(_slide((0, 12), (80, 200))), margin=0)
    assert found.bright and np.array_equal(found.tissue, _box_mask())
    assert found.keep(*BOX[:2], 8, 8) and not found.keep(0, 0, 8, 8)


def test_a_border_partly_dark_stays_brightfield() -> None:
    """Dark tissue touching the top edge: the border is dark on 60 of its 716 pixels, far below
    DARK_BORDER, so the darker side is still tissue."""
    image = _slide((225, 236), (60, 140))
    image[:40, 60:120] = 90  # tissue reaching the top edge: 60 border pixels
    found = tissue_map(ArraySource(image), margin=0)
    assert DARK_BORDER > 60 / 716 and not found.bright
    assert found.tissue[:40, 60:120].all() and not found.tissue[:, :60].any()


def test_one_gray_value_keeps_every_tile() -> None:
    found = tissue_map(ArraySource(np.full((64, 64, 3), 128, np.uint8)))
    assert found.threshold is None and found.tissue.all() and not found.bright


class _Reads(ArraySource):
    def __init__(self, array: np.ndarray) -> None:
        super().__init__(array)
        self.rows: list[int] = []

    def read(self, top: int, left: int, height: int, width: int) -> np.ndarray:
        self.rows.append(height)
        return super().read(top, left, height, width)


def test_a_large_pyramid_level_is_read_strided_band_by_band() -> None:
    """A 4,100-row level (of a 4× larger image) is read 510 rows at a time and strided by 3:
    a 1,367 × 100 map whose pixels stand for 12 image pixels."""
    level = np.full((4100, 300, 3), 230, np.uint8)
    level[1000:2000, 100:200] = 60  # tissue
    low = _Reads(level)
    image = ArraySource(np.zeros((16400, 1200, 3), np.uint8))  # only its size is used
    found = tissue_map(image, low=low, margin=0)
    assert found.tissue.shape == (1367, 100) and found.scale == (12.0, 12.0)
    assert max(low.rows) == 510 and sum(low.rows) == 4100
    assert found.keep(4000, 400, 256, 256) and not found.keep(0, 0, 256, 256)
    assert not found.keep(8100, 400, 256, 256)  # level rows 2025…: glass
