"""Streamed prediction: the sliding window of :mod:`drunet.sliding` over a :class:`RegionSource`,
band by band, equal to the in-memory :class:`~drunet.inference.Predictor` bit for bit.

Equality holds because nothing that decides a pixel's value changes:

* the **tile grid** is the in-memory one — :func:`~drunet.sliding.tile_starts` over the whole
  image, tiles in row-major order — and so are the **batches** (``batch_size`` consecutive tiles,
  which may span two tile rows), so every tile goes through the network in the same batch;
* **normalisation** is per pixel (:meth:`Predictor.preprocess` on each tile's pixels): the
  run's stored clip window and mean/std, a fixed window, ImageNet statistics or none. Mode
  ``zscore`` standardises by the statistics of the *whole* image, which a stream does not hold:
  it is refused (the in-memory path, or a run with dataset statistics, handles such images);
* the **blend** adds ``tile_output · weights`` to float32 sums in tile order and divides once,
  as :func:`~drunet.sliding.sliding_window` does, so every pixel sees the same float32
  additions in the same order;
* **threshold / argmax** is per pixel (:func:`~drunet.inference.postprocess.to_mask`).

The clean-ups of :mod:`drunet.inference.postprocess` (``min_size``, ``fill_holes``,
``largest_component``) label connected components of the whole mask, which may span any number
of bands: they are not streamable and are refused (:func:`check_streamable`).

A row is finished once the tiles that start at or above it are all added: after each tile the
rows above the next tile's top are divided, thresholded and handed on (:func:`stream_scores`).

**Memory** (``T`` = tile side, ``W`` the image width, ``C`` input channels, ``K'`` score rows —
1 for binary —, ``B`` the batch size): every buffer is allocated once, at its largest, and
none grows with the image. The input rows are two ``(T, W, C)`` buffers of the file's pixel
type, ``b`` bytes (the rows the next tile row shares are copied from one to the other; each tile
is normalised on its own), plus the rows just read; the sums are a ring of ``T`` rows,
``4·W·T·(K' + 1)`` bytes, since after each tile the rows above the next one's top are finished;
plus ``B`` tiles in flight and the network's activations. About ``W·T·(2·C·b + 4·(K' + 1))``
bytes: a 40,000-wide 8-bit RGB slide with 256² tiles and a binary model holds 0.14 GB of
buffers, whatever its height — and whatever gaps background skipping leaves, since a batch
spanning a gap never holds the rows between its tiles.

With ``start_row`` (continuing an interrupted run) the batches whose tiles all end above it are
not run again and rows above it are not emitted; the batches overlapping it are recomputed, so
the sums of the rows below equal those of an uninterrupted run.

With ``keep`` (background skipping, :mod:`drunet.giant.tissue`) the tiles it rejects are not
run; the kept tiles are batched in order, and a pixel no kept tile covers is background (score
0; class 0 with probability 1).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from drunet.errors import DrunetError
from drunet.giant.regions import RegionSource
from drunet.inference.network import to_device
from drunet.inference.postprocess import to_mask
from drunet.inference.predictor import Predictor
from drunet.inference.tta import with_tta
from drunet.sliding import Forward, run_tiles, tile_starts, tile_weights

Tile = tuple[int, int]  # (top, left)
KeepTile = Callable[[int, int, int, int], bool]  # (top, left, height, width) → run it?

log = logging.getLogger(__name__)


@dataclass
class TileTally:
    """Tiles of the grid: in total, run through the network, skipped as background."""

    total: int = 0
    computed: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class Band:
    """Finished rows ``[top, top + h)``: the mask ``(h, W)`` and, when asked, the probabilities
    ``(h, W, K)`` float32 (binary: background and foreground)."""

    top: int
    mask: np.ndarray
    probabilities: np.ndarray | None = None


def score_rows(predictor: Predictor) -> int:
    """Rows of the network's probabilities ``K'``: 1 for a binary model, else the classes."""
    return 1 if predictor.num_classes == 2 else predictor.num_classes


def check_streamable(predictor: Predictor) -> None:
    """Refuse what needs the whole image: mask clean-ups and per-image (zscore) statistics."""
    post = predictor.options.postprocess
    if post.changes_mask:
        raise DrunetError(
            "--min-size, --fill-holes and --largest label connected components of the whole "
            "mask, which a streamed prediction never holds; drop them (clean the mask "
            "afterwards, e.g. in QuPath) or predict the image in memory"
        )
    if predictor.postprocess.changes_mask:  # the run's own choice (drunet.plan.postprocess)
        log.warning(
            "the run's stored clean-ups (%s) label the whole mask and are not applied to a "
            "streamed prediction; clean the mask afterwards or predict the image in memory",
            predictor.postprocess.cleanup,
        )
    if predictor.input_normalization.mode == "zscore":
        raise DrunetError(
            "the run normalises each image by its own mean and std (normalization mode "
            "zscore), which needs the whole image; a streamed prediction cannot match it — "
            "predict in memory, or train with mode 'dataset'"
        )


def tile_forward(predictor: Predictor) -> Forward:
    """The forward :meth:`Predictor.scores` gives the sliding window (device, then TTA)."""
    opts = predictor.options
    tta = with_tta(predictor.network, opts.tta_flips, opts.tta_rot90)

    def forward(batch: torch.Tensor) -> torch.Tensor:
        return tta(to_device(batch, predictor.device))

    return forward


def tile_grid_of(predictor: Predictor, height: int, width: int) -> tuple[int, int, list[Tile]]:
    """``(tile height, tile width, tiles)`` of the in-memory sliding window, row-major."""
    opts = predictor.options
    tile_h, tile_w = min(predictor.tile_size, height), min(predictor.tile_size, width)
    rows = tile_starts(height, tile_h, opts.overlap)
    cols = tile_starts(width, tile_w, opts.overlap)
    return tile_h, tile_w, [(y, x) for y in rows for x in cols]


def stream_scores(
    predictor: Predictor,
    source: RegionSource,
    *,
    start_row: int = 0,
    keep: KeepTile | None = None,
    tally: TileTally | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Finished rows as ``(top, scores (K', h, W))`` float32, top to bottom from ``start_row``.

    The scores are the :meth:`Predictor.scores` of the whole image, rows ``top … top + h``.
    ``keep``/``tally``/``on_progress``: see the module; progress counts tiles of the grid.
    """
    check_streamable(predictor)
    tally = tally if tally is not None else TileTally()
    height, width = source.height, source.width
    if predictor.fits_whole(height, width):  # small: whole, as the in-memory path does
        x = predictor.preprocess(source.read(0, 0, height, width), str(source.path))
        tally.total = tally.computed = 1
        if start_row < height:  # else every row is done already
            yield start_row, predictor.scores(x)[0][:, start_row:]
        return
    opts = predictor.options
    tile_h, tile_w, grid = tile_grid_of(predictor, height, width)
    todo = grid if keep is None else [t for t in grid if keep(t[0], t[1], tile_h, tile_w)]
    tally.total, tally.skipped = len(grid), len(grid) - len(todo)
    weights = tile_weights(tile_h, tile_w, opts.blend)
    forward = tile_forward(predictor)
    inputs = _InputRows(predictor, source, tile_h)
    sums = _Sums(width, start_row, score_rows(predictor), tile_h)
    batches = [todo[i : i + opts.batch_size] for i in range(0, len(todo), opts.batch_size)]
    if batches:  # rows above the first kept tile: background, emitted before any sum is made
        yield from sums.finish(batches[0][0][0])
    for index, batch in enumerate(batches):
        following = batches[index + 1][0][0] if index + 1 < len(batches) else height
        if batch[-1][0] + tile_h > start_row:  # else: every tile ends above, already emitted
            x = torch.stack([inputs.tile(y, c, tile_w) for y, c in batch])
            out = run_tiles(forward, x)  # (n, K', h, w)
            tops = [y for y, _ in batch[1:]] + [following]
            for (y, c), tile_out, next_top in zip(batch, out, tops, strict=True):
                sums.add(y, c, tile_out, weights)
                yield from sums.finish(next_top)  # every tile starting above it is added
            tally.computed += len(batch)
        if on_progress is not None:
            on_progress(tally.skipped + sum(len(b) for b in batches[: index + 1]), len(grid))
        yield from sums.finish(following)
    yield from sums.finish(height)


