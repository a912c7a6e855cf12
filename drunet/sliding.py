"""Sliding-window inference: overlapping tiles of a large image, batched, blended back.

A network that trained on ``P × P`` patches predicts an image of any size one tile at a time.
Tiles of ``tile_size`` overlap by ``overlap`` (a share of the tile side) and are placed evenly,
the first at the top/left border and the last at the bottom/right one, so every pixel is covered
and no tile hangs over the edge (an image smaller than the tile is one tile of its own size).
``batch_size`` tiles go through the network at once. Each tile's output is weighted by a Gaussian
centred on the tile (σ = ``sigma_scale`` × side, as nnU-Net does): pixels near a tile's border,
where the network sees the least context, count least. ``blend="constant"`` weights every pixel
of a tile equally (MONAI's ``mode="constant"``).

Memory: besides the input ``(C, H, W)`` float32, the blend keeps one float32 sum per output
channel ``(K, H, W)`` and one float32 weight map ``(H, W)`` — ``4·(K + 1)·H·W`` bytes, about
0.8 GB for a 10 000 × 10 000 image with one output channel — plus ``batch_size`` tiles in flight.
The sums are divided in place, so the result costs nothing more.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Literal

import torch

from drunet.errors import OptionError

Blend = Literal["gaussian", "constant"]
Forward = Callable[[torch.Tensor], torch.Tensor]  # (N, C, h, w) → (N, K, h, w)

# Whole-image inference up to 1024 × 1024 pixels: the reference DRUNet (32 features) needs about
# 1.2 GB of activations for that on the CPU (measured); larger images go through the sliding window
# (in validation as in prediction).
DEFAULT_MAX_PIXELS = 1024 * 1024


def tile_starts(size: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of tiles of length ``tile`` covering ``[0, size)``.

    Neighbours share at least ``overlap · tile`` pixels; the first tile starts at 0 and the last
    ends at ``size``; the others are spread evenly between them. ``size <= tile`` gives ``[0]``.
    """
    if size < 1 or tile < 1:
        raise ValueError(f"size and tile must be >= 1, got size={size}, tile={tile}")
    check_overlap(overlap)
    if size <= tile:
        return [0]
    step = max(tile * (1.0 - overlap), 1.0)
    count = math.ceil((size - tile) / step) + 1
    return [round(i * (size - tile) / (count - 1)) for i in range(count)]


def check_overlap(overlap: float) -> None:
    if not 0.0 <= overlap < 1.0:
        raise OptionError(
            f"overlap must be in [0, 1) (a share of the tile side), got {overlap}; 0.5 is usual"
        )


def tile_grid(
    height: int, width: int, tile_size: tuple[int, int], overlap: float
) -> list[tuple[slice, slice]]:
    """The ``(rows, cols)`` slices of every tile of an ``height × width`` image, row by row."""
    tile_h, tile_w = min(tile_size[0], height), min(tile_size[1], width)
    rows = tile_starts(height, tile_h, overlap)
    cols = tile_starts(width, tile_w, overlap)
    return [(slice(y, y + tile_h), slice(x, x + tile_w)) for y in rows for x in cols]


@lru_cache(maxsize=8)
def gaussian_weights(height: int, width: int, sigma_scale: float = 0.125) -> torch.Tensor:
    """``(height, width)`` float32 Gaussian importance map, 1 at the centre, > 0 everywhere."""
    if sigma_scale <= 0:
        raise ValueError(f"sigma_scale must be positive, got {sigma_scale}")
    axes = []
    for size in (height, width):
        centre, sigma = (size - 1) / 2, size * sigma_scale
        position = torch.arange(size, dtype=torch.float64)
        axes.append(torch.exp(-((position - centre) ** 2) / (2 * sigma**2)))
    weights = (axes[0][:, None] * axes[1][None, :]).float()
    # A far corner of a large tile can underflow to 0; a 0 weight would leave a pixel undefined.
    smallest = weights[weights > 0].min()
    return weights.clamp_min_(smallest)


