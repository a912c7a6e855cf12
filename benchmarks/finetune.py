"""Does starting from a trained model pay? Pre-train on one synthetic family, fine-tune on another.

    python benchmarks/finetune.py [--seeds 0 1] [--epochs 4] [--out /tmp/drunet-finetune]

Pre-trains the default DRUNet on 48 binary synthetic images, then trains on a different family
(3 classes, other shapes and sizes, only 8 training images) for the same small budget (epochs
× steps) twice per seed: from scratch and with ``train.init_from`` (the stem and every matching
layer loaded, the 3-class head fresh). Prints validation Dice (best epoch) for both and their
difference; budgets are counted in optimiser steps, not seconds, so load on the machine does not
change the comparison.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from drunet import train
from drunet.config import config_from_dict
from drunet.datasets.synthetic import make_synthetic

RECIPE: dict = {
    "data": {"augmentation": {"patch_size": 96}, "batch_size": 8},
    "train": {"lr": 3e-3, "steps_per_epoch": 12, "warmup_epochs": 0},
}


def run(data: Path, runs: Path, name: str, epochs: int, seed: int, **train_keys: object) -> float:
    recipe = {
        **RECIPE,
        "name": name,
        "runs_dir": str(runs),
        "data": {**RECIPE["data"], "root": str(data), "layout": {"seed": seed}},
        "train": {**RECIPE["train"], "epochs": epochs, "seed": seed, **train_keys},
    }
    return train(config_from_dict(recipe)).best_score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=4, help="fine-tuning budget per run")
    parser.add_argument("--pretrain-epochs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=12, help="optimiser steps per epoch")
    parser.add_argument("--patch", type=int, default=96, help="training patch side")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    RECIPE["train"]["steps_per_epoch"] = args.steps
    RECIPE["data"]["augmentation"]["patch_size"] = args.patch
    out = args.out or Path(tempfile.mkdtemp(prefix="drunet-finetune-"))
    source = make_synthetic(out / "source", 48, num_classes=2, seed=100)
    target = make_synthetic(
        out / "target", 10, num_classes=3, sizes=((112, 144), (144, 112)), seed=200
    )
    pretrained = out / "runs" / "pretrain"
    if not pretrained.exists():
        run(source, out / "runs", "pretrain", args.pretrain_epochs, seed=0)
    rows = []
    for seed in args.seeds:
        scratch = run(target, out / "runs", f"scratch-{seed}", args.epochs, seed)
        tuned = run(
            target, out / "runs", f"init-{seed}", args.epochs, seed, init_from=str(pretrained)
        )
        rows.append((seed, scratch, tuned))
    print(
        f"\nfine-tuning budget: {args.epochs} epochs × {RECIPE['train']['steps_per_epoch']} steps;"
        f" load average {os.getloadavg()[0]:.1f}"
    )
    print("| seed | from scratch | --init-from | difference |\n|--:|--:|--:|--:|")
    for seed, scratch, tuned in rows:
        print(f"| {seed} | {scratch:.3f} | {tuned:.3f} | {tuned - scratch:+.3f} |")
    diffs = [tuned - scratch for _, scratch, tuned in rows]
    print(
        f"mean difference {statistics.fmean(diffs):+.3f} (range {min(diffs):+.3f} … "
        f"{max(diffs):+.3f}) over {len(rows)} seeds"
    )


if __name__ == "__main__":
    main()
