"""A side-by-side figure of images and their predicted overlays, for the README.

    drunet predict ../shared/datasets/isbi2012/test_unlabeled/images --model RUN --out preds/
    python benchmarks/montage.py ../shared/datasets/isbi2012/test_unlabeled/images preds/ \\
        --out benchmarks/results/isbi2012/test_predictions.png --count 3

Each row: the image, then ``<stem>_overlay.png`` from the prediction folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from drunet.datasets import read_image
from drunet.inference.files import collect_inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", type=Path)
    parser.add_argument("predictions", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--count", type=int, default=3)
    args = parser.parse_args()
    images = collect_inputs(args.images)
    last, steps = len(images) - 1, max(1, args.count - 1)
    picks = [images[round(i * last / steps)] for i in range(args.count)]
    fig, axes = plt.subplots(len(picks), 2, figsize=(6, 3 * len(picks)), squeeze=False)
    for row, path in zip(axes, picks, strict=True):
        overlay = args.predictions / f"{path.stem}_overlay.png"
        for ax, (title, array) in zip(
            row, ((path.name, read_image(path)), ("prediction", read_image(overlay))), strict=True
        ):
            ax.imshow(array.squeeze(), cmap="gray")
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
