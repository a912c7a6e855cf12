"""Sliding window: tile placement, Gaussian weights, and known answers (MONAI's ``x + 1`` test)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from drunet.sliding import gaussian_weights, sliding_window, tile_grid, tile_starts


def plus_one(x: torch.Tensor) -> torch.Tensor:
    return x + 1


# ---------------------------------------------------------------- tile placement


@pytest.mark.parametrize(
    ("size", "tile", "overlap", "expected"),
    [
        (100, 100, 0.5, [0]),  # fits: one tile
        (60, 100, 0.5, [0]),  # smaller than a tile
        (200, 100, 0.5, [0, 50, 100]),  # step 50 exactly
        (201, 100, 0.5, [0, 34, 67, 101]),  # 3 tiles at step 50 miss a pixel: 4, spread
        (256, 128, 0.0, [0, 128]),  # no overlap, exact fit
        (300, 128, 0.0, [0, 86, 172]),  # no overlap asked; evenly spread, last ends at 300
        (160, 64, 0.5, [0, 32, 64, 96]),
    ],
)
def test_tile_starts_by_hand(size: int, tile: int, overlap: float, expected: list[int]) -> None:
    assert tile_starts(size, tile, overlap) == expected


def test_tile_starts_cover_and_overlap_at_least_as_asked() -> None:
    for size in range(1, 400, 7):
        for tile in (16, 64, 100):
            for overlap in (0.0, 0.25, 0.5, 0.75):
                starts = tile_starts(size, tile, overlap)
                span = min(tile, size)
                assert starts[0] == 0 and starts[-1] + span == size
                gaps = np.diff(starts)
                assert (gaps > 0).all() and (gaps <= span).all()  # covered, no repeats
                assert (gaps <= tile * (1 - overlap) + 1).all()  # step never above asked


@pytest.mark.parametrize("overlap", [-0.1, 1.0, 1.5])
def test_bad_overlap_names_the_value(overlap: float) -> None:
    with pytest.raises(ValueError, match=rf"overlap must be in \[0, 1\).*{overlap}"):
        tile_starts(100, 10, overlap)


def test_tile_grid_is_row_major_and_clipped_to_the_image() -> None:
    grid = tile_grid(20, 50, (32, 32), 0.5)  # height 20 < tile: one row of height 20
    assert [(r.start, r.stop) for r, _ in grid] == [(0, 20)] * 3
    assert [(c.start, c.stop) for _, c in grid] == [(0, 32), (9, 41), (18, 50)]


# ---------------------------------------------------------------- weights


def test_gaussian_weights_peak_at_the_centre_and_stay_positive() -> None:
    w = gaussian_weights(64, 48)
    assert w.shape == (64, 48) and w.dtype == torch.float32
    assert (w > 0).all()
    assert torch.equal(w, w.flip(0)) and torch.equal(w, w.flip(1))  # symmetric
    assert w.max() == w[31:33, 23:25].max() and w.max() <= 1.0
    sigma = 64 * 0.125  # along the height, through the centre column pair
    expected = np.exp(-((np.arange(64) - 31.5) ** 2) / (2 * sigma**2))
    ratio = w[:, 23].numpy() / w[31, 23].numpy()
    np.testing.assert_allclose(ratio, expected / expected[31], rtol=1e-5)


def test_tiny_weights_do_not_underflow_to_zero() -> None:
    w = gaussian_weights(512, 512, sigma_scale=0.02)  # corners far below float32's range
    assert (w > 0).all()


# ---------------------------------------------------------------- known answers


@pytest.mark.parametrize(
    ("height", "width", "tile", "overlap", "batch"),
    [(37, 53, 16, 0.5, 3), (64, 64, 32, 0.25, 1), (10, 90, 32, 0.5, 4), (5, 5, 32, 0.5, 2)],
)
def test_plus_one_comes_back_exactly_with_constant_weights(
    height: int, width: int, tile: int, overlap: float, batch: int
) -> None:
    # Integer pixels: each blended value is (n·v)/n, exact in float32.
    image = torch.randint(-100, 100, (2, height, width)).float()
    out = sliding_window(image, plus_one, tile, overlap, batch, blend="constant")
    assert out.shape == (2, height, width) and out.dtype == torch.float32
    assert torch.equal(out, image + 1)


def test_plus_one_comes_back_with_gaussian_weights_to_float_rounding() -> None:
    image = torch.randn(3, 97, 131)
    out = sliding_window(image, plus_one, 32, 0.5, 5)
    # Σ w·v / Σ w: rounding only, a few float32 ulps of values near 1.
    torch.testing.assert_close(out, image + 1, rtol=2e-6, atol=2e-6)


def test_output_channels_may_differ_from_input_channels() -> None:
    def three_classes(x: torch.Tensor) -> torch.Tensor:  # (N, 1, h, w) → (N, 3, h, w)
        return torch.cat([x, 2 * x, torch.ones_like(x)], dim=1)

    image = torch.randint(0, 9, (1, 40, 70)).float()
    out = sliding_window(image, three_classes, 24, 0.5, 2, blend="constant")
    assert torch.equal(out, torch.cat([image, 2 * image, torch.ones_like(image)]))


def test_batch_size_does_not_change_the_result() -> None:
    image = torch.randn(1, 50, 61)

    def tile_dependent(x: torch.Tensor) -> torch.Tensor:  # depends on where the tile starts
        return x * 0 + x.mean(dim=(2, 3), keepdim=True)

    reference = sliding_window(image, tile_dependent, 16, 0.5, 1)
    for batch in (2, 7, 100):
        assert torch.equal(sliding_window(image, tile_dependent, 16, 0.5, batch), reference)


def test_each_pixel_is_a_weighted_mean_of_the_tiles_covering_it() -> None:
    # forward returns a tile's index everywhere: the blend at a pixel is the Gaussian-weighted
    # mean of the indices of the tiles that cover it, computed here by hand.
    height, width, tile = 40, 40, 24
    grid = tile_grid(height, width, (tile, tile), 0.5)
    calls: list[int] = []

    def tile_index(x: torch.Tensor) -> torch.Tensor:
        first = len(calls)
        calls.extend(range(first, first + len(x)))
        index = torch.arange(first, first + len(x), dtype=torch.float32)
        return index.view(-1, 1, 1, 1).expand(-1, 1, *x.shape[2:]).clone()

    out = sliding_window(torch.zeros(1, height, width), tile_index, tile, 0.5, 3)
    w = gaussian_weights(tile, tile).double()
    total = torch.zeros(height, width, dtype=torch.float64)
    weight = torch.zeros(height, width, dtype=torch.float64)
    for i, (rows, cols) in enumerate(grid):
        total[rows, cols] += i * w
        weight[rows, cols] += w
    assert len(calls) == len(grid) == 9  # 3 × 3
    torch.testing.assert_close(out[0].double(), total / weight, rtol=1e-6, atol=1e-6)


def test_progress_is_reported_per_batch() -> None:
    seen: list[tuple[int, int]] = []
    sliding_window(
        torch.zeros(1, 64, 64), plus_one, 32, 0.5, 4, on_progress=lambda *a: seen.append(a)
    )
    assert seen == [(4, 9), (8, 9), (9, 9)]  # 3 × 3 tiles


def test_forward_changing_the_size_is_an_error() -> None:
    with pytest.raises(ValueError, match="must keep the batch size, height and width"):
        sliding_window(torch.zeros(1, 40, 40), lambda x: x[:, :, :-1], 16)


def test_input_must_be_channels_height_width() -> None:
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        sliding_window(torch.zeros(1, 1, 40, 40), plus_one, 16)
