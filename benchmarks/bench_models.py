"""DRUNet presets against the smp baseline: speed, FLOPs, efficiency and memory on this machine.

For every model and input shape, measured alternately in one process (the model order rotates
each round, so a busy moment on the machine does not land on one model only):
  * training images/s — full steps as the trainer takes them on CPU (forward, BCE loss,
    backward, AdamW), float32;
  * inference images/s — batched forward in eval mode, and with BatchNorm folded into the convs
    (``drunet.models.fuse_conv_bn``) for DRUNet;
  * peak memory of a training step and of an inference pass (PyTorch's CPU allocator, plus the
    parameters, optimiser state and batch that were already held);
  * parameters, forward GFLOPs per image and training (forward + backward) GFLOPs per image
    counted by ``torch.utils.flop_counter``;
  * achieved GFLOP/s (counted FLOPs × images/s) and its ratio to the machine's float32 matmul
    rate, measured in each round.

Writes ``benchmarks/results/models.json`` (every timing sample) and ``models.md`` (the table the
README shows) and prints the table.

    python benchmarks/bench_models.py                        # presets + baseline, 2 shapes
    python benchmarks/bench_models.py --models drunet unet_resnet34 --rounds 5
    python benchmarks/bench_models.py --models "drunet:init_features=24,se_reduction=0"

Models are registry names, optionally with keyword arguments after a colon.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from model_measure import (
    allocated_peak_bytes,
    flops_per_image,
    make_inference,
    make_train_step,
    matmul_peak_gflops,
    optimizer_state_bytes,
    tensor_bytes,
    time_calls,
    wait_until_quiet,
)

from drunet.atomic import atomic_write_text
from drunet.models import create_model, fuse_conv_bn, model_names
from drunet.models.presets import DEFAULT_PRESET, PRESETS

BASELINE = "unet_resnet34"
DEFAULT_MODELS = ("drunet", *(n for n in PRESETS if n != DEFAULT_PRESET), BASELINE)
DEFAULT_INPUTS = ("8x3x256x256", "2x1x512x512")  # 512²: batch 2 keeps the pixels per step equal
RESULTS = Path(__file__).resolve().parent / "results"
NHWC = "@channels_last"  # spec suffix: model and batch in NHWC, as train.channels_last does
QUIET = 0.1  # a call is "quiet" when other processes kept < 10 % of the CPUs busy


@dataclass
class Case:
    """One model at one input shape, with its timing samples."""

    spec: str
    shape: tuple[int, int, int, int]  # (N, C, H, W)
    params: int = 0
    fwd_flops: float = 0.0  # per image
    train_flops: float = 0.0  # per image, forward + backward
    train_peak: int | None = None
    infer_peak: int | None = None
    # (seconds, share of the CPUs other processes used meanwhile) per timed call
    train_times: list[tuple[float, float | None]] = field(default_factory=list)
    infer_times: list[tuple[float, float | None]] = field(default_factory=list)
    fused_times: list[tuple[float, float | None]] = field(default_factory=list)

    def quiet(self, samples: list[tuple[float, float | None]]) -> list[float]:
        """Seconds of the calls no other process interfered with (all calls if none was)."""
        quiet = [s for s, others in samples if others is None or others <= QUIET]
        return quiet or [s for s, _ in samples]

    def rate(self, samples: list[tuple[float, float | None]]) -> float | None:
        """Images/s of the median quiet call."""
        return self.shape[0] / statistics.median(self.quiet(samples)) if samples else None

    def spread(self, samples: list[tuple[float, float | None]]) -> tuple[float, float]:
        times = self.quiet(samples)
        return self.shape[0] / max(times), self.shape[0] / min(times)


def parse_model(spec: str) -> tuple[str, dict]:
    """``"name"`` or ``"name:key=value,key=value"`` → (registry name, keyword arguments)."""
    name, _, args = spec.removesuffix(NHWC).partition(":")
    if name not in model_names():
        raise SystemExit(f"unknown model {name!r}; choose one of: {', '.join(model_names())}")
    kwargs = {}
    for item in filter(None, args.split(",")):
        key, _, value = item.partition("=")
        kwargs[key.strip()] = ast.literal_eval(value.strip())
    return name, kwargs


def parse_shape(text: str) -> tuple[int, int, int, int]:
    parts = tuple(int(p) for p in text.lower().split("x"))
    if len(parts) != 4:
        raise SystemExit(f"input {text!r}: expected NxCxHxW, e.g. 8x3x256x256")
    return parts  # type: ignore[return-value]


class Runner:
    """Builds one case's model, batch, training step and inference functions (kept for reuse)."""

    def __init__(self, case: Case, fused: bool) -> None:
        name, kwargs = parse_model(case.spec)
        n, c, h, w = case.shape
        torch.manual_seed(0)
        self.model = create_model(name, in_channels=c, out_channels=1, **kwargs)
        self.x = torch.randn(n, c, h, w)
        self.y = (torch.rand(n, 1, h, w) < 0.22).float()  # ISBI's membrane share
        if case.spec.endswith(NHWC):
            self.model = self.model.to(memory_format=torch.channels_last)
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.train = make_train_step(self.model, self.x, self.y)
        self.infer = make_inference(self.model, self.x)
        self.fused = None
        case.params = sum(p.numel() for p in self.model.parameters())
        case.fwd_flops = flops_per_image(self.model, self.x[:1], train=False)
        case.train_flops = flops_per_image(self.model, self.x[:1], train=True)
        self.train()  # warm-up; creates the optimiser state
        held = tensor_bytes([*self.model.parameters(), *self.model.buffers(), self.x, self.y])
        step_peak = allocated_peak_bytes(self.train)
        if step_peak is not None:
            case.train_peak = held + optimizer_state_bytes(self.train.optimizer) + step_peak
        self.model.zero_grad(set_to_none=True)
        self.infer()
        infer_peak = allocated_peak_bytes(self.infer)
        if infer_peak is not None:
            case.infer_peak = held + infer_peak
        if fused:
            self.fused = make_inference(fuse_conv_bn(self.model), self.x)
            self.fused()


