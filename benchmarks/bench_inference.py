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
    forward passes), in images/s;
  * **backends** — the network alone on ``--batch`` × ``--tile``² tiles: onnxruntime
    (:func:`drunet.inference.onnx_backend.onnx_model`, the graph of the same weights) against
    PyTorch float32, PyTorch bfloat16 autocast and a bfloat16 copy of the network (what the
    Predictor runs for ``precision: bf16`` on the CPU), all with BatchNorm folded as the Predictor
    runs them. Ratios are medians of per-round ratios with their min–max; the 1-minute load
    average is printed with them (on a busy machine the numbers are noise).

    python benchmarks/bench_inference.py [--size 1024] [--tile 256] [--images 32] [--small 256]
    python benchmarks/bench_inference.py --parts backends [--batch 4] [--rounds 8]

Writes ``benchmarks/results/inference.json`` (and ``inference_backends.json``) and prints
Markdown tables.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from drunet.atomic import atomic_write_text
from drunet.checkpoint import save_weights
from drunet.config import ExperimentConfig, config_from_dict
from drunet.inference import PredictOptions, Predictor
from drunet.inference.onnx_backend import onnx_model
from drunet.models import create_model, fuse_conv_bn
from drunet.sliding import tile_grid

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


def predictor_part(args: argparse.Namespace) -> None:
    """Sliding-window overhead and batched folder prediction."""
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
    times = alternate(cases, args.rounds)
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


def alternate(cases: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Seconds of every case in every round, the order rotating each round (after a warm-up)."""
    for fn in cases.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(seconds(cases[name]))
        print(f"round {r + 1}/{rounds} done, load {os.getloadavg()[0]:.2f}", flush=True)
    return times


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def backends_part(args: argparse.Namespace) -> None:
    """onnxruntime vs PyTorch fp32 vs PyTorch bf16 autocast on ``batch`` tiles of the default
    model (random weights, saved so that the onnxruntime backend builds its graph from them)."""
    config = default_config(args.tile)
    torch.manual_seed(0)
    model = create_model("drunet", in_channels=1, out_channels=1).eval()
    fused = fuse_conv_bn(model)
    x = torch.randn(args.batch, 1, args.tile, args.tile)
    with tempfile.TemporaryDirectory() as folder:
        save_weights(Path(folder) / "model.safetensors", model, config)
        print("building and checking the ONNX graph …", flush=True)
        ort = onnx_model(folder)

        def torch_run(dtype: torch.dtype | None) -> Callable[[], object]:
            def run() -> object:
                with torch.inference_mode(), torch.autocast("cpu", dtype, enabled=bool(dtype)):
                    return fused(x)

            return run

        bf16_copy = copy.deepcopy(fused).to(torch.bfloat16)  # what the Predictor runs (CPU bf16)

        def copy_run() -> object:
            with torch.inference_mode():
                return bf16_copy(x.to(torch.bfloat16))

        cases = {
            "torch fp32": torch_run(None),
            "torch bf16 autocast": torch_run(torch.bfloat16),
            "torch bf16 copy": copy_run,
            "onnxruntime": lambda: ort(x),
        }
        load_before = os.getloadavg()[0]
        times = alternate(cases, args.rounds)
    loads = (load_before, os.getloadavg()[0])
    fp32 = times["torch fp32"]
    ratios = {name: [a / b for a, b in zip(fp32, t, strict=True)] for name, t in times.items()}
    result = {
        "model": "drunet (default preset), 1 channel, BatchNorm folded for torch",
        "batch": f"{args.batch}x1x{args.tile}x{args.tile}",
        "threads": torch.get_num_threads(),
        "load_average_1min": loads,
        "seconds": times,
        "speed_vs_torch_fp32": ratios,
    }
    atomic_write_text(args.out / "inference_backends.json", json.dumps(result, indent=1) + "\n")
    lines = [
        f"Default DRUNet, {args.batch} × {args.tile}² grayscale tiles per call, "
        f"{torch.get_num_threads()} threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, medians of "
        f"{args.rounds} alternating rounds "
        f"(min–max); 1-min load average {loads[0]:.2f} → {loads[1]:.2f}.",
        "",
        "| backend | seconds per call | tiles/s | speed × torch fp32 |",
        "|---|--:|--:|--:|",
    ]
    for name, t in times.items():
        rate = [args.batch / s for s in t]
        lines.append(f"| {name} | {spread(t)} | {spread(rate)} | {spread(ratios[name])} |")
    print("\n" + "\n".join(lines) + "\n")
    print(f"written: {args.out / 'inference_backends.json'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="large image side")
    parser.add_argument("--tile", type=int, default=256, help="training patch / tile side")
    parser.add_argument("--images", type=int, default=32, help="small images in the folder")
    parser.add_argument("--small", type=int, default=256, help="small image side")
    parser.add_argument("--batch", type=int, default=4, help="tiles per call (backends)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument(
        "--parts", nargs="+", choices=("predictor", "backends"), default=["predictor", "backends"]
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if "predictor" in args.parts:
        predictor_part(args)
    if "backends" in args.parts:
        backends_part(args)


if __name__ == "__main__":
    main()
