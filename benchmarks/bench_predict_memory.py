"""Does `drunet predict` keep memory flat over a large folder? Peak RSS at 200 and 2 000 images.

Writes ``--count`` small grayscale PNGs (64 × 64 by default) and weights of the default model
(random: memory does not depend on the values), then runs the real CLI,
``drunet predict FOLDER --model WEIGHTS --out OUT``, in a fresh process on the first 200 images
and on all of them, and reads each process's peak resident memory from the kernel (``wait4``).
Flat memory means the two peaks are close: outputs are written as they are made and at most
one batch of images is held.

    python benchmarks/bench_predict_memory.py [--count 2000] [--size 64]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_inference import default_config

from drunet.checkpoint import save_weights
from drunet.datasets import write_image
from drunet.models import create_model


def write_weights(path: Path, patch: int) -> None:
    model = create_model("drunet", in_channels=1, out_channels=1)
    save_weights(path, model, default_config(patch))


def peak_rss_of_predict(folder: Path, weights: Path, out: Path) -> tuple[float, float]:
    """Run the CLI; return (peak RSS in MiB, seconds)."""
    command = [sys.executable, "-m", "drunet", "predict", str(folder), "--model", str(weights)]
    start = time.perf_counter()
    process = subprocess.Popen([*command, "--out", str(out)], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"drunet predict failed on {folder}")
    return usage.ru_maxrss / 1024, seconds  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        weights = work / "model.safetensors"
        write_weights(weights, patch=args.size)
        small, large = work / "first200", work / "all"
        for i in range(args.count):
            image = rng.integers(0, 256, (args.size, args.size), dtype=np.uint8)
            write_image(large / f"{i:05d}.png", image)
            if i < 200:
                write_image(small / f"{i:05d}.png", image)
        rows = []
        for folder in (small, large):
            count = len(list(folder.iterdir()))
            peak, seconds = peak_rss_of_predict(folder, weights, work / f"out-{folder.name}")
            rows.append((count, peak, seconds))
            print(f"{count} images: peak RSS {peak:.0f} MiB, {seconds:.1f} s", flush=True)
    (n0, p0, s0), (n1, p1, s1) = rows
    print(
        f"\n| images ({args.size}² gray) | peak RSS (MiB) | seconds | images/s |\n"
        "|--:|--:|--:|--:|\n"
        f"| {n0} | {p0:.0f} | {s0:.1f} | {n0 / s0:.1f} |\n"
        f"| {n1} | {p1:.0f} | {s1:.1f} | {n1 / s1:.1f} |\n\n"
        f"peak RSS ratio {n1} / {n0} images: {p1 / p0:.3f}"
    )


if __name__ == "__main__":
    main()
