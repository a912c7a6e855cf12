"""DRUNet presets against the smp baseline: speed, FLOPs, efficiency and memory on this machine.

For every model, input shape and precision (float32, and bfloat16 autocast as
``--precision bf16`` runs it), measured alternately in one process — every round times every
case once, in an order that rotates each round, so a busy moment on the machine does not land
on one case only:
  * training images/s — full steps as the trainer takes them on CPU (forward, BCE loss,
    backward, fused AdamW; glibc keeping freed memory, as the trainer sets it);
  * inference images/s — batched forward in eval mode, and with BatchNorm folded into the convs
    (``drunet.models.fuse_conv_bn``) for DRUNet;
  * achieved GFLOP/s (counted FLOPs × images/s) against the machine's **conv peak in the same
    precision** (``conv_peak.py``: a large channels-last 3 × 3 conv), measured every round, and
    speed ratios to the baseline and bf16 ÷ fp32 — each a median of per-round ratios, with the
    min–max over rounds;
  * peak memory of a float32 training step and inference pass (PyTorch's CPU allocator, plus
    the parameters, optimiser state and batch already held), parameters and FLOPs per image
    (``torch.utils.flop_counter``).
The 1-minute load average is read every round and printed with the table: on a shared machine
the numbers are only as good as it is quiet.

Writes ``benchmarks/results/models.json`` (every sample) and ``models.md`` (the table the README
shows) and prints the table. The default (4 models, one shape, 8 rounds) should take about 5
minutes on a quiet 2-core machine (estimated); ``drunet_ref`` and 512² inputs are opt-in:

    python benchmarks/bench_models.py
    python benchmarks/bench_models.py --models drunet unet_resnet34 --rounds 10
    python benchmarks/bench_models.py --models drunet drunet_ref --inputs 2x1x512x512
    python benchmarks/bench_models.py --models "drunet:init_features=24,se_reduction=0"

Models are registry names, optionally with keyword arguments after a colon (and ``@channels_last``
for NHWC model and batch).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from conv_peak import ConvPeak, cpu_native_bf16
from model_measure import (
    NHWC,
    allocated_peak_bytes,
    flops_per_image,
    machine,
    make_inference,
    make_train_step,
    optimizer_state_bytes,
    parse_model,
    parse_shape,
    tensor_bytes,
    time_calls,
    wait_until_quiet,
)

from drunet.atomic import atomic_write_text
from drunet.device import select_precision
from drunet.models import create_model, fuse_conv_bn
from drunet.models.presets import DEFAULT_PRESET

BASELINE = "unet_resnet34"
DEFAULT_MODELS = ("drunet", "drunet_m", "drunet_l", BASELINE)
DEFAULT_INPUTS = ("8x3x256x256",)
PRECISIONS = ("fp32", "bf16")
RESULTS = Path(__file__).resolve().parent / "results"
Samples = list[float]


@dataclass(eq=False)  # hashed by identity: a key of the timed functions
class Case:
    """One model at one input shape in one precision, with its per-round seconds."""

    spec: str
    shape: tuple[int, int, int, int]  # (N, C, H, W)
    precision: str
    params: int = 0
    fwd_flops: float = 0.0  # per image
    train_flops: float = 0.0  # per image, forward + backward
    train_peak: int | None = None
    infer_peak: int | None = None
    seconds: dict[str, Samples] = field(default_factory=lambda: {"train": [], "infer": []})
    others: Samples = field(default_factory=list)  # CPU share other processes used meanwhile

    @property
    def best_infer(self) -> str:
        return "fused" if self.seconds.get("fused") else "infer"


def set_up(spec: str, shape: tuple[int, int, int, int], precisions: list[str]) -> dict:
    """One model's cases (one per precision) and their timed functions: ``{case: {kind: fn}}``."""
    name, kwargs = parse_model(spec)
    n, c, h, w = shape
    torch.manual_seed(0)
    model = create_model(name, in_channels=c, out_channels=1, **kwargs)
    x, y = torch.randn(n, c, h, w), (torch.rand(n, 1, h, w) < 0.22).float()  # ISBI's share
    if spec.endswith(NHWC):
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    params = sum(p.numel() for p in model.parameters())
    fwd, train = (flops_per_image(model, x[:1], train=t) for t in (False, True))
    held = tensor_bytes([*model.parameters(), *model.buffers(), x, y])
    fused = None if spec.startswith(BASELINE) else fuse_conv_bn(model)
    cases = {}
    for precision in precisions:
        case = Case(spec, shape, precision, params, fwd, train)
        fns = {
            "train": make_train_step(model, x, y, precision),
            "infer": make_inference(model, x, precision),
        }
        if fused is not None:
            fns["fused"] = make_inference(fused, x, precision)
            case.seconds["fused"] = []
        fns["train"]()  # warm-up; creates the optimiser state
        if precision == "fp32":
            if (step := allocated_peak_bytes(fns["train"])) is not None:
                optimizer = fns["train"].optimizer  # type: ignore[attr-defined]
                case.train_peak = held + optimizer_state_bytes(optimizer) + step
            model.zero_grad(set_to_none=True)
            fns["infer"]()
            if (infer := allocated_peak_bytes(fns["infer"])) is not None:
                case.infer_peak = held + infer
        for kind, fn in fns.items():
            if kind != "train":
                fn()  # warm-up (oneDNN picks its kernels per precision)
        cases[case] = fns
    return cases