def _batches(
    tiles: list[tuple[slice, slice]], batch_size: int
) -> Iterator[list[tuple[slice, slice]]]:
    for start in range(0, len(tiles), batch_size):
        yield tiles[start : start + batch_size]


def tile_weights(
    height: int, width: int, blend: Blend = "gaussian", sigma_scale: float = 0.125
) -> torch.Tensor:
    """``(height, width)`` float32 weights of one tile's output (see the module docstring)."""
    if blend == "gaussian":
        return gaussian_weights(height, width, sigma_scale)
    return torch.ones(height, width)


def run_tiles(forward: Forward, x: torch.Tensor) -> torch.Tensor:
    """``forward`` of a batch of tiles ``(n, C, h, w)`` → float32 ``(n, K, h, w)`` on the CPU,
    checked to keep the batch size, height and width."""
    out = forward(x).float().cpu()
    if out.ndim != 4 or out.shape[0] != x.shape[0] or out.shape[2:] != x.shape[2:]:
        raise ValueError(
            f"forward returned {tuple(out.shape)} for tiles {tuple(x.shape)}; it must keep "
            "the batch size, height and width"
        )
    return out


@torch.no_grad()
def sliding_window(
    image: torch.Tensor,
    forward: Forward,
    tile_size: int | tuple[int, int],
    overlap: float = 0.5,
    batch_size: int = 4,
    blend: Blend = "gaussian",
    sigma_scale: float = 0.125,
    on_progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Run ``forward`` over overlapping tiles of ``image`` and blend the outputs.

    Args:
        image: ``(C, H, W)`` float tensor (on the CPU; tiles are moved by ``forward``).
        forward: maps a batch of tiles ``(N, C, h, w)`` to outputs ``(N, K, h, w)``.
        tile_size: tile side, or ``(height, width)``; clipped to the image.
        overlap: share of a tile side that neighbours share, in ``[0, 1)``.
        batch_size: tiles per ``forward`` call.
        blend: ``"gaussian"`` or ``"constant"`` weights (see the module docstring).
        on_progress: called with ``(tiles done, tiles in total)`` after each batch.

    Returns the blended ``(K, H, W)`` float32 output on the CPU. An output that is the same
    wherever it is computed (e.g. ``x + 1``) comes back unchanged.
    """
    if image.ndim != 3:
        raise ValueError(f"sliding_window expects a (C, H, W) image, got {tuple(image.shape)}")
    if isinstance(tile_size, int):
        tile_size = (tile_size, tile_size)
    if min(tile_size) < 1 or batch_size < 1:
        raise ValueError(f"tile_size and batch_size must be >= 1, got {tile_size} and {batch_size}")
    if blend not in ("gaussian", "constant"):
        raise ValueError(f"blend must be 'gaussian' or 'constant', got {blend!r}")
    height, width = image.shape[1:]
    tiles = tile_grid(height, width, tile_size, overlap)
    if len(tiles) == 1:  # the image fits in one tile: nothing to blend
        out = run_tiles(forward, image[None].contiguous())[0]
        if on_progress is not None:
            on_progress(1, 1)
        return out
    tile_h, tile_w = tiles[0][0].stop - tiles[0][0].start, tiles[0][1].stop - tiles[0][1].start
    weights = tile_weights(tile_h, tile_w, blend, sigma_scale)
    total: torch.Tensor | None = None  # (K, H, W), allocated once K is known
    weight_sum = torch.zeros(height, width)
    done = 0
    for batch in _batches(tiles, batch_size):
        x = torch.stack([image[:, rows, cols] for rows, cols in batch])  # (n, C, h, w)
        out = run_tiles(forward, x)  # (n, K, h, w)
        if total is None:
            total = torch.zeros(out.shape[1], height, width)
        for (rows, cols), tile_out in zip(batch, out, strict=True):
            total[:, rows, cols].add_(tile_out * weights)
            weight_sum[rows, cols].add_(weights)
        done += len(batch)
        if on_progress is not None:
            on_progress(done, len(tiles))
    assert total is not None  # at least one tile
    return total.div_(weight_sum)
