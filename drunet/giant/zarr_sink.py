"""A giant mask (or probabilities) written as OME-Zarr (NGFF 0.4, zarr v2), band by band.

Level ``k`` is the array ``"k"``, half the size of level ``k - 1`` (rounded up), chunked in
``chunk`` × ``chunk`` pieces; one channel is stored ``(y, x)``, several ``(c, y, x)`` as NGFF
orders them. Every level is written as its rows arrive, so memory holds one chunk row per
level. The folder is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from drunet.atomic import atomic_output
from drunet.giant.bands import Pyramid, pyramid_shapes, rebanded
from drunet.giant.optional import require
from drunet.giant.regions import Bands
from drunet.giant.tiff_sink import check_layout

NGFF_VERSION = "0.4"


def write_ome_zarr(
    path: str | Path,
    bands: Bands,
    *,
    height: int,
    width: int,
    dtype: np.dtype | type,
    channels: int = 1,
    chunk: int = 256,
    pyramid: bool = True,
    reduce: str = "nearest",
    mpp: float | None = None,
) -> None:
    """Write full-width ``bands`` ``(h, width[, channels])``, top to bottom, as OME-Zarr.

    ``pyramid``, ``reduce`` and ``mpp`` as for :func:`drunet.giant.tiff_sink.write_tiled_tiff`
    (``mpp`` becomes the levels' ``scale`` in micrometers). Bands that do not add up to
    ``height`` rows of the right shape raise ``ValueError`` and leave no folder behind.
    """
    zarr = require("zarr", f"writing the OME-Zarr image {path}")
    dtype = check_layout(height, width, channels, np.dtype(dtype), chunk, reduce)
    shapes = pyramid_shapes(height, width, chunk) if pyramid else [(height, width)]
    with atomic_output(path, folder=True) as tmp:
        group = zarr.open_group(tmp, mode="w", zarr_format=2)
        writers = [
            _LevelWriter(
                group.create_array(
                    str(level),
                    shape=_stored((h, w), channels),
                    chunks=_stored((min(chunk, h), min(chunk, w)), channels),
                    dtype=dtype,
                    fill_value=0,
                ),
                chunk,
            )
            for level, (h, w) in enumerate(shapes)
        ]
        halving = Pyramid(len(shapes), reduce)
        blocks = rebanded(bands, chunk, height=height, width=width, channels=channels, dtype=dtype)
        for block in blocks:
            writers[0].add(block)
            for level, rows in halving.push(block):
                writers[level].add(rows)
        for level, rows in halving.finish():
            writers[level].add(rows)
        for writer in writers:
            writer.flush()
        group.attrs["multiscales"] = [_multiscale(len(shapes), channels, mpp)]


class _LevelWriter:
    """Rows of one level, in order, written to its array a whole chunk row at a time."""

    def __init__(self, array: Any, chunk: int) -> None:
        self.array = array
        self.chunk = chunk
        self.top = 0
        self.pending: list[np.ndarray] = []

    def add(self, rows: np.ndarray) -> None:
        self.pending.append(rows)
        if sum(len(r) for r in self.pending) >= self.chunk:
            stacked = np.concatenate(self.pending)
            whole = len(stacked) // self.chunk * self.chunk
            self._write(stacked[:whole])
            self.pending = [stacked[whole:]] if whole < len(stacked) else []

    def flush(self) -> None:
        if self.pending:
            self._write(np.concatenate(self.pending))
            self.pending = []

    def _write(self, rows: np.ndarray) -> None:  # (h, W, C)
        bottom = self.top + len(rows)
        if self.array.ndim == 2:
            self.array[self.top : bottom] = rows[:, :, 0]
        else:
            self.array[:, self.top : bottom] = np.moveaxis(rows, 2, 0)
        self.top = bottom


def _stored(size: tuple[int, int], channels: int) -> tuple[int, ...]:
    return size if channels == 1 else (channels, *size)


def _multiscale(levels: int, channels: int, mpp: float | None) -> dict[str, Any]:
    space: dict[str, Any] = {"type": "space"}
    if mpp is not None:
        space["unit"] = "micrometer"
    axes = [{"name": "y", **space}, {"name": "x", **space}]
    if channels > 1:
        axes.insert(0, {"name": "c", "type": "channel"})
    datasets = []
    for level in range(levels):
        step = (mpp or 1.0) * 2**level
        scale = [step, step] if channels == 1 else [1.0, step, step]
        datasets.append(
            {"path": str(level), "coordinateTransformations": [{"type": "scale", "scale": scale}]}
        )
    return {"version": NGFF_VERSION, "axes": axes, "datasets": datasets}
