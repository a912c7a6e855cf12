"""The machine's convolution peak per precision: the honest yardstick for a conv network.

A large channels-last 3 × 3 convolution (default N=8, 256 → 256 channels, 64 × 64, padding 1)
is about the most efficient thing a CPU does with a conv network's arithmetic, so it is what the
models' achieved GFLOP/s are divided by (``bench_models.py``), per precision:

  * ``fp32`` — float32 tensors;
  * ``bf16`` — the same conv under ``torch.autocast("cpu", dtype=torch.bfloat16)`` (what
    ``--precision bf16`` does), where this PyTorch supports it.

GFLOP/s = 2·N·Cout·H·W·Cin·9 / seconds, the median of ``--repeats`` (≥ 8) timed calls after a
warm-up. Also reports whether the CPU runs bfloat16 natively (``avx512_bf16`` or ``amx_bf16`` in
``/proc/cpuinfo``; without them bfloat16 is emulated and usually slower than float32) and the
1-minute load average (on a busy machine every number here is low; run it with
``OMP_WAIT_POLICY=PASSIVE`` there, or OpenMP threads spinning against other jobs slow it
several-fold).

    python benchmarks/conv_peak.py [--repeats 8] [--batch 8] [--channels 256] [--size 64]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

PRECISIONS = ("fp32", "bf16")


def cpu_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU flags include AVX-512 BF16 or AMX BF16 (Linux; False elsewhere)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


@dataclass(frozen=True)
class ConvShape:
    batch: int = 8
    channels: int = 256  # in and out
    size: int = 64  # height and width

    @property
    def flops(self) -> float:
        """2·N·Cout·H·W·Cin·9: one multiply-add of a 3 × 3 conv is 2 FLOPs."""
        n, c, s = self.batch, self.channels, self.size
        return 2.0 * n * c * s * s * c * 9

    def __str__(self) -> str:
        c, s = self.channels, self.size
        return f"conv 3×3, N={self.batch}, {c}→{c} channels, {s}×{s}, channels-last"


def autocast(precision: str) -> contextlib.AbstractContextManager[object]:
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=torch.bfloat16)


class ConvPeak:
    """The conv's tensors, built once, so that benchmarks can time it again every round."""

    def __init__(self, shape: ConvShape = ConvShape()) -> None:
        self.shape = shape
        torch.manual_seed(0)
        n, c, s = shape.batch, shape.channels, shape.size
        cl = torch.channels_last
        self.x = torch.randn(n, c, s, s).contiguous(memory_format=cl)
        self.w = (torch.randn(c, c, 3, 3) / (3 * c**0.5)).contiguous(memory_format=cl)
        self.warm: set[str] = set()

    def supported(self, precision: str) -> bool:
        """Whether this PyTorch runs the conv in ``precision`` on the CPU."""
        try:
            self.seconds(precision)
        except RuntimeError:
            return False
        return True

    def seconds(self, precision: str) -> float:
        """Wall time of one conv call (the first call per precision warms up first)."""
        with torch.inference_mode(), autocast(precision):
            if precision not in self.warm:
                for _ in range(2):  # oneDNN picks and caches its kernel; pages fault in
                    F.conv2d(self.x, self.w, padding=1)
                self.warm.add(precision)
            start = time.perf_counter()
            F.conv2d(self.x, self.w, padding=1)
            return time.perf_counter() - start

    def gflops(self, precision: str, repeats: int = 8) -> list[float]:
        """GFLOP/s of ``repeats`` timed calls."""
        return [self.shape.flops / self.seconds(precision) / 1e9 for _ in range(repeats)]


def measure(shape: ConvShape, repeats: int) -> dict[str, object]:
    peak = ConvPeak(shape)
    load = os.getloadavg()[0]
    result: dict[str, object] = {
        "conv": str(shape),
        "native_bf16": cpu_native_bf16(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
    }
    for precision in PRECISIONS:
        if not peak.supported(precision):
            result[precision] = None
            continue
        samples = peak.gflops(precision, repeats)
        result[precision] = {
            "median_gflop_s": statistics.median(samples),
            "min": min(samples),
            "max": max(samples),
            "samples": samples,
        }
    result["load_average_1min"] = (load, os.getloadavg()[0])
    return result


def table(result: dict[str, object], repeats: int) -> str:
    before, after = result["load_average_1min"]  # type: ignore[misc]
    lines = [
        f"{result['conv']}; {result['threads']} torch threads, torch {result['torch']}, "
        f"OMP_WAIT_POLICY={result['omp_wait_policy']}; "
        f"native bf16 (avx512_bf16/amx_bf16): {'yes' if result['native_bf16'] else 'no'}; "
        f"1-min load average {before:.2f} → {after:.2f}; median of {repeats} calls after "
        "warm-up.",
        "",
        "| precision | GFLOP/s (median) | min–max | × fp32 |",
        "|---|--:|--:|--:|",
    ]
    fp32 = result["fp32"]
    for precision in PRECISIONS:
        row = result[precision]
        if not isinstance(row, dict):
            lines.append(f"| {precision} | not supported | | |")
            continue
        ratio = row["median_gflop_s"] / fp32["median_gflop_s"] if isinstance(fp32, dict) else 0
        lines.append(
            f"| {precision} | {row['median_gflop_s']:.0f} | {row['min']:.0f}–{row['max']:.0f} "
            f"| {ratio:.2f}× |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=8, help="timed calls per precision (≥ 8)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args()
    if args.repeats < 8:
        parser.error("--repeats must be at least 8")
    if args.threads:
        torch.set_num_threads(args.threads)
    result = measure(ConvShape(args.batch, args.channels, args.size), args.repeats)
    print(table(result, args.repeats))


if __name__ == "__main__":
    main()
