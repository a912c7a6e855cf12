"""What keeping freed memory (``drunet.heap``) buys and costs: speed and peak RSS, side by side.

The setting is process-wide and cannot be undone, so every measurement runs in a fresh process,
``DRUNET_KEEP_HEAP=1`` (drunet's default) and ``=0`` (glibc as it is) alternately, the order
swapping every round. Each process times ``--reps`` repetitions of one task after a warm-up and
reports their median and its peak resident size (``ru_maxrss``):

  * ``train`` — the default DRUNet's float32 training step at ``--batch`` × 3 × 256² (NCHW, as
    the trainer; forward, BCE, backward, fused AdamW);
  * ``predict`` — ``Predictor.predict`` of a ``--size``² grayscale image in float32 (256² tiles,
    overlap 0.5, batch 4).

Prints per task the medians, the median and range of the per-round speed ratios (kept ÷ glibc)
and of the peak-RSS ratios, and the 1-min load average.

    cd benchmarks && OMP_WAIT_POLICY=PASSIVE python bench_heap.py --rounds 4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, resource, statistics, sys, time
import numpy as np, torch
sys.path.insert(0, {here!r})
task, batch, size, reps = {task!r}, {batch}, {size}, {reps}
torch.manual_seed(0)
if task == "train":
    from model_measure import make_train_step
    from drunet.models import create_model
    model = create_model("drunet", in_channels=3, out_channels=1)
    x = torch.randn(batch, 3, 256, 256)
    y = (torch.rand(batch, 1, 256, 256) < 0.3).float()
    run = make_train_step(model, x, y, "fp32")
else:
    from bench_inference import default_config
    from drunet.checkpoint import build_model
    from drunet.inference import PredictOptions, Predictor
    config = default_config(256)
    options = PredictOptions(max_pixels=0, overlap=0.5, batch_size=4, precision="fp32")
    predictor = Predictor(build_model(config), config, device="cpu", options=options)
    image = np.random.default_rng(0).integers(0, 256, (size, size), dtype=np.uint8)
    run = lambda: predictor.predict(image)
run()
times = []
for _ in range(reps):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": statistics.median(times), "rss_mib": rss}}))
"""


def measure(task: str, keep: bool, cli: argparse.Namespace) -> dict[str, float]:
    here = os.path.dirname(os.path.abspath(__file__))
    code = CHILD.format(here=here, task=task, batch=cli.batch, size=cli.size, reps=cli.reps)
    env = {**os.environ, "DRUNET_KEEP_HEAP": "1" if keep else "0"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["train", "predict"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=4)
    cli = parser.parse_args()
    load = [os.getloadavg()[0]]
    results: dict[tuple[str, bool], list[dict[str, float]]] = {}
    for r in range(cli.rounds):
        for task in cli.tasks:
            for keep in (True, False) if r % 2 == 0 else (False, True):
                results.setdefault((task, keep), []).append(measure(task, keep, cli))
        load.append(os.getloadavg()[0])
        print(f"round {r + 1}/{cli.rounds}, load {load[-1]:.2f}", flush=True)
    print(
        f"\n{cli.rounds} rounds of fresh processes, {cli.reps} timed repetitions each; "
        f"1-min load {min(load):.2f}–{max(load):.2f}"
    )
    print(
        "| task | s kept | s glibc | speed kept ÷ glibc | peak RSS MiB kept / glibc | RSS ratio |"
    )
    print("|---|--:|--:|--:|--:|--:|")
    for task in cli.tasks:
        kept, plain = results[task, True], results[task, False]
        speed = [p["seconds"] / k["seconds"] for k, p in zip(kept, plain, strict=True)]
        rss = [k["rss_mib"] / p["rss_mib"] for k, p in zip(kept, plain, strict=True)]
        label = f"train b{cli.batch} fp32" if task == "train" else f"predict {cli.size}² fp32"
        print(
            f"| {label} | {statistics.median(k['seconds'] for k in kept):.2f} | "
            f"{statistics.median(p['seconds'] for p in plain):.2f} | {spread(speed)} | "
            f"{statistics.median(k['rss_mib'] for k in kept):.0f} / "
            f"{statistics.median(p['rss_mib'] for p in plain):.0f} | {spread(rss)} |"
        )


if __name__ == "__main__":
    main()