def run(specs: list[str], shapes: list[tuple], rounds: int, steps: int, wait: float) -> dict:
    cases = [Case(spec, shape) for shape in shapes for spec in specs]
    runners = {}
    for case in cases:
        print(f"setting up {case.spec} at {'×'.join(map(str, case.shape))} …", flush=True)
        runners[id(case)] = Runner(case, fused=not case.spec.startswith(BASELINE))
    peaks, loads = [], []
    for r in range(rounds):
        start, waited = time.perf_counter(), wait_until_quiet(QUIET, wait)
        peaks.append(matmul_peak_gflops())
        loads.append(os.getloadavg()[0])
        for shape in shapes:
            group = [c for c in cases if c.shape == shape]
            for case in group[r % len(group) :] + group[: r % len(group)]:  # rotate the order
                runner = runners[id(case)]
                waited += wait_until_quiet(QUIET, wait)
                case.train_times += time_calls(runner.train, steps, QUIET, retries=steps)
                case.infer_times += time_calls(runner.infer, steps, QUIET, retries=steps)
                if runner.fused is not None:
                    case.fused_times += time_calls(runner.fused, steps, QUIET, retries=steps)
        print(
            f"round {r + 1}/{rounds}: {time.perf_counter() - start:.0f} s ({waited:.0f} s "
            f"waiting for other jobs), matmul {peaks[-1]:.0f} GFLOP/s, load {loads[-1]:.2f}",
            flush=True,
        )
    return summarise(cases, peaks, loads, rounds, steps)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, float32"
    )


