"""Where does a training step's time go? torch.profiler over the default DRUNet (or any model).

Profiles ``--steps`` training steps (forward, BCE loss, backward, AdamW) after a warm-up and
prints the operators by self CPU time, then the share of time spent in convolutions (forward
and backward) versus everything else — normalisation, activations, the SE path, pooling,
concatenation, the optimiser — which is memory-bound and keeps achieved GFLOP/s below the
conv peak. Last, the bound: the step's FLOPs over the convolutions' own time, as a share of the
conv peak measured in the same run — what the step would reach if nothing but its convolutions
cost time.

    python benchmarks/profile_model.py [--model drunet] [--input 8x3x256x256] [--steps 3]
        [--precision bf16] [--threads 1]

``--precision bf16`` runs the forward under CPU bf16 autocast (as ``--precision bf16`` of
``drunet train``); ``--threads`` sets ``torch.set_num_threads``. On the 2-core reference machine,
when other processes compete for the cores, oneDNN's AMX bf16 weight-gradient kernel
(``brgconv_bwd_w``) runs up to ~100× slower on 2 threads than on 1: compare
``--precision bf16`` with and without ``--threads 1`` (see ``bench_train_bf16.py``).
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections import defaultdict

import torch
from conv_peak import ConvPeak
from model_measure import flops_per_image, make_train_step
from torch.profiler import ProfilerActivity, profile

from drunet.models import create_model

CONV = ("convolution", "conv2d", "mkldnn_convolution", "conv_transpose")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="drunet")
    parser.add_argument("--input", default="8x3x256x256", help="NxCxHxW")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    n, c, h, w = (int(v) for v in args.input.split("x"))
    torch.manual_seed(0)
    model = create_model(args.model, in_channels=c, out_channels=1)
    x, y = torch.randn(n, c, h, w), (torch.rand(n, 1, h, w) < 0.22).float()
    step = make_train_step(model, x, y, args.precision)
    step()  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    events = prof.key_averages()
    print(events.table(sort_by="self_cpu_time_total", row_limit=args.rows))
    groups: dict[str, float] = defaultdict(float)
    for event in events:
        name = event.key.lower()
        if any(k in name for k in CONV):
            group = "convolutions (fwd + bwd)"
        elif "batch_norm" in name or "native_batch_norm" in name:
            group = "batch norm (fwd + bwd)"
        elif any(k in name for k in ("relu", "threshold", "sigmoid", "mul", "add", "addcmul")):
            group = "activations, SE gate, residual adds"
        elif "adam" in name or "_foreach" in name or "lerp" in name or "sqrt" in name:
            group = "optimiser"
        else:
            group = "other (pooling, concat, copies, loss, …)"
        groups[group] += event.self_cpu_time_total
    total = sum(groups.values())
    print(
        f"\n{args.model} at {args.input}, {args.precision}, {torch.get_num_threads()} threads, "
        f"{args.steps} training steps, self CPU time by group:"
    )
    for group, micros in sorted(groups.items(), key=lambda kv: -kv[1]):
        seconds, share = micros / 1e6 / args.steps, 100 * micros / total
        print(f"  {group:45s} {seconds:7.2f} s/step  {share:5.1f} %")
    # The bound: every FLOP of a training step is a convolution's, so with everything else free
    # the step would run at the convolutions' own speed.
    flops = flops_per_image(model, x, train=True) * n
    conv_seconds = groups["convolutions (fwd + bwd)"] / 1e6 / args.steps
    peak = statistics.median(ConvPeak().gflops(args.precision))
    print(
        f"convolutions alone: {flops / conv_seconds / 1e9:.0f} GFLOP/s = "
        f"{flops / conv_seconds / 1e9 / peak:.0%} of the {args.precision} conv peak "
        f"({peak:.0f} GFLOP/s, conv_peak.py, measured now); the whole step: "
        f"{flops / (total / 1e6 / args.steps) / 1e9 / peak:.0%}; 1-min load "
        f"{os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
