"""Does the data loader keep up with training? Loader samples/s vs. the model's training rate.

Measures, in one run and on the same machine:
  * the training ``DataLoader`` (random ``--patch`` patches with the default "light"
    augmentation and foreground oversampling, dataset normalisation) in samples/s, for 0 and 2
    worker processes, with and without the in-memory cache;
  * one training step of the default model, ``create_model("drunet", in_channels=1,
    out_channels=1)``, at ``--batch`` × ``--patch``² (forward, BCE loss, backward, AdamW), in
    images/s;
and prints their ratio. Data: the ISBI 2012 training slices (``../shared/datasets/isbi2012/train``
next to the repository) or, if absent, a synthetic folder of the same shape.

    python benchmarks/bench_loader.py [--data DIR] [--patch 256] [--batch 4]

The loader is timed alone; during real CPU training its workers share the cores with the model.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, RandomSampler

from drunet.datasets import (
    AugmentationOptions,
    SegmentationDataset,
    compute_normalization,
    discover,
    make_synthetic,
)
from drunet.models import create_model

ISBI = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "isbi2012" / "train"


def loader_rate(dataset: SegmentationDataset, workers: int, batch: int, batches: int) -> float:
    """Samples/s over ``batches`` batches, after the first one (worker start-up excluded)."""
    sampler = RandomSampler(dataset, replacement=True, num_samples=(batches + 1) * batch)
    loader = DataLoader(dataset, batch_size=batch, sampler=sampler, num_workers=workers)
    iterator = iter(loader)
    next(iterator)
    start = time.perf_counter()
    count = sum(x.shape[0] for x, _ in iterator)
    return count / (time.perf_counter() - start)


def training_rate(batch: int, patch: int, steps: int) -> float:
    """Images/s of full training steps of the default model on random data (CPU, float32)."""
    torch.manual_seed(0)
    model = create_model("drunet", in_channels=1, out_channels=1).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 1, patch, patch)
    y = (torch.rand(batch, 1, patch, patch) < 0.22).float()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.binary_cross_entropy_with_logits(model(x), y).backward()
        optimizer.step()

    step()  # warm-up: allocations, first-call overheads
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="dataset folder (default: ISBI)")
    parser.add_argument("--patch", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--batches", type=int, default=60, help="loader batches per setting")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or (ISBI if ISBI.is_dir() else None)
        if root is None:
            root = make_synthetic(Path(tmp) / "synthetic", num_images=30, sizes=[(512, 512)])
        layout = discover(root)
        pairs = layout.pairs
        norm = compute_normalization(layout.train)
        augmentation = AugmentationOptions(patch_size=args.patch)
        print(f"data: {root} ({len(pairs)} pairs; {layout.source})")
        print(
            f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
            f"torch threads, torch {torch.__version__}"
        )
        rows = []
        for cache in (False, True):
            for workers in (0, 2):
                dataset = SegmentationDataset(
                    pairs, normalization=norm, augmentation=augmentation, cache=cache
                )
                if cache:
                    dataset.preload()  # decoded once here; forked workers share the pages
                rows.append(
                    (workers, cache, loader_rate(dataset, workers, args.batch, args.batches))
                )
        train = training_rate(args.batch, args.patch, args.steps)

    print(
        f"\nloader: batch {args.batch}, patch {args.patch}, 'light' augmentation, "
        f"foreground share {augmentation.foreground_share}"
    )
    print(f"{'workers':>8} {'cache':>6} {'samples/s':>10} {'× training':>11}")
    for workers, cache, rate in rows:
        print(f"{workers:>8} {'on' if cache else 'off':>6} {rate:>10.1f} {rate / train:>10.1f}×")
    print(
        f"\ntraining step, drunet (in 1, out 1), batch {args.batch}, {args.patch}², CPU float32: "
        f"{train:.2f} images/s ({args.batch / train:.2f} s/step)"
    )
    slowest = min(rate for _, _, rate in rows)
    print(f"slowest loader setting delivers {slowest / train:.1f}× the training rate")


if __name__ == "__main__":
    main()
