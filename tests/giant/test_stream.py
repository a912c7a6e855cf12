"""Streamed prediction equals the in-memory Predictor bit for bit, band by band."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy import ndimage

from drunet.config import updated
from drunet.config_postprocess import PostprocessConfig
from drunet.errors import DrunetError
from drunet.giant import stream
from drunet.giant.regions import ArraySource
from drunet.giant.stream import FINISH_ROWS, Band, TileTally, stream_bands
from drunet.inference import Predictor
from drunet.inference.postprocess import PostprocessOptions
from drunet.sliding import tile_starts
from tests.giant.models import tiny_predictor


def textured(height: int, width: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Smooth blobs plus noise, uint8 ``(H, W)`` or ``(H, W, C)``: the network's output varies."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((height // 50 + 2, width // 50 + 2, channels))
    smooth = ndimage.zoom(coarse, (50, 50, 1), order=1)[:height, :width]
    image = (smooth * 200 + rng.integers(0, 55, (height, width, channels))).astype(np.uint8)
    return image[..., 0] if channels == 1 else image


class CountingSource(ArraySource):
    """An ArraySource that records every read as ``(top, height, left, width)``."""

    def __init__(self, array: np.ndarray) -> None:
        super().__init__(array)
        self.reads: list[tuple[int, int]] = []

    def read(self, top: int, left: int, height: int, width: int) -> np.ndarray:
        self.reads.append((top, height, left, width))
        return super().read(top, left, height, width)


def streamed(predictor: Predictor, image: np.ndarray, **kwargs: object) -> list[Band]:
    return list(stream_bands(predictor, ArraySource(image), probabilities=True, **kwargs))


def assert_same(predictor: Predictor, image: np.ndarray, bands: list[Band]) -> np.ndarray:
    mask, probs = predictor.predict(image, return_probabilities=True)
    tops = [band.top for band in bands]
    assert tops == sorted(tops) and tops[0] == 0
    assert all(b.top + len(b.mask) == n.top for b, n in zip(bands, bands[1:], strict=False))
    stream_mask = np.concatenate([band.mask for band in bands])
    stream_probs = np.concatenate([band.probabilities for band in bands]).transpose(2, 0, 1)
    assert stream_mask.dtype == mask.dtype and stream_mask.shape == mask.shape
    assert np.array_equal(stream_probs, probs)  # bit for bit, not merely close
    assert np.array_equal(stream_mask, mask)
    return mask


def test_3000_square_image_is_bit_identical_to_the_in_memory_predictor() -> None:
    # The test: a 3,000² image, 256² tiles (144 of them), batches of 4 tiles.
    image = textured(3000, 3000)
    probe = tiny_predictor(tile_size=256, overlap=0.25)
    # A threshold at the foreground probability's median makes the mask half foreground.
    threshold = float(np.median(probe.predict_probabilities(image[:512, :512])[1]))
    predictor = tiny_predictor(
        tile_size=256, overlap=0.25, postprocess=PostprocessOptions(threshold=threshold)
    )
    tally = TileTally()
    bands = streamed(predictor, image, tally=tally)
    mask = assert_same(predictor, image, bands)
    assert 0.2 < mask.mean() < 0.8
    assert tally == TileTally(total=16 * 16, computed=256, skipped=0)
    # Rows are finished when the next tile row starts, handed on 64 (FINISH_ROWS) at a time.
    starts = tile_starts(3000, 256, 0.25)
    assert len(starts) == 16
    edges = [*starts[1:], 3000]
    tops = [t for a, b in zip([0, *edges], edges, strict=False) for t in range(a, b, 64)]
    assert [band.top for band in bands] == tops
    assert max(len(band.mask) for band in bands) == FINISH_ROWS == 64


@pytest.mark.parametrize(
    ("shape", "classes", "options"),
    [
        ((410, 333), 2, {}),  # batches span two tile rows (7 tiles per row, 4 per batch)
        ((300, 520, 3), 3, {"batch_size": 3}),  # RGB, argmax of three classes
        ((260, 200), 2, {"overlap": 0.7, "blend": "constant"}),  # tiles overlap three rows
        ((200, 190), 4, {"tta_flips": True, "batch_size": 5}),
        ((64, 500), 2, {}),  # one tile row: the tile height is the image's
    ],
)
def test_streamed_equals_in_memory(shape: tuple[int, ...], classes: int, options: dict) -> None:
    channels = shape[2] if len(shape) == 3 else 1
    image = textured(shape[0], shape[1], channels, seed=len(shape) + classes)
    predictor = tiny_predictor(classes, channels, max_pixels=0, **options)
    assert_same(predictor, image, streamed(predictor, image))


def test_an_image_that_fits_whole_goes_through_whole_as_in_memory() -> None:
    image = textured(100, 90)
    predictor = tiny_predictor()  # 9,000 pixels < max_pixels: one pass, as the Predictor does
    tally = TileTally()
    bands = streamed(predictor, image, tally=tally)
    assert len(bands) == 1 and tally.total == tally.computed == 1
    assert_same(predictor, image, bands)


def test_inputs_are_read_a_block_of_a_tile_row_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # 64² tiles every 27 columns (0, 27, 54, 82, 109, 136) and 32 rows (0, 32, 64), blocks of
    # 100 columns: a block starts at the first tile that does not fit the one before, so each
    # tile row reads columns 0…100, 54…154 and 109…200 (the rest of the width), 64 rows high.
    # The input held is one block whatever the width, and the result is the in-memory one.
    monkeypatch.setattr(stream, "BLOCK_COLUMNS", 100)
    image = textured(128, 200)
    source = CountingSource(image)
    predictor = tiny_predictor(max_pixels=0, batch_size=4)
    bands = list(stream_bands(predictor, source, probabilities=True))
    blocks = [(0, 100), (54, 100), (109, 91)]
    assert source.reads == [(top, 64, *block) for top in (0, 32, 64) for block in blocks]
    assert_same(predictor, image, bands)


@pytest.mark.parametrize("first_kept", [96, 544])
def test_rows_above_the_first_kept_tile_are_emitted_without_summing_them(first_kept: int) -> None:
    # Tissue skipping: the first kept tile lies far down. Its rows above used to be summed as
    # one zero block (the whole width × every row above: 3.6 GB peak on a 20,000² slide whose
    # tissue starts at row ~9,000); they are background, emitted a tile height at a time.
    image = textured(640, 128)
    predictor = tiny_predictor(max_pixels=0, batch_size=1)  # 64² tiles every 32 rows
    tally = TileTally()
    bands = list(
        stream_bands(
            predictor,
            ArraySource(image),
            probabilities=True,
            keep=lambda top, left, height, width: top >= first_kept,
            tally=tally,
        )
    )
    tops = [band.top for band in bands]
    assert tops[0] == 0 and sum(len(b.mask) for b in bands) == 640
    assert max(len(band.mask) for band in bands) <= 64  # never more rows than a tile's
    above = np.concatenate([b.mask for b in bands])[:first_kept]
    assert not above.any()  # background
    probs = np.concatenate([b.probabilities for b in bands])[:first_kept]
    assert np.array_equal(probs[..., 0], np.ones((first_kept, 128), np.float32))
    assert tally.computed == sum(1 for top in range(0, 640 - 32, 32) if top >= first_kept) * 3


def test_a_batch_spanning_a_gap_neither_reads_nor_holds_the_rows_between() -> None:
    # Two pieces of tissue, rows 0…128 and 480…640, and batches of 8 tiles (3 per tile row), so
    # one batch holds tiles above and below the gap. The rows between are never read, every
    # band is at most a tile high (the sums never span the gap), and they are background.
    image = textured(640, 128)
    source = CountingSource(image)
    predictor = tiny_predictor(max_pixels=0, batch_size=8)  # 64² tiles every 32 rows
    keep = lambda top, left, height, width: top < 96 or top >= 480  # noqa: E731
    bands = list(stream_bands(predictor, source, probabilities=True, keep=keep))
    rows = {r for top, height, _, _ in source.reads for r in range(top, top + height)}
    assert rows == {*range(128), *range(480, 640)}  # the gap is never read
    assert max(len(band.mask) for band in bands) <= 64
    mask = np.concatenate([b.mask for b in bands])
    assert mask.shape == (640, 128) and not mask[128:480].any()
    full = predictor.predict(image)
    # Rows whose every covering tile is kept equal the in-memory mask: 0…96 and 512…640.
    assert np.array_equal(mask[:96], full[:96]) and np.array_equal(mask[512:], full[512:])


def test_the_tile_grid_is_made_as_the_stream_needs_it() -> None:
    # Overlap 0.9 on a 2,000² image: 64² tiles every ~6.4 px, 304 × 304 = 92,416 of them (a
    # 40,000² slide at a high overlap would have tens of millions). The first rows are finished
    # once the second tile row starts: the tiles of the first row and one batch beyond have
    # been looked at, not the grid.
    starts = tile_starts(2000, 64, 0.9)
    assert len(starts) == 304
    looked: list[tuple[int, int]] = []

    def keep(top: int, left: int, height: int, width: int) -> bool:
        looked.append((top, left))
        return True

    predictor = tiny_predictor(max_pixels=0, batch_size=2, overlap=0.9)
    tally = TileTally()
    image = np.zeros((2000, 2000), np.uint8)
    bands = stream_bands(predictor, ArraySource(image), keep=keep, tally=tally)
    first = next(bands)
    bands.close()
    assert first.top == 0 and len(first.mask) == starts[1]  # rows above the second tile row
    assert tally.total == 304 * 304
    assert len(looked) == 304 + 2  # the first tile row, then the batch after it
    assert looked[-2:] == [(starts[1], 0), (starts[1], starts[1])]


def test_continuing_from_a_row_emits_the_same_rows_below_it() -> None:
    image = textured(400, 150)
    predictor = tiny_predictor(max_pixels=0)
    full = streamed(predictor, image)
    start = full[5].top
    tally = TileTally()
    rest = streamed(predictor, image, start_row=start, tally=tally)
    assert rest[0].top == start
    assert np.array_equal(
        np.concatenate([b.probabilities for b in rest]),
        np.concatenate([b.probabilities for b in full[5:]]),
    )
    assert 0 < tally.computed < tally.total  # the tiles above were not run again


@pytest.mark.parametrize(
    ("post", "flag"),
    [
        (PostprocessOptions(min_size=10), "--min-size"),
        (PostprocessOptions(fill_holes=True), "--fill-holes"),
        (PostprocessOptions(largest_component=True), "--largest"),
    ],
)
def test_whole_mask_clean_ups_are_refused(post: PostprocessOptions, flag: str) -> None:
    predictor = tiny_predictor(postprocess=post)
    with pytest.raises(DrunetError, match=flag):
        streamed(predictor, textured(80, 80))


def test_a_runs_stored_clean_ups_are_named_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    """Clean-ups chosen on validation and stored with the run (not asked for by a flag) cannot
    be streamed either: the stream warns, naming them, and predicts without them."""
    plain = tiny_predictor()
    stored = Predictor(
        plain.models,
        updated(plain.config, {"postprocess": PostprocessConfig(select=False, min_size=10)}),
        "cpu",
        plain.options,
    )
    assert stored.postprocess.min_size == 10  # what predict would apply in memory
    image = textured(80, 80)
    with caplog.at_level(logging.WARNING, logger="drunet.giant.stream"):
        bands = streamed(stored, image)
    assert "min_size=10" in caplog.text and "not applied" in caplog.text
    expected = streamed(plain, image)
    assert np.array_equal(
        np.concatenate([b.mask for b in bands]), np.concatenate([b.mask for b in expected])
    )
