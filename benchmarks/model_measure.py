"""Measurements behind ``bench_models.py``: step timings, FLOPs and peak memory.

Everything here runs on the CPU, the way ``drunet train`` runs without a GPU: in float32, or
with ``precision="bf16"`` under ``torch.autocast("cpu", dtype=torch.bfloat16)`` as
``--precision bf16`` does (the loss and the optimiser stay in float32). The yardstick the
achieved GFLOP/s are divided by is the conv peak of ``conv_peak.py``.
"""

from __future__ import annotations

import ast
import contextlib
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from drunet.heap import keep_freed_memory
from drunet.models import model_names

NHWC = "@channels_last"  # spec suffix: model and batch in NHWC, as model.params.channels_last does


def autocast(precision: str) -> contextlib.AbstractContextManager[object]:
    """``fp32``: nothing; ``bf16``: CPU autocast to bfloat16."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision != "bf16":
        raise ValueError(f"precision {precision!r}: expected fp32 or bf16")
    return torch.autocast("cpu", dtype=torch.bfloat16)


def make_train_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, precision: str = "fp32"
) -> Callable[[], None]:
    """One training step as the trainer does it on CPU: forward (under ``precision``), BCE loss
    in float32, backward, fused AdamW — with glibc keeping freed memory, as training and the
    Predictor set it on the CPU (``drunet.heap``)."""
    keep_freed_memory()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

    def step() -> None:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        with autocast(precision):
            out = model(x)
        F.binary_cross_entropy_with_logits(out.float(), y).backward()
        optimizer.step()

    step.optimizer = optimizer  # type: ignore[attr-defined]  # for the memory accounting
    return step


def make_inference(
    model: nn.Module, x: torch.Tensor, precision: str = "fp32"
) -> Callable[[], None]:
    """One batched forward pass in eval mode without autograd (prediction's inner loop), with
    freed memory kept as the Predictor keeps it on the CPU."""
    keep_freed_memory()

    def infer() -> None:
        model.eval()
        with torch.inference_mode(), autocast(precision):
            model(x)

    return infer


def _machine_busy_seconds() -> float | None:
    """CPU seconds all processes have spent busy since boot (Linux ``/proc/stat``), else None."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / _CLOCK_TICKS


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def others_share(seconds: float, busy: float | None, own: float) -> float | None:
    """Share of the machine's CPUs other processes used since ``(busy, own)`` were read."""
    busy_after = _machine_busy_seconds()
    if busy is None or busy_after is None or seconds <= 0:
        return None
    foreign = (busy_after - busy) - (_own_cpu_seconds() - own)
    return max(0.0, foreign) / (seconds * (os.cpu_count() or 1))


def wait_until_quiet(threshold: float, timeout: float, poll: float = 1.0) -> float:
    """Sleep until other processes use less than ``threshold`` of the CPUs for ``poll`` seconds
    (at most ``timeout`` seconds); returns the seconds waited."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        busy, own = _machine_busy_seconds(), _own_cpu_seconds()
        time.sleep(poll)
        share = others_share(poll, busy, own)
        if share is None or share < threshold:
            break
    return time.perf_counter() - start


def time_calls(
    fn: Callable[[], None], calls: int, threshold: float = 0.1, retries: int = 0
) -> list[tuple[float, float | None]]:
    """``(seconds, others)`` of ``calls`` calls of ``fn``.

    ``others`` is the share of the machine's CPUs that *other* processes kept busy during the
    call (0 on a quiet machine; ``None`` where ``/proc/stat`` is not available), so steps slowed
    by someone else's job can be told apart from the model's own speed. Up to ``retries`` extra
    calls replace calls during which ``others`` exceeded ``threshold``.
    """
    samples: list[tuple[float, float | None]] = []
    quiet = 0
    while quiet < calls and len(samples) < calls + retries:
        busy, own = _machine_busy_seconds(), _own_cpu_seconds()
        start = time.perf_counter()
        fn()
        seconds = time.perf_counter() - start
        others = others_share(seconds, busy, own)
        samples.append((seconds, others))
        quiet += others is None or others <= threshold
    return samples


def flops_per_image(model: nn.Module, x: torch.Tensor, train: bool) -> float:
    """FLOPs per image counted by ``torch.utils.flop_counter`` (a multiply-add is 2 FLOPs).

    ``train=False``: the eval forward pass. ``train=True``: forward and backward of the loss
    (the optimiser's element-wise update is not counted).
    """
    model.train(train)
    with FlopCounterMode(display=False) as counter:
        if train:
            out = model(x)
            F.binary_cross_entropy_with_logits(out, torch.zeros_like(out)).backward()
        else:
            with torch.no_grad():
                model(x)
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / x.shape[0]


def tensor_bytes(tensors: Iterable[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    return tensor_bytes(
        v for state in optimizer.state.values() for v in state.values() if torch.is_tensor(v)
    )


def allocated_peak_bytes(fn: Callable[[], None]) -> int | None:
    """Most bytes held by the PyTorch CPU allocator during ``fn()``, above what was held before.

    Read from the profiler's allocation events, which carry the allocator's running total since
    profiling started. ``None`` when this PyTorch's profiler does not expose them (the event tree
    is not a public API). Memory that oneDNN allocates on its own is not seen.
    """
    try:
        from torch._C._profiler import _EventType
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
        peak, stack = 0, list(prof.profiler.kineto_results.experimental_event_tree())
        while stack:
            event = stack.pop()
            stack.extend(event.children)
            if event.tag == _EventType.Allocation:
                peak = max(peak, event.extra_fields.total_allocated)
        return peak
    except (ImportError, AttributeError, RuntimeError):
        return None


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


def machine(native_bf16: bool) -> str:
    cpu = "CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, native bf16 {'yes' if native_bf16 else 'no'}, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}"
    )