def run(args: argparse.Namespace, shapes: list[tuple[int, int, int, int]]) -> dict:
    fns: dict[Case, dict] = {}
    for shape in shapes:
        for spec in args.models:
            print(f"setting up {spec} at {'×'.join(map(str, shape))} …", flush=True)
            fns.update(set_up(spec, shape, args.precisions))
    conv = ConvPeak()
    peaks: dict[str, Samples] = {p: [] for p in args.precisions}
    loads: Samples = []
    for r in range(args.rounds):
        start, waited = time.perf_counter(), wait_until_quiet(0.1, args.wait)
        loads.append(os.getloadavg()[0])
        for precision in args.precisions:
            peaks[precision].append(statistics.median(conv.gflops(precision, 3)))
        for shape in shapes:
            group = [c for c in fns if c.shape == shape]
            for case in group[r % len(group) :] + group[: r % len(group)]:  # rotate the order
                waited += wait_until_quiet(0.1, args.wait)
                for kind, fn in fns[case].items():
                    samples = time_calls(fn, args.steps)
                    case.seconds[kind].append(statistics.median(s for s, _ in samples))
                    case.others += [o for _, o in samples if o is not None]
        conv_text = ", ".join(f"{p} {v[-1]:.0f}" for p, v in peaks.items())
        print(
            f"round {r + 1}/{args.rounds}: {time.perf_counter() - start:.0f} s ({waited:.0f} s "
            f"waiting), conv peak GFLOP/s {conv_text}, load {loads[-1]:.2f}",
            flush=True,
        )
    loads.append(os.getloadavg()[0])
    return summarise(list(fns), peaks, loads, args)


def stat(values: Samples) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def ratios(num: Samples, den: Samples) -> dict[str, float]:
    """Median and range of the per-round ratios ``num[r] / den[r]``."""
    return stat([a / b for a, b in zip(num, den, strict=True)])


