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
1 for binary —, ``B`` the batch size): every buffer is bounded, and only one grows with the
width. The input is read a block at a time, ``T`` rows by ``BLOCK_COLUMNS`` (2,048) columns of
the file's pixel type (:class:`_InputBlock`), whatever the width; the sums are a ring of ``T``
rows, ``4·W·T·(K' + 1)`` bytes, since after each tile the rows above the next one's top are
finished; finished rows are divided, thresholded and handed on ``FINISH_ROWS`` (64) at a time;
plus ``B`` tiles in flight and the network's activations. A 40,000-wide slide with 256² tiles
and a binary model holds 82 MB of sums and 1.5 MB of input (8-bit RGB), whatever its height —
and whatever gaps background skipping leaves, since a batch spanning a gap never holds the
rows between its tiles.

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

BLOCK_COLUMNS = 2048  # input columns read at once (a tile's width when wider), any image width
FINISH_ROWS = 64  # rows divided, thresholded and handed on at once


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


def tile_grid_of(
    predictor: Predictor, height: int, width: int
) -> tuple[int, int, list[int], list[int]]:
    """``(tile height, tile width, row starts, column starts)`` of the in-memory sliding
    window; its tiles are ``(y, x)`` for each row start ``y``, then each column start ``x``."""
    opts = predictor.options
    tile_h, tile_w = min(predictor.tile_size, height), min(predictor.tile_size, width)
    rows = tile_starts(height, tile_h, opts.overlap)
    cols = tile_starts(width, tile_w, opts.overlap)
    return tile_h, tile_w, rows, cols


def _kept_batches(
    rows: list[int], cols: list[int], size: int, keep: KeepTile | None, tile: tuple[int, int]
) -> Iterator[tuple[list[Tile], int]]:
    """The kept tiles in row-major order, ``size`` at a time, each batch with the number of
    grid tiles up to its last one. Made as needed: a fine grid (a high overlap on a giant
    image: millions of tiles) is never held as a list."""
    batch: list[Tile] = []
    seen = 0
    for y in rows:
        for x in cols:
            seen += 1
            if keep is None or keep(y, x, *tile):
                batch.append((y, x))
                if len(batch) == size:
                    yield batch, seen
                    batch = []
    if batch:
        yield batch, seen


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
    tile_h, tile_w, rows, cols = tile_grid_of(predictor, height, width)
    tally.total, tally.skipped = len(rows) * len(cols), 0
    weights = tile_weights(tile_h, tile_w, opts.blend)
    forward = tile_forward(predictor)
    inputs = _InputBlock(predictor, source, max(BLOCK_COLUMNS, tile_w))
    sums = _Sums(width, start_row, score_rows(predictor), tile_h)
    batches = _kept_batches(rows, cols, opts.batch_size, keep, (tile_h, tile_w))
    upcoming = next(batches, None)
    if upcoming is not None:  # rows above the first kept tile: background, emitted at once
        yield from sums.finish(upcoming[0][0][0])
    kept = seen = 0
    while upcoming is not None:
        (batch, seen), upcoming = upcoming, next(batches, None)
        following = upcoming[0][0][0] if upcoming is not None else height
        if batch[-1][0] + tile_h > start_row:  # else: every tile ends above, already emitted
            x = torch.stack([inputs.tile(y, c, tile_h, tile_w) for y, c in batch])
            out = run_tiles(forward, x)  # (n, K', h, w)
            tops = [y for y, _ in batch[1:]] + [following]
            for (y, c), tile_out, next_top in zip(batch, out, tops, strict=True):
                sums.add(y, c, tile_out, weights)
                yield from sums.finish(next_top)  # every tile starting above it is added
            tally.computed += len(batch)
        kept += len(batch)
        tally.skipped = seen - kept
        if on_progress is not None:
            on_progress(seen, tally.total)
        yield from sums.finish(following)
    tally.skipped = tally.total - kept
    if on_progress is not None and seen < tally.total:  # skipped tiles after the last batch
        on_progress(tally.total, tally.total)
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


class _InputBlock:
    """The input the tiles need, one block of a tile row at a time: rows ``[top, top + T)``
    and ``columns`` columns from the left edge of the tile that first needs them, as read (the
    file's dtype). A tile outside the held block reads the block that starts at its own left
    edge, so the memory is one block, ``T · columns · C`` bytes, whatever the image's width.
    Rows that two tile rows share, and columns at a block's edge, are decoded again: cheap next
    to the network, whose tiles overlap in the same way. Each tile is normalised on its own
    (:meth:`Predictor.preprocess` is per pixel: the same values as the whole image's)."""

    def __init__(self, predictor: Predictor, source: RegionSource, columns: int) -> None:
        self.predictor, self.source, self.columns = predictor, source, columns
        self.top = self.left = 0
        self.block: np.ndarray | None = None  # (T, held columns, C)

    def tile(self, top: int, left: int, height: int, width: int) -> torch.Tensor:
        """The normalised tile ``(C, height, width)`` at ``(top, left)``."""
        block = self.block
        if (
            block is None
            or top != self.top
            or len(block) != height
            or left < self.left
            or left + width > self.left + block.shape[1]
        ):
            self.block = block = None  # the old block goes before the new one is read
            columns = min(max(self.columns, width), self.source.width - left)
            read = self.source.read(top, left, height, columns)
            self.block = block = read[:, :, None] if read.ndim == 2 else read
            self.top, self.left = top, left
        raw = block[:, left - self.left : left - self.left + width]
        return self.predictor.preprocess(raw, str(self.source.path))[0]


class _Sums:
    """Blended sums and weights of the held rows ``[top, end)``, the whole width, in a ring of
    ``capacity`` preallocated rows (row ``r`` at ``r % capacity``): a tile adds within
    ``[top, top + capacity)``; finished rows are divided out and their ring rows zeroed."""

    def __init__(self, width: int, top: int, rows_k: int, capacity: int) -> None:
        self.top = self.end = top
        self.capacity = capacity  # rows held at most (a tile's height)
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
        """Rows ``[top, limit)`` divided, as ``(top, scores)`` of at most ``FINISH_ROWS`` rows
        each (the temporaries of a band stay small whatever the tile); ``top`` moves to
        ``limit``."""
        width = self.total.shape[2]
        while self.top < limit:
            held = self.end - self.top
            count = min(limit - self.top, held if held > 0 else FINISH_ROWS, FINISH_ROWS)
            scores = self.total.new_empty(len(self.total), count, width)
            if held > 0:
                uncovered = torch.empty(count, width, dtype=torch.bool)
                for ring, offset in self._ring(self.top, self.top + count):
                    rows = slice(offset, offset + ring.stop - ring.start)
                    # the in-memory division, written in place of a temporary
                    torch.div(self.total[:, ring], self.weight[ring], out=scores[:, rows])
                    torch.eq(self.weight[ring], 0.0, out=uncovered[rows])
                    self.total[:, ring] = 0.0
                    self.weight[ring] = 0.0
                if uncovered.any():  # only when tiles were skipped
                    _background(scores, uncovered)
            else:
                _background(scores, None)
            yield self.top, scores
            self.top += count
            self.end = max(self.end, self.top)


def _background(scores: torch.Tensor, where: torch.Tensor | None) -> None:
    """Pixels no kept tile covers (``where``; None: all) are background: score 0, and for a
    multi-class model class 0 with probability 1. Masked in place: indexing by a boolean mask
    would build 16 bytes of indices per pixel (123 MB for 192 × 40,000 uncovered pixels)."""
    if where is None:
        scores.zero_()
        if len(scores) > 1:
            scores[0] = 1.0
        return
    scores.masked_fill_(where, 0.0)
    if len(scores) > 1:
        scores[0].masked_fill_(where, 1.0)
