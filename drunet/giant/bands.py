"""Bands of rows regrouped, halved into pyramid levels, and spooled: the writers' plumbing.

Everything here holds at most one block of rows per level (a tile row), whatever the image
size, so the writers' memory is bounded by the tile size and the image width.
"""

from __future__ import annotations

import tempfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

REDUCTIONS = ("nearest", "mean")  # nearest for class masks, mean for probabilities


def pyramid_shapes(height: int, width: int, tile: int) -> list[tuple[int, int]]:
    """Level sizes, each half the one before (rounded up), until the level fits in one tile."""
    shapes = [(height, width)]
    while max(shapes[-1]) > tile:
        h, w = shapes[-1]
        shapes.append(((h + 1) // 2, (w + 1) // 2))
    return shapes


def rebanded(
    bands: Iterable[np.ndarray],
    rows: int,
    *,
    height: int,
    width: int,
    channels: int,
    dtype: np.dtype,
) -> Iterator[np.ndarray]:
    """Bands of any heights → blocks of exactly ``rows`` rows ``(rows, W, C)`` (the last block
    the rest), cast to ``dtype``; bands of the wrong width or channels, or more or fewer rows
    than ``height`` in all, are a ``ValueError``."""
    buffer = np.empty((rows, width, channels), dtype)
    filled = total = 0
    for band in bands:
        band = np.asarray(band)
        if band.ndim == 2:
            band = band[:, :, None]
        if band.ndim != 3 or band.shape[1:] != (width, channels):
            raise ValueError(
                f"expected bands of shape (h, {width}, {channels}) or (h, {width}), "
                f"got {band.shape}"
            )
        total += len(band)
        if total > height:
            raise ValueError(f"the bands hold more than the image's {height} rows")
        start = 0
        while start < len(band):
            take = min(rows - filled, len(band) - start)
            buffer[filled : filled + take] = band[start : start + take]
            filled, start = filled + take, start + take
            if filled == rows:
                yield buffer
                buffer, filled = np.empty((rows, width, channels), dtype), 0
    if total != height:
        raise ValueError(f"the bands hold {total} rows, the image {height}")
    if filled:
        yield buffer[:filled]


def tiles_of(block: np.ndarray, tile: int) -> Iterator[np.ndarray]:
    """The tiles of a block of rows, left to right (the last one narrower)."""
    for left in range(0, block.shape[1], tile):
        yield block[:, left : left + tile]


class Halver:
    """The rows of one level, in order → the rows of the level half its size, as they finish.

    ``nearest`` keeps every second row and column from the first (exact class indices);
    ``mean`` averages 2 × 2 blocks (an odd last row or column averaged with itself), rounded
    to the nearest integer for integer types.
    """

    def __init__(self, reduce: str) -> None:
        if reduce not in REDUCTIONS:
            raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
        self.reduce = reduce
        self._carry: np.ndarray | None = None  # an odd row waiting for its pair

    def push(self, rows: np.ndarray) -> np.ndarray:
        if self._carry is not None:
            rows, self._carry = np.concatenate([self._carry, rows]), None
        even = len(rows) // 2 * 2
        if even < len(rows):
            self._carry = rows[even:].copy()
        return self._halve(rows[:even])

    def finish(self) -> np.ndarray:
        carry, self._carry = self._carry, None
        if carry is None:
            return np.empty((0, 0, 0), np.uint8)
        return self._halve(np.concatenate([carry, carry]))

    def _halve(self, rows: np.ndarray) -> np.ndarray:  # (2n, W, C) → (n, ⌈W/2⌉, C)
        if self.reduce == "nearest":
            return np.ascontiguousarray(rows[::2, ::2])
        if rows.shape[1] % 2:
            rows = np.concatenate([rows, rows[:, -1:]], axis=1)
        n, w, c = len(rows) // 2, rows.shape[1] // 2, rows.shape[2]
        if np.issubdtype(rows.dtype, np.integer):
            total = rows.reshape(n, 2, w, 2, c).sum(axis=(1, 3), dtype=np.int64)
            return np.floor_divide(total + 2, 4).astype(rows.dtype)
        total64 = rows.reshape(n, 2, w, 2, c).astype(np.float64).sum(axis=(1, 3))
        return (total64 / 4).astype(rows.dtype)


class Pyramid:
    """The level-0 rows in order → the rows of levels 1 … ``levels - 1``, as they finish."""

    def __init__(self, levels: int, reduce: str) -> None:
        self._halvers = [Halver(reduce) for _ in range(levels - 1)]

    def push(self, rows: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """``(level, rows)`` for each level that has new rows."""
        out: list[tuple[int, np.ndarray]] = []
        for level, halver in enumerate(self._halvers, 1):
            rows = halver.push(rows)
            if not len(rows):
                break
            out.append((level, rows))
        return out

    def finish(self) -> list[tuple[int, np.ndarray]]:
        """The last rows of every level (after the last ``push``)."""
        out: list[tuple[int, np.ndarray]] = []
        for level, halver in enumerate(self._halvers, 1):
            pushed = [] if not out or out[-1][0] != level - 1 else [halver.push(out[-1][1])]
            rows = [r for r in [*pushed, halver.finish()] if len(r)]
            if rows:
                out.append((level, np.concatenate(rows)))
        return out


class RowSpool:
    """Rows appended in order, kept compressed in an anonymous temporary file, read back in
    blocks — a lower pyramid level waiting for the level above it to be written."""

    def __init__(self, folder: Path, width: int, channels: int, dtype: np.dtype) -> None:
        # Unnamed on disk, so a killed writer leaves nothing behind; closed by close().
        self._file = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115
        self._shape = (width, channels)
        self._dtype = np.dtype(dtype)
        self._chunks: list[tuple[int, int]] = []  # (compressed bytes, rows)

    def append(self, rows: np.ndarray) -> None:
        if len(rows):
            data = zlib.compress(np.ascontiguousarray(rows, self._dtype).tobytes(), 1)
            self._file.write(data)
            self._chunks.append((len(data), len(rows)))

    @property
    def rows(self) -> int:
        return sum(n for _, n in self._chunks)

    def bands(self) -> Iterator[np.ndarray]:
        """The rows back, in the order appended, one appended chunk at a time."""
        self._file.seek(0)
        for size, count in self._chunks:
            data = zlib.decompress(self._file.read(size))
            yield np.frombuffer(data, self._dtype).reshape(count, *self._shape)

    def close(self) -> None:
        self._file.close()