def stream_bands(
    predictor: Predictor,
    source: RegionSource,
    *,
    probabilities: bool = False,
    start_row: int = 0,
    keep: KeepTile | None = None,
    tally: TileTally | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Iterator[Band]:
    """:func:`stream_scores` thresholded (binary) or argmaxed: the finished :class:`Band` s."""
    for top, scores in stream_scores(
        predictor, source, start_row=start_row, keep=keep, tally=tally, on_progress=on_progress
    ):
        yield finish_band(predictor, top, scores, probabilities)


def finish_band(
    predictor: Predictor, top: int, scores: torch.Tensor, probabilities: bool = False
) -> Band:
    """Scores ``(K', h, W)`` → the band's mask, as :meth:`Predictor.finish` makes it."""
    try:
        mask = to_mask(scores, predictor.num_classes, predictor.options.postprocess.threshold)
    except ValueError as err:
        raise DrunetError(str(err)) from None
    probs = None
    if probabilities:
        full = torch.cat([1 - scores, scores]) if scores.shape[0] == 1 else scores
        probs = np.ascontiguousarray(full.numpy().transpose(1, 2, 0))  # (h, W, K)
    return Band(top, mask, probs)


class _InputRows:
    """Input rows of the whole width as read (the file's dtype), at most one tile high, read as
    tiles need them: two preallocated ``(T, W, C)`` buffers, the rows still needed copied from
    one to the other when the tile row moves down (never a buffer that grows). Each tile is
    normalised on its own (:meth:`Predictor.preprocess` is per pixel: the same values as the
    whole image's), so the rows are held at the file's width in bytes, not as float32."""

    def __init__(self, predictor: Predictor, source: RegionSource, capacity: int) -> None:
        self.predictor, self.source, self.capacity = predictor, source, capacity
        self.top = self.end = 0  # rows [top, end) are buffers[0][: end - top]
        self.buffers: list[np.ndarray] = []

    def tile(self, top: int, left: int, width: int) -> torch.Tensor:
        """The normalised tile ``(C, T, width)`` at ``(top, left)``."""
        raw = self.rows(top, top + self.capacity)[:, left : left + width]
        return self.predictor.preprocess(raw, str(self.source.path))[0]

    def rows(self, top: int, bottom: int) -> np.ndarray:
        """``(bottom - top, W, C)`` from row ``top`` (never above the previous call's top)."""
        if top < self.top or bottom - top > self.capacity:
            raise ValueError(f"rows {top}…{bottom} outside the stream's window at {self.top}")
        if top >= self.end:  # nothing held is needed (the first tile, a skipped stretch)
            self.top = self.end = top
        if top == self.top and bottom <= self.end:
            return self.buffers[0][: bottom - top]
        kept = self.end - top  # rows [top, end) already read
        new = None
        if bottom > self.end:
            new = self.source.read(self.end, 0, bottom - self.end, self.source.width)
            new = new[:, :, None] if new.ndim == 2 else new  # (rows, W, C)
        if not self.buffers:
            assert new is not None  # the first call reads
            shape = (self.capacity, *new.shape[1:])
            self.buffers = [np.empty(shape, new.dtype), np.empty(shape, new.dtype)]
        current, spare = self.buffers
        if kept:
            spare[:kept] = current[top - self.top : self.end - self.top]
        if new is not None:
            spare[kept : kept + len(new)] = new
        self.buffers = [spare, current]
        self.top, self.end = top, max(bottom, self.end)
        return spare[: bottom - top]


class _Sums:
    """Blended sums and weights of the held rows ``[top, end)``, the whole width, in a ring of
    ``capacity`` preallocated rows (row ``r`` at ``r % capacity``): a tile adds within
    ``[top, top + capacity)``; finished rows are divided out and their ring rows zeroed."""

    def __init__(self, width: int, top: int, rows_k: int, capacity: int) -> None:
        self.top = self.end = top
        self.capacity = capacity  # also the rows no tile covers are emitted this many at a time
        self.total = torch.zeros(rows_k, capacity, width)  # (K', ring rows, W)
        self.weight = torch.zeros(capacity, width)  # (ring rows, W)

    def _ring(self, start: int, stop: int) -> Iterator[tuple[slice, int]]:
        """Rows ``[start, stop)`` as ring slices and their offsets from ``start`` (one or two)."""
        row = start
        while row < stop:
            at = row % self.capacity
            count = min(stop - row, self.capacity - at)
            yield slice(at, at + count), row - start
            row += count

    def add(self, y: int, x: int, out: torch.Tensor, weights: torch.Tensor) -> None:
        """Add one tile's ``out (K', h, w) · weights`` at ``(y, x)``, rows above ``top`` cut."""
        skip = max(self.top - y, 0)
        height, width = weights.shape
        if skip >= height:
            return
        if y + height - self.top > self.capacity:
            raise ValueError(f"a tile at row {y} reaches past the held rows from {self.top}")
        weighted, weight = out[:, skip:] * weights[skip:], weights[skip:]
        for ring, offset in self._ring(y + skip, y + height):
            count = ring.stop - ring.start
            self.total[:, ring, x : x + width].add_(weighted[:, offset : offset + count])
            self.weight[ring, x : x + width].add_(weight[offset : offset + count])
        self.end = max(self.end, y + height)

    def finish(self, limit: int) -> Iterator[tuple[int, torch.Tensor]]:
        """Rows ``[top, limit)`` divided, as ``(top, scores)``; ``top`` moves to ``limit``."""
        while self.top < limit:
            held = self.end - self.top
            count = min(limit - self.top, held if held > 0 else self.capacity)
            if held > 0:
                parts, empty = [], []
                for ring, _ in self._ring(self.top, self.top + count):
                    parts.append(self.total[:, ring] / self.weight[ring])  # the in-memory div
                    empty.append(self.weight[ring] == 0)
                    self.total[:, ring] = 0.0
                    self.weight[ring] = 0.0
                scores = parts[0] if len(parts) == 1 else torch.cat(parts, 1)
                uncovered = empty[0] if len(empty) == 1 else torch.cat(empty)
            else:
                scores = self.total.new_zeros(len(self.total), count, self.total.shape[2])
                uncovered = torch.ones(count, scores.shape[2], dtype=torch.bool)
            if uncovered.any():  # only when tiles were skipped
                scores[:, uncovered] = 0.0
                if len(scores) > 1:  # multi-class: background, certainly
                    scores[0, uncovered] = 1.0
            yield self.top, scores
            self.top += count
            self.end = max(self.end, self.top)
