"""Streamed prediction: the sliding window of :mod:`drunet.sliding` over a :class:`RegionSource`,
band by band, equal to the in-memory :class:`~drunet.inference.Predictor` bit for bit.

Equality holds because nothing that decides a pixel's value changes:

* the **tile grid** is the in-memory one — :func:`~drunet.sliding.tile_starts` over the whole
  image, tiles in row-major order — and so are the **batches** (``batch_size`` consecutive tiles,
  which may span two tile rows), so every tile goes through the network in the same batch;
* **normalisation** is per pixel (:meth:`Predictor.preprocess` on the rows a batch needs): the
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

A row is finished once the tiles that start at or above it are all added: after each batch the
rows above the next tile's top are divided, thresholded and handed on (:func:`stream_scores`).

**Memory** (``T`` = tile side, ``s = T·(1 − overlap)`` the tile step, ``W`` the image width,
``C`` input channels of ``b`` bytes, ``K'`` score rows — 1 for binary —, ``B`` the batch size):
the rolling input holds the rows of one batch, ``R ≤ T + ⌈B / tiles per row⌉ · s`` rows (``2T``
when a row holds at least ``B`` tiles), as read and normalised, ``W·R·C·(b + 4)`` bytes; the
rolling sums hold the same rows, ``4·W·R·(K' + 1)`` bytes; plus ``B`` tiles in flight and the
network's activations. About ``W · 2T · (C·(b + 4) + 4·(K' + 1))`` bytes, at most twice that
while a buffer grows — never a function of the image height: a 40,000-wide RGB slide with 256²
tiles and a binary model needs about 0.5 GB for its buffers. Rows above the first kept tile
(background skipping) are emitted before any sum is made, ``T`` rows at a time, so the sums
never span a skipped stretch.

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
    inputs = _InputRows(predictor, source)
    sums = _Sums(width, start_row, score_rows(predictor), tile_h)
    batches = [todo[i : i + opts.batch_size] for i in range(0, len(todo), opts.batch_size)]
    if batches:  # rows above the first kept tile: background, emitted before any sum grows
        yield from sums.finish(batches[0][0][0])
    for index, batch in enumerate(batches):
        if batch[-1][0] + tile_h > start_row:  # else: every tile ends above, already emitted
            top = batch[0][0]
            image = inputs.rows(top, batch[-1][0] + tile_h)  # (C, rows, W) from row `top`
            x = torch.stack(
                [image[:, y - top : y - top + tile_h, c : c + tile_w] for y, c in batch]
            )
            out = run_tiles(forward, x)  # (n, K', h, w)
            for (y, c), tile_out in zip(batch, out, strict=True):
                sums.add(y, c, tile_out, weights)
            tally.computed += len(batch)
        if on_progress is not None:
            on_progress(tally.skipped + sum(len(b) for b in batches[: index + 1]), len(grid))
        following = batches[index + 1][0][0] if index + 1 < len(batches) else height
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
    """Normalised input rows ``[top, bottom)`` of the whole width, read as batches need them;
    rows above the current batch are dropped."""

    def __init__(self, predictor: Predictor, source: RegionSource) -> None:
        self.predictor, self.source = predictor, source
        self.top = 0
        self.buffer = torch.zeros(predictor.in_channels, 0, source.width)  # (C, rows, W)

    def rows(self, top: int, bottom: int) -> torch.Tensor:
        """``(C, bottom - top, W)`` from row ``top`` (never above the previous call's top)."""
        end = self.top + self.buffer.shape[1]
        if top >= end:  # nothing kept is needed (a skipped stretch, or a restart)
            self.top, self.buffer, end = top, self.buffer[:, :0], top
        kept = self.buffer[:, top - self.top :]
        if bottom > end:
            raw = self.source.read(end, 0, bottom - end, self.source.width)
            new = self.predictor.preprocess(raw, str(self.source.path))[0]  # (C, rows, W)
            kept = torch.cat([kept, new], dim=1)
        self.top, self.buffer = top, kept
        return kept[:, : bottom - top]


class _Sums:
    """Blended sums and weights of rows ``[top, top + rows)``, the whole width."""

    def __init__(self, width: int, top: int, rows_k: int, chunk: int) -> None:
        self.top, self.chunk = top, chunk  # rows no tile covers are emitted `chunk` at a time
        self.total = torch.zeros(rows_k, 0, width)  # (K', rows, W)
        self.weight = torch.zeros(0, width)  # (rows, W)

    def add(self, y: int, x: int, out: torch.Tensor, weights: torch.Tensor) -> None:
        """Add one tile's ``out (K', h, w) · weights`` at ``(y, x)``, rows above ``top`` cut."""
        skip = max(self.top - y, 0)
        height, width = weights.shape
        if skip >= height:
            return
        bottom = y + height - self.top
        if bottom > self.weight.shape[0]:
            grow = bottom - self.weight.shape[0]
            self.total = torch.cat(
                [self.total, self.total.new_zeros(len(self.total), grow, self.total.shape[2])], 1
            )
            self.weight = torch.cat(
                [self.weight, self.weight.new_zeros(grow, self.weight.shape[1])]
            )
        rows = slice(y + skip - self.top, bottom)
        self.total[:, rows, x : x + width].add_(out[:, skip:] * weights[skip:])
        self.weight[rows, x : x + width].add_(weights[skip:])

    def finish(self, limit: int) -> Iterator[tuple[int, torch.Tensor]]:
        """Rows ``[top, limit)`` divided, as ``(top, scores)``; ``top`` moves to ``limit``."""
        while self.top < limit:
            held = self.weight.shape[0]
            count = min(limit - self.top, held if held else self.chunk)
            if held:
                total, weight = self.total[:, :count], self.weight[:count]
                self.total, self.weight = self.total[:, count:], self.weight[count:]
                scores = total / weight  # the in-memory `total.div_(weight_sum)`
                uncovered = weight == 0  # only when tiles were skipped
            else:
                scores = self.total.new_zeros(len(self.total), count, self.total.shape[2])
                uncovered = torch.ones(count, scores.shape[2], dtype=torch.bool)
            if uncovered.any():
                scores[:, uncovered] = 0.0
                if len(scores) > 1:  # multi-class: background, certainly
                    scores[0, uncovered] = 1.0
            yield self.top, scores
            self.top += count
