"""``drunet predict``'s path against MONAI's ``sliding_window_inference`` on one large image.

The same weights (the default DRUNet, 1 channel, binary; random weights: speed does not depend
on them) predict one ``--size``² grayscale image with the same tile (``--tile``), overlap (0.5),
tiles per forward pass (4) and Gaussian blending, alternately in one process (the order rotating
each round, medians of ``--rounds`` rounds after a warm-up):

  * **monai fp32** — what a MONAI user writes: the image normalised to a float32 tensor,
    ``sliding_window_inference(x, roi, 4, model, overlap=0.5, mode="gaussian")`` with the
    ``eval()`` model, then sigmoid > 0.5 and back to a NumPy mask;
  * **drunet <precision>** — ``Predictor.predict(image)``: normalisation, the sliding window
    (BatchNorm folded), blending, threshold, the mask; once per ``--precisions`` entry
    (``auto`` is what ``drunet predict`` runs by default on this machine).

Prints megapixels per second and each path's speed as a multiple of MONAI's (median of per-round
ratios, min–max), with the 1-minute load average before and after. MONAI is a benchmark-only
dependency: ``pip install --no-deps monai``.

    python benchmarks/bench_monai.py [--size 2048] [--tile 256] [--rounds 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from bench_inference import default_config

from drunet.inference import PredictOptions, Predictor
from drunet.models import create_model

MEAN, STD = 0.5, 0.25  # default_config's normalisation


def monai_path(model: torch.nn.Module, tile: int) -> Callable[[np.ndarray], np.ndarray]:
    from monai.inferers import sliding_window_inference

    def run(image: np.ndarray) -> np.ndarray:
        x = torch.from_numpy((image.astype(np.float32) / 255 - MEAN) / STD)[None, None]
        with torch.inference_mode():
            logits = sliding_window_inference(
                x, (tile, tile), 4, model, overlap=0.5, mode="gaussian"
            )
        return (torch.sigmoid(logits)[0, 0] > 0.5).numpy().astype(np.uint8)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--precisions", nargs="+", default=["auto", "fp32", "bf16"])
    args = parser.parse_args()

    torch.manual_seed(0)
    model = create_model("drunet", in_channels=1, out_channels=1).eval()
    for module in model.modules():  # varied BatchNorm statistics: a mask that is not all 0
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.5)
            module.running_var.uniform_(0.5, 2)
            module.bias.data.normal_(0, 0.5)
    head = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():  # and a head bias that puts about half of the pixels in foreground
        sample = torch.randn(1, 1, args.tile, args.tile)
        head.bias -= model(sample).median()
    config = default_config(args.tile)
    image = np.random.default_rng(0).integers(0, 256, (args.size, args.size), dtype=np.uint8)
    cases: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "monai fp32": monai_path(model, args.tile)
    }
    for precision in args.precisions:
        options = PredictOptions(max_pixels=0, overlap=0.5, batch_size=4, precision=precision)
        cases[f"drunet {precision}"] = Predictor(model, config, options=options).predict

    masks = {name: fn(image) for name, fn in cases.items()}  # warm-up, and agreement below
    load_before = os.getloadavg()[0]
    times: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            cases[name](image)
            times[name].append(time.perf_counter() - start)
        print(f"round {r + 1}/{args.rounds}, load {os.getloadavg()[0]:.2f}", flush=True)
    load_after = os.getloadavg()[0]

    megapixels = args.size**2 / 1e6
    monai = times["monai fp32"]
    print(
        f"\n{args.size}² grayscale, tiles {args.tile}², overlap 0.5, 4 tiles per pass, Gaussian "
        f"blending; {torch.get_num_threads()} threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, torch "
        f"{torch.__version__}; medians of {args.rounds} alternating rounds (min–max); 1-min "
        f"load average {load_before:.2f} → {load_after:.2f}.\n"
    )
    print("| path | seconds | MP/s | × MONAI fp32 | mask pixels equal to MONAI's | foreground |")
    print("|---|--:|--:|--:|--:|--:|")
    for name, t in times.items():
        ratio = [m / s for m, s in zip(monai, t, strict=True)]
        rate = [megapixels / s for s in t]
        agree = float(np.mean(masks[name] == masks["monai fp32"]))
        print(
            f"| {name} | {spread(t)} | {spread(rate)} | {spread(ratio)} | {100 * agree:.2f} % "
            f"| {100 * masks[name].mean():.1f} % |"
        )


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


if __name__ == "__main__":
    main()
