"""Does ``torch.compile`` pay — for training (``train.compile``) and for prediction?

The default DRUNet (3 channels, binary) at ``--batch`` × 3 × ``--size``², in float32 and in
bfloat16 autocast, eager against ``torch.compile(model)`` (the trainer compiles the model, not the
step). First the compile itself is timed — the first training step, and the first inference call,
of a fresh compiled model, which is what a run pays once: cold (inductor's on-disk cache in a
fresh folder, as a user's first run) and warm (``torch._dynamo.reset()``, then a new compiled
model whose kernels the disk cache already holds, as the same run again) — then eager and
compiled steps are
timed alternately in one process (the order rotating each round, medians of ``--rounds`` rounds
of ``--steps`` steps, after a warm-up).

From the medians it prints the break-even: the wall-clock minutes after which the compiled run
has taken more training steps than the eager one (compile seconds ÷ the time saved per step),
and how many images each makes within a 10-minute run. ``train.compile`` should be the default
only where the compiled run is ahead within 10 minutes; prediction only where the per-call
speed-up repays the compile within a typical job (a folder of tens of images).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_compile.py [--batch 4] [--rounds 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import torch
from model_measure import make_inference, make_train_step

from drunet.models import create_model, fuse_conv_bn

RUN_SECONDS = 600  # the 10-minute run of the issue


def fresh_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("drunet", in_channels=3, out_channels=1)


def timed(fn: Callable[[], None], steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per case and round")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument(
        "--keep-cache", action="store_true", help="use inductor's usual cache (no cold compile)"
    )
    args = parser.parse_args()
    if not args.keep_cache:  # read by inductor when it first compiles, not at import
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="drunet-inductor-")

    x = torch.randn(args.batch, 3, args.size, args.size)
    y = (torch.rand(args.batch, 1, args.size, args.size) > 0.5).float()
    cases: dict[str, Callable[[], None]] = {}
    compile_seconds: dict[str, float] = {}
    warm_seconds: dict[str, float] = {}
    load_before = os.getloadavg()[0]
    for precision in args.precisions:
        for kind in ("train", "infer"):
            eager, compiled = fresh_model(), torch.compile(fresh_model())
            if kind == "infer":
                eager, compiled = (
                    fuse_conv_bn(eager.eval()),
                    torch.compile(fuse_conv_bn(fresh_model().eval())),
                )
                make = lambda m, p=precision: make_inference(m, x, p)  # noqa: E731
            else:
                make = lambda m, p=precision: make_train_step(m, x, y, p)  # noqa: E731
            eager_fn, compiled_fn = make(eager), make(compiled)
            eager_fn()  # warm-up: the eager step's first call is not free either
            first = timed(compiled_fn, 1)  # compiling happens here
            compile_seconds[f"{kind} {precision}"] = first - timed(eager_fn, 1)
            torch._dynamo.reset()  # the same model again: only the disk cache is warm
            if kind == "infer":
                again = make(torch.compile(fuse_conv_bn(fresh_model().eval())))
            else:
                again = make(torch.compile(fresh_model()))
            warm_first = timed(again, 1)
            warm_seconds[f"{kind} {precision}"] = warm_first - timed(eager_fn, 1)
            print(
                f"compiled {kind} {precision}: first call {first:.1f} s (cold cache), "
                f"{warm_first:.1f} s (warm)",
                flush=True,
            )
            cases[f"{kind} {precision} eager"] = eager_fn
            cases[f"{kind} {precision} compiled"] = again
    for fn in cases.values():  # the resets dropped earlier cases' compiled code: get it back
        fn()

    times: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(timed(cases[name], args.steps))
        print(f"round {r + 1}/{args.rounds}, load {os.getloadavg()[0]:.2f}", flush=True)
    load_after = os.getloadavg()[0]

    print(
        f"\nDefault DRUNet, {args.batch} × 3 × {args.size}², {torch.get_num_threads()} threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, torch "
        f"{torch.__version__}; medians of {args.rounds} alternating rounds × {args.steps} steps "
        f"(min–max); 1-min load average {load_before:.2f} → {load_after:.2f}.\n"
    )
    print(
        "| step | precision | eager s | compiled s | speed-up | compile s cold / warm "
        "| break-even min cold / warm | images in 10 min eager / compiled cold |"
    )
    print("|---|---|--:|--:|--:|--:|--:|--:|")
    for key, extra in compile_seconds.items():
        kind, precision = key.split()
        eager_t, compiled_t = times[f"{key} eager"], times[f"{key} compiled"]
        e, c = statistics.median(eager_t), statistics.median(compiled_t)
        ratio = [a / b for a, b in zip(eager_t, compiled_t, strict=True)]
        warm = warm_seconds[key]

        def even(cost: float, e: float = e, c: float = c) -> str:
            # The compiled run catches up at wall-clock t where t / e = (t - cost) / c.
            return f"{cost * e / (e - c) / 60:.1f}" if e > c else "never"

        images_eager = args.batch * RUN_SECONDS / e
        images_compiled = args.batch * max(0.0, RUN_SECONDS - extra) / c
        print(
            f"| {kind} | {precision} | {e:.3f} | {c:.3f} | {statistics.median(ratio):.2f} "
            f"({min(ratio):.2f}–{max(ratio):.2f}) | {extra:.0f} / {warm:.0f} "
            f"| {even(extra)} / {even(warm)} | {images_eager:.0f} / {images_compiled:.0f} |"
        )


if __name__ == "__main__":
    main()