def summarise(cases: list[Case], peaks: dict[str, Samples], loads: Samples, args) -> dict:
    def find(spec: str, case: Case, precision: str) -> Case | None:
        match = (
            c for c in cases if (c.spec, c.shape, c.precision) == (spec, case.shape, precision)
        )
        return next(match, None)

    rows = []
    for case in cases:
        n, base, fp32 = case.shape[0], find(BASELINE, case, case.precision), None
        if case.precision != "fp32":
            fp32 = find(case.spec, case, "fp32")
        train, infer = case.seconds["train"], case.seconds[case.best_infer]
        peak = peaks[case.precision]
        row: dict = {
            "model": case.spec,
            "input": "×".join(map(str, case.shape)),
            "precision": case.precision,
            "params": case.params,
            "fwd_gflops": case.fwd_flops / 1e9,
            "train_gflops": case.train_flops / 1e9,
            "train_img_s": stat([n / s for s in train]),
            "infer_img_s": stat([n / s for s in case.seconds["infer"]]),
            "fused_infer_img_s": stat([n / s for s in case.seconds["fused"]])
            if case.best_infer == "fused"
            else None,
            "train_gflop_s": n * case.train_flops / 1e9 / statistics.median(train),
            "infer_gflop_s": n * case.fwd_flops / 1e9 / statistics.median(infer),
            # per round: achieved ÷ that round's conv peak
            "train_conv_peak": ratios([n * case.train_flops / 1e9 / s for s in train], peak),
            "infer_conv_peak": ratios([n * case.fwd_flops / 1e9 / s for s in infer], peak),
            "train_vs_baseline": ratios(base.seconds["train"], train) if base else None,
            "infer_vs_baseline": ratios(base.seconds["infer"], infer) if base else None,
            "train_vs_fp32": ratios(fp32.seconds["train"], train) if fp32 else None,
            "infer_vs_fp32": ratios(fp32.seconds[fp32.best_infer], infer) if fp32 else None,
            "train_peak_mb": case.train_peak / 2**20 if case.train_peak else None,
            "infer_peak_mb": case.infer_peak / 2**20 if case.infer_peak else None,
            "others_cpu_share": statistics.median(case.others) if case.others else None,
            "seconds": case.seconds,
        }
        rows.append(row)
    return {
        "goals": goals(cases, peaks),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(cpu_native_bf16()),
        "conv_peak_gflop_s": {p: stat(v) for p, v in peaks.items()},
        "conv_peak_samples": peaks,
        "load_average_1min": loads,
        "rounds": args.rounds,
        "steps_per_round": args.steps,
        "default_preset": DEFAULT_PRESET,
        "rows": rows,
    }


def goals(cases: list[Case], peaks: dict[str, Samples]) -> list[dict]:
    """The issue's goals as measured ratios (each a median of per-round ratios, min–max):
    the default DRUNet's training img/s ÷ the float32 baseline's (≥ 3× in the precision ``auto``
    picks) and ÷ the baseline's in the same precision (≥ 2×), its float32 training GFLOP/s ÷
    the float32 conv peak (≥ 50 %), and every model's img/s at the larger batch ÷ at the
    smaller one, per image (≥ 0.75)."""
    auto = select_precision(torch.device("cpu")).name
    by_key = {(c.spec, c.shape, c.precision): c for c in cases}
    rows: list[dict] = []
    for case in cases:
        if case.spec != "drunet":
            continue
        base32 = by_key.get((BASELINE, case.shape, "fp32"))
        base = by_key.get((BASELINE, case.shape, case.precision))
        shape, train = "×".join(map(str, case.shape)), case.seconds["train"]
        label = f"drunet {case.precision}{' (auto)' if case.precision == auto else ''}, {shape}"
        if base32 and case.precision == auto:  # the ≥ 3× goal is for what auto trains in
            rows.append(
                {
                    "goal": f"{label}: train img/s ÷ fp32 baseline's",
                    "target": 3.0,
                    "value": ratios(base32.seconds["train"], train),
                }
            )
        if base:
            rows.append(
                {
                    "goal": f"{label}: train img/s ÷ baseline's in {case.precision}",
                    "target": 2.0,
                    "value": ratios(base.seconds["train"], train),
                }
            )
        if case.precision == "fp32":
            achieved = [case.shape[0] * case.train_flops / 1e9 / s for s in train]
            rows.append(
                {
                    "goal": f"{label}: training share of the fp32 conv peak",
                    "target": 0.5,
                    "value": ratios(achieved, peaks["fp32"]),
                }
            )
    for case in cases:  # per-image speed from the smaller batch to the larger, same model
        smaller = [
            c
            for c in cases
            if (c.spec, c.precision, c.shape[1:]) == (case.spec, case.precision, case.shape[1:])
            and c.shape[0] < case.shape[0]
        ]
        for small in smaller:
            per_image = [
                (case.shape[0] / big) / (small.shape[0] / little)
                for big, little in zip(case.seconds["train"], small.seconds["train"], strict=True)
            ]
            rows.append(
                {
                    "goal": f"{case.spec} {case.precision}: train img/s at batch {case.shape[0]} ÷ "
                    f"at batch {small.shape[0]}",
                    "target": 0.75,
                    "value": stat(per_image),
                }
            )
    return rows


