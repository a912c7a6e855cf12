"""AdamW's step for the default DRUNet: per-parameter loop, ``foreach`` and ``fused``, alternately.

The trainer builds ``torch.optim.AdamW(..., fused=True)`` on CPU and CUDA
(``drunet/engine/optim.py``). This times one optimiser step (gradients already there) of each
implementation over the default model's parameters, in rounds whose order rotates, and prints
medians, per-round ratios to the per-parameter loop and the largest difference in the updated
weights after the same steps.

    cd benchmarks && OMP_WAIT_POLICY=PASSIVE python bench_optimizer.py --rounds 30
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from drunet.models import create_model

KINDS = ("loop", "foreach", "fused")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    cli = parser.parse_args()
    models, optimizers = {}, {}
    for kind in KINDS:
        torch.manual_seed(0)
        model = create_model("drunet", in_channels=3, out_channels=1)
        torch.manual_seed(1)
        for p in model.parameters():
            p.grad = torch.randn_like(p)
        flags = {"foreach": kind == "foreach", "fused": kind == "fused"}
        models[kind] = model
        optimizers[kind] = torch.optim.AdamW(model.parameters(), lr=1e-3, **flags)
    for optimizer in optimizers.values():  # warm-up: state tensors allocated
        optimizer.step()
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    load = [os.getloadavg()[0]]
    for r in range(cli.rounds):
        for kind in KINDS[r % 3 :] + KINDS[: r % 3]:
            start = time.perf_counter()
            optimizers[kind].step()
            times[kind].append(time.perf_counter() - start)
    load.append(os.getloadavg()[0])
    params = list(models["loop"].parameters())
    print(
        f"default DRUNet: {len(params)} tensors, {sum(p.numel() for p in params) / 1e6:.2f} M "
        f"parameters; {torch.get_num_threads()} threads; {cli.rounds} rounds; 1-min load "
        f"{load[0]:.2f} → {load[1]:.2f}"
    )
    print("| AdamW | ms per step | speed × loop | max |weight − loop's| |")
    print("|---|--:|--:|--:|")
    for kind in KINDS:
        ratios = [a / b for a, b in zip(times["loop"], times[kind], strict=True)]
        diff = max(
            (a - b).abs().max().item()
            for a, b in zip(models["loop"].parameters(), models[kind].parameters(), strict=True)
        )
        print(
            f"| {kind} | {statistics.median(times[kind]) * 1e3:.1f} | "
            f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f}) | {diff:.1e} |"
        )


if __name__ == "__main__":
    main()