def summarise(cases: list[Case], peaks: list[float], loads: list[float], rounds, steps) -> dict:
    peak = statistics.median(peaks)
    rows = []
    for case in cases:
        base = next(
            (c for c in cases if c.shape == case.shape and c.spec == BASELINE),
            None,
        )
        train, infer = case.rate(case.train_times), case.rate(case.infer_times)
        fused = case.rate(case.fused_times)
        best_infer = max(r for r in (infer, fused) if r is not None)
        row = {
            "model": case.spec,
            "input": "×".join(map(str, case.shape)),
            "params": case.params,
            "fwd_gflops": case.fwd_flops / 1e9,
            "train_gflops": case.train_flops / 1e9,
            "train_img_s": train,
            "train_img_s_range": case.spread(case.train_times),
            "infer_img_s": infer,
            "infer_img_s_range": case.spread(case.infer_times),
            "fused_infer_img_s": fused,
            "train_gflop_s": train * case.train_flops / 1e9,
            "train_peak_fraction": train * case.train_flops / 1e9 / peak,
            "infer_gflop_s": best_infer * case.fwd_flops / 1e9,
            "infer_peak_fraction": best_infer * case.fwd_flops / 1e9 / peak,
            "train_vs_baseline": train / base.rate(base.train_times) if base else None,
            "infer_vs_baseline": best_infer / base.rate(base.infer_times) if base else None,
            "train_peak_mb": case.train_peak / 2**20 if case.train_peak else None,
            "infer_peak_mb": case.infer_peak / 2**20 if case.infer_peak else None,
            "quiet_calls": {
                kind: f"{len(case.quiet(t))}/{len(t)}"
                for kind, t in (("train", case.train_times), ("infer", case.infer_times))
            },
            "samples_s": {
                "train": case.train_times,
                "infer": case.infer_times,
                "fused": case.fused_times,
            },
        }
        rows.append(row)
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "matmul_peak_gflop_s": peak,
        "matmul_peak_samples": peaks,
        "load_average_1min": loads,
        "rounds": rounds,
        "steps_per_round": steps,
        "default_preset": DEFAULT_PRESET,
        "rows": rows,
    }


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "n/a" if value is None else format(value, spec)


def markdown(result: dict) -> str:
    peaks = result["matmul_peak_samples"]
    lines = [
        f"Machine: {result['machine']}; float32 matmul peak {result['matmul_peak_gflop_s']:.0f} "
        f"GFLOP/s (median of {len(peaks)} rounds, {min(peaks):.0f}–{max(peaks):.0f}); "
        f"1-min load average {min(result['load_average_1min']):.1f}–"
        f"{max(result['load_average_1min']):.1f}; {result['date']}.",
        f"Medians of {result['rounds']} rounds × {result['steps_per_round']} steps (min–max in "
        f"parentheses); `drunet` is the default preset `{result['default_preset']}`.",
        "",
        "| model | input N×C×H×W | params (M) | fwd GFLOP/img | train img/s | train × baseline "
        "| train GFLOP/s | % matmul peak | infer img/s (fused BN) | infer × baseline "
        "| peak MB train / infer |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in result["rows"]:
        lo, hi = row["train_img_s_range"]
        fused = f" ({fmt(row['fused_infer_img_s'])})" if row["fused_infer_img_s"] else ""
        lines.append(
            f"| {row['model']} | {row['input']} | {row['params'] / 1e6:.2f} "
            f"| {row['fwd_gflops']:.1f} | {row['train_img_s']:.2f} ({lo:.2f}–{hi:.2f}) "
            f"| {fmt(row['train_vs_baseline'])}× | {row['train_gflop_s']:.0f} "
            f"| {100 * row['train_peak_fraction']:.0f} % | {row['infer_img_s']:.2f}{fused} "
            f"| {fmt(row['infer_vs_baseline'])}× "
            f"| {fmt(row['train_peak_mb'], '.0f')} / {fmt(row['infer_peak_mb'], '.0f')} |"
        )
    lines += [
        "",
        "Sliding-window overhead and batched folder prediction: `benchmarks/bench_inference.py`.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--inputs", nargs="+", default=list(DEFAULT_INPUTS), help="NxCxHxW")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per model and round")
    parser.add_argument(
        "--wait", type=float, default=30, help="max seconds to wait for other jobs per model"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for models.json/.md")
    parser.add_argument("--name", default="models", help="file stem of the outputs")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if BASELINE not in [s.split(":")[0] for s in args.models]:
        print(f"note: {BASELINE} is not among --models, so the × baseline columns are n/a")
    shapes = [parse_shape(s) for s in args.inputs]
    result = run(args.models, shapes, args.rounds, args.steps, args.wait)
    table = markdown(result)
    atomic_write_text(args.out / f"{args.name}.json", json.dumps(result, indent=1) + "\n")
    atomic_write_text(args.out / f"{args.name}.md", table)
    print("\n" + table)
    print(f"written: {args.out / args.name}.json, .md")


if __name__ == "__main__":
    main()