def fmt(value: dict | None, spec: str = ".2f", scale: float = 1.0, unit: str = "") -> str:
    """``median (min–max)`` of a :func:`stat` dict, or ``—``."""
    if value is None:
        return "—"
    lo, mid, hi = (format(value[k] * scale, spec) for k in ("min", "median", "max"))
    return f"{mid}{unit} ({lo}–{hi})"


def markdown(result: dict) -> str:
    conv = ", ".join(
        f"{p} {v['median']:.0f} GFLOP/s ({v['min']:.0f}–{v['max']:.0f})"
        for p, v in result["conv_peak_gflop_s"].items()
    )
    loads = result["load_average_1min"]
    lines = [
        f"Machine: {result['machine']}; {result['date']}.",
        f"Conv peak (3×3, 256→256, 8×64×64, channels-last; median of the rounds): {conv}.",
        f"1-min load average {min(loads):.2f}–{max(loads):.2f} during the run.",
        f"Medians of {result['rounds']} alternating rounds × {result['steps_per_round']} step(s) "
        f"(min–max over rounds in parentheses; ratios are per-round ratios); `drunet` is the "
        f"default preset `{result['default_preset']}`; inference is with BatchNorm folded "
        "where the model has it.",
        "",
        "| model | input N×C×H×W | precision | params (M) | fwd GFLOP/img | train img/s "
        "| train × baseline | train % conv peak | infer img/s | infer × baseline "
        "| infer % conv peak | × fp32 train / infer | peak MB train / infer |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in result["rows"]:
        infer = row["fused_infer_img_s"] or row["infer_img_s"]
        vs_fp32 = "—"
        if row["train_vs_fp32"]:
            vs_fp32 = f"{fmt(row['train_vs_fp32'])} / {fmt(row['infer_vs_fp32'])}"
        memory = "—"
        if row["train_peak_mb"] is not None:
            memory = f"{row['train_peak_mb']:.0f} / {row['infer_peak_mb'] or 0:.0f}"
        lines.append(
            f"| {row['model']} | {row['input']} | {row['precision']} "
            f"| {row['params'] / 1e6:.2f} | {row['fwd_gflops']:.1f} "
            f"| {fmt(row['train_img_s'])} | {fmt(row['train_vs_baseline'])} "
            f"| {fmt(row['train_conv_peak'], '.0f', 100, ' %')} | {fmt(infer)} "
            f"| {fmt(row['infer_vs_baseline'])} "
            f"| {fmt(row['infer_conv_peak'], '.0f', 100, ' %')} | {vs_fp32} | {memory} |"
        )
    if result.get("goals"):
        lines += ["", "| goal | target | measured | met |", "|---|--:|--:|---|"]
        for goal in result["goals"]:
            met = "yes" if goal["value"]["median"] >= goal["target"] else "no"
            lines.append(
                f"| {goal['goal']} | ≥ {goal['target']:.2f} | {fmt(goal['value'])} | {met} |"
            )
    lines += [
        "",
        "Sliding-window overhead, batched folder prediction and onnxruntime: "
        "`benchmarks/bench_inference.py`.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--inputs", nargs="+", default=list(DEFAULT_INPUTS), help="NxCxHxW")
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    parser.add_argument("--rounds", type=int, default=8, help="alternating rounds (≥ 8)")
    parser.add_argument("--steps", type=int, default=1, help="timed calls per case and round")
    parser.add_argument(
        "--wait", type=float, default=0, help="max seconds to wait for other jobs per model"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for models.json/.md")
    parser.add_argument("--name", default="models", help="file stem of the outputs")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if BASELINE not in [s.split(":")[0] for s in args.models]:
        print(f"note: {BASELINE} is not among --models, so the × baseline columns are empty")
    result = run(args, [parse_shape(s) for s in args.inputs])
    table = markdown(result)
    atomic_write_text(args.out / f"{args.name}.json", json.dumps(result, indent=1) + "\n")
    atomic_write_text(args.out / f"{args.name}.md", table)
    print("\n" + table)
    print(f"written: {args.out / args.name}.json, .md")


if __name__ == "__main__":
    main()
