"""Inference throughput of ``Predictor``: sliding-window overhead and batched folder prediction.

Measured alternately in one process (medians of ``--rounds`` rounds), with the default model
``create_model("drunet", in_channels=1, out_channels=1)`` (random weights: speed does not depend
on them) behind a :class:`~drunet.inference.Predictor` trained at ``--tile``² patches:

  * **sliding-window overhead** — one ``--size``² grayscale image predicted through the sliding
    window (tiles of ``--tile``, overlap 0.5, 4 tiles per pass, Gaussian blending, threshold)
    against the bare batched forward over the same number of tiles at the same batch size. The
    ratio is what tiling, blending and the final mask cost on top of the network; overlap 0.25
    is timed as well (fewer tiles);
  * **folder prediction** — ``--images`` grayscale images of ``--small``² through
    ``predict_batch`` with one image per forward pass against 4 per pass (same-sized images share
    forward passes), in images/s.

    python benchmarks/bench_inference.py [--size 1024] [--tile 256] [--images 32] [--small 256]

Writes ``benchmarks/results/inference.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from drunet.atomic import atomic_write_text
from drunet.config import ExperimentConfig, config_from_dict
from drunet.inference import PredictOptions, Predictor
from drunet.inference.sliding import tile_grid
from drunet.models import create_model

RESULTS = Path(__file__).resolve().parent / "results"


def default_config(tile: int) -> ExperimentConfig:
    """The default DRUNet for one grayscale channel, binary, as if trained at ``tile``² patches."""
    return config_from_dict(
        {
            "model": {"name": "drunet", "in_channels": 1, "num_classes": 2},
            "data": {
                "augmentation": {"patch_size": tile},
                "normalization": {"mean": [0.5], "std": [0.25], "clip_percentiles": None},
            },
        }
    )


def make_predictor(tile: int, **options: object) -> Predictor:
    """A Predictor of :func:`default_config` with random weights (speed does not depend on them)."""
    torch.manual_seed(0)
    model = create_model("drunet", in_channels=1, out_channels=1)
    return Predictor(model, default_config(tile), options=PredictOptions(**options))  # type: ignore[arg-type]


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bare_forward(predictor: Predictor, tiles: int, tile: int, batch: int) -> Callable[[], None]:
    """The network alone over ``tiles`` tiles, ``batch`` at a time (what tiling must add to)."""
    x = torch.randn(batch, 1, tile, tile)
    last = torch.randn(tiles % batch or batch, 1, tile, tile)
    passes = -(-tiles // batch)

    def run() -> None:
        for i in range(passes):
            predictor.network(last if i == passes - 1 else x)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="large image side")
    parser.add_argument("--tile", type=int, default=256, help="training patch / tile side")
    parser.add_argument("--images", type=int, default=32, help="small images in the folder")
    parser.add_argument("--small", type=int, default=256, help="small image side")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    large = rng.integers(0, 256, (args.size, args.size), dtype=np.uint8)
    small = [rng.integers(0, 256, (args.small, args.small), dtype=np.uint8) for _ in range(64)]
    small = [small[i % len(small)] for i in range(args.images)]

    # max_pixels=0: the large image is tiled although it would fit whole.
    tiled = {o: make_predictor(args.tile, max_pixels=0, overlap=o) for o in (0.5, 0.25)}
    whole = make_predictor(args.tile)
    single = make_predictor(args.tile, batch_size=1)
    counts = {o: len(tile_grid(args.size, args.size, (args.tile,) * 2, o)) for o in tiled}
    bare = bare_forward(whole, counts[0.5], args.tile, tiled[0.5].options.batch_size)
    cases: dict[str, Callable[[], object]] = {
        "sliding window, overlap 0.5": lambda: tiled[0.5].predict(large),
        "bare forward, same tiles": bare,
        "sliding window, overlap 0.25": lambda: tiled[0.25].predict(large),
        "folder, 1 per pass": lambda: single.predict_batch(small),
        "folder, 4 per pass": lambda: whole.predict_batch(small),
    }
    for fn in cases.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(args.rounds):
        names = list(cases)
        for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate the order
            times[name].append(seconds(cases[name]))
        print(f"round {r + 1}/{args.rounds} done", flush=True)
    median = {name: statistics.median(t) for name, t in times.items()}

    overhead = median["sliding window, overlap 0.5"] / median["bare forward, same tiles"]
    one, batched = median["folder, 1 per pass"], median["folder, 4 per pass"]
    result = {
        "threads": torch.get_num_threads(),
        "large_image": f"{args.size}x{args.size}x1",
        "tile": args.tile,
        "tiles": {str(o): n for o, n in counts.items()},
        "seconds": times,
        "sliding_overhead_vs_bare_forward": overhead,
        "overlap_025_speedup": median["sliding window, overlap 0.5"]
        / median["sliding window, overlap 0.25"],
        "folder_images_per_s_one_by_one": args.images / one,
        "folder_images_per_s_batched": args.images / batched,
        "batching_speedup": one / batched,
    }
    atomic_write_text(args.out / "inference.json", json.dumps(result, indent=1) + "\n")
    size, tile = f"{args.size}²", f"{args.tile}²"
    print(
        f"\nDefault DRUNet, 1 channel, {torch.get_num_threads()} threads, medians of "
        f"{args.rounds} rounds.\n\n"
        "| measurement | seconds | rate | ratio |\n|---|--:|--:|--:|\n"
        f"| sliding window {size}, tiles {tile}, overlap 0.5 ({counts[0.5]} tiles) "
        f"| {median['sliding window, overlap 0.5']:.2f} | | {overhead:.2f}× the bare forward |\n"
        f"| bare forward over the same {counts[0.5]} tiles "
        f"| {median['bare forward, same tiles']:.2f} | | 1.00× |\n"
        f"| sliding window, overlap 0.25 ({counts[0.25]} tiles) "
        f"| {median['sliding window, overlap 0.25']:.2f} | "
        f"| {result['overlap_025_speedup']:.2f}× faster than 0.5 |\n"
        f"| folder of {args.images} × {args.small}², 1 image per forward pass | {one:.2f} "
        f"| {result['folder_images_per_s_one_by_one']:.1f} img/s | 1.00× |\n"
        f"| folder of {args.images} × {args.small}², 4 images per forward pass | {batched:.2f} "
        f"| {result['folder_images_per_s_batched']:.1f} img/s "
        f"| {result['batching_speedup']:.2f}× |\n"
    )
    print(f"written: {args.out / 'inference.json'}")


if __name__ == "__main__":
    main()
