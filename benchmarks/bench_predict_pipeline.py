"""Does the prefetching pipeline keep the network busy? Sequential loop vs pipeline on a folder.

Writes ``--count`` synthetic RGB PNGs (``--size``² pixels, textured so PNG decoding and encoding
cost what they cost on real images) and predicts the folder with ``predict_files`` twice per
round: ``prefetch=0`` (read, predict, write one batch at a time: the loop before the pipeline)
and ``prefetch=N`` (``--workers`` threads read and normalise ahead, one thread writes behind).
Rounds alternate which goes first; medians are reported with the ratio, the load average
(``os.getloadavg``: on a shared machine the numbers move with it) and the pipeline's time split:
IO (read + decode + post-process/encode/write, summed over threads), normalisation and compute
(the network). Wall time below IO + compute is the overlap achieved. The masks of both loops
are checked to be byte-equal.

On a loaded machine run it with ``OMP_WAIT_POLICY=PASSIVE``: by default libgomp's threads spin at
every barrier, which on oversubscribed cores makes the network several times slower — and less
so once the writer thread's own torch calls make libgomp throttle its spinning, so the pipeline
would gain for a reason that has nothing to do with overlap. The policy is printed.

    python benchmarks/bench_predict_pipeline.py [--count 64] [--size 256] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from drunet.config import config_from_dict
from drunet.datasets import write_image
from drunet.inference import PredictOptions, Predictor, predict_files
from drunet.models import create_model


def make_folder(folder: Path, count: int, size: int) -> None:
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:size, 0:size]
    for i in range(count):
        base = np.stack([rows * (i + 1) % 256, cols * 3 % 256, (rows + cols + i) % 256], axis=2)
        noise = rng.integers(0, 48, (size, size, 3))
        write_image(folder / f"{i:03d}.png", ((base + noise) % 256).astype(np.uint8))


def make_predictor(model: str, batch_size: int) -> Predictor:
    config = config_from_dict(
        {
            "model": {"name": model, "in_channels": 3, "num_classes": 2},
            "data": {
                "augmentation": {"patch_size": 256},
                "normalization": {"mean": [0.5] * 3, "std": [0.25] * 3, "clip_percentiles": None},
            },
        }
    )
    torch.manual_seed(0)
    network = create_model(model, in_channels=3, out_channels=1)
    return Predictor(network, config, "cpu", PredictOptions(batch_size=batch_size))


def run(predictor: Predictor, folder: Path, out: Path, prefetch: int, workers: int):
    shutil.rmtree(out, ignore_errors=True)
    inputs = sorted(folder.iterdir())
    start = time.perf_counter()
    report = predict_files(predictor, inputs, out, prefetch=prefetch, workers=workers)
    return time.perf_counter() - start, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", default="drunet_s")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--prefetch", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    predictor = make_predictor(args.model, args.batch_size)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folder, root = Path(tmp) / "in", Path(tmp)
        make_folder(folder, args.count, args.size)
        seq_times, pipe_times, splits = [], [], []
        for r in range(args.rounds):
            order = ["seq", "pipe"] if r % 2 == 0 else ["pipe", "seq"]
            for kind in order:
                prefetch = 0 if kind == "seq" else args.prefetch
                seconds, report = run(predictor, folder, root / kind, prefetch, args.workers)
                assert len(report.written) == args.count, report.failed
                if kind == "seq":
                    seq_times.append(seconds)
                else:
                    pipe_times.append(seconds)
                    splits.append(report.timings)
            if r == 0:
                for mask in sorted((root / "seq").glob("*_mask.png")):
                    assert mask.read_bytes() == (root / "pipe" / mask.name).read_bytes(), mask
    load_after = os.getloadavg()

    seq, pipe = statistics.median(seq_times), statistics.median(pipe_times)
    split = {k: statistics.median(s[k] for s in splits) for k in splits[0]}
    io = split["read"] + split["write"]
    busy = io + split["normalize"] + split["compute"]
    print(
        f"{args.count} images {args.size}x{args.size} RGB, {args.model}, batch {args.batch_size},"
        f" prefetch {args.prefetch}, {args.workers} reader(s), {args.rounds} alternating rounds,"
        f" torch threads {torch.get_num_threads()}, {os.cpu_count()} CPU(s),"
        f" OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset: active spinning)')}"
    )
    print(f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f},"
          f" after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")  # fmt: skip
    print(f"sequential: median {seq:.2f} s  ({', '.join(f'{t:.2f}' for t in seq_times)})")
    print(f"pipeline:   median {pipe:.2f} s  ({', '.join(f'{t:.2f}' for t in pipe_times)})")
    print(f"speed-up (sequential / pipeline): {seq / pipe:.2f}x")
    print(
        f"pipeline split (medians): IO {io:.2f} s (read+decode {split['read']:.2f}, "
        f"post-process+encode+write {split['write']:.2f}), normalise {split['normalize']:.2f} s, "
        f"compute {split['compute']:.2f} s; sum {busy:.2f} s vs wall {split['wall']:.2f} s "
        f"(overlap {max(0.0, busy - split['wall']):.2f} s)"
    )
    print(f"images/s: sequential {args.count / seq:.1f}, pipeline {args.count / pipe:.1f}")


if __name__ == "__main__":
    main()
