"""Why is a bf16 training step of the default DRUNet slower than fp32 on CPU? Variants side by side.

Every variant is one full training step of ``create_model("drunet")`` (the ``drunet_s`` preset,
channels-last) at ``B × 3 × 256 × 256``: forward (under bf16 autocast where named), Dice + BCE
loss in float32 (``DiceCELoss``, as the trainer), backward, fused AdamW. All variants start from the
same weights. A variant name is ``precision[+option…]``:

  * ``fp32`` / ``bf16`` — today's code, float32 or ``torch.autocast("cpu", torch.bfloat16)``;
  * ``+t1`` — ``torch.set_num_threads(1)`` for this variant's steps (else all cores);
  * ``+selin`` — the SE gate's two 1×1 convs on ``(N, C, 1, 1)`` computed as ``F.linear`` on
    ``(N, C)`` with the same weights (no oneDNN convolution, so no conv weight-gradient kernel);
  * ``+cbt1`` — every conv's backward (weight and input gradients) on one thread, the rest of
    the step on all cores (gradient hooks call ``torch.set_num_threads``);
  * ``+bt1`` — the whole backward pass on one thread, forward and optimiser on all cores (what
    the trainer does for bfloat16 on CPU: ``drunet.device.Precision.backward``);
  * ``+mm1x1`` — the blocks' stride-1 1×1 convs (conv1, conv3) of an NHWC input as
    ``F.linear`` over the channel axis (a matmul over ``N·H·W`` rows, same weights).

Rounds run single steps of every variant in turn (the order rotates each round), so a load
spike on the shared machine hits all of them; per round the script prints each variant's time
and its ratio to the first variant of the same batch size (the reference). At the end: medians,
the median and range of the per-round ratios, images/s, minor page faults per step and the load
average before and after.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_train_bf16.py --batch 4 8 \\
        --variants fp32 bf16 bf16+selin --rounds 5
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import statistics
import time
import types
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from drunet.losses import DiceCELoss
from drunet.models import DRBlock, SqueezeExcite, create_model

SIZE = 256
OPTIONS = ("t1", "selin", "mm1x1", "cbt1", "bt1")


def se_linear_forward(self: SqueezeExcite, x: torch.Tensor) -> torch.Tensor:
    """``SqueezeExcite.forward`` with its 1×1 convs on the pooled vector as ``F.linear``."""
    s = x.mean(dim=(2, 3))  # (N, C)
    r, e = self.conv_reduce, self.conv_expand
    s = F.linear(self.act(F.linear(s, r.weight.flatten(1), r.bias)), e.weight.flatten(1), e.bias)
    return x * torch.sigmoid(s)[:, :, None, None]


def conv1x1(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A stride-1 1×1 conv of an NHWC tensor as a matmul over the channel axis."""
    if conv.stride != (1, 1) or not x.is_contiguous(memory_format=torch.channels_last):
        return conv(x)
    y = F.linear(x.permute(0, 2, 3, 1), conv.weight.flatten(1), conv.bias)  # (N, H, W, C_out)
    return y.permute(0, 3, 1, 2)  # (N, C_out, H, W) stored as NHWC


def mm1x1_forward(self: DRBlock, x: torch.Tensor) -> torch.Tensor:
    shortcut = self.shortcut(x)
    x = self.act1(self.bn1(conv1x1(self.conv1, x)))
    x = self.act2(self.bn2(self.conv2(x)))
    x = self.bn3(conv1x1(self.conv3, x))
    return self.act3(self.se(x) + shortcut)


def conv_backward_on_one_thread(model: nn.Module, threads: int) -> None:
    """Gradient hooks: one thread from a conv's output gradient until its weight gradient."""

    def one(grad: torch.Tensor) -> None:
        torch.set_num_threads(1)

    def back(_: torch.Tensor) -> None:
        torch.set_num_threads(threads)

    def on_output(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
        if output.requires_grad:
            output.register_hook(one)

    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            module.register_forward_hook(on_output)
            module.weight.register_post_accumulate_grad_hook(back)


def build(base: nn.Module, options: set[str]) -> nn.Module:
    model = copy.deepcopy(base)
    if "cbt1" in options:
        conv_backward_on_one_thread(model, torch.get_num_threads())
    for module in model.modules():
        if "selin" in options and isinstance(module, SqueezeExcite):
            module.forward = types.MethodType(se_linear_forward, module)  # type: ignore[method-assign]
        if "mm1x1" in options and isinstance(module, DRBlock):
            module.forward = types.MethodType(mm1x1_forward, module)  # type: ignore[method-assign]
    return model


def make_step(
    model: nn.Module, batch: int, precision: str, threads: int, backward_threads: int
) -> Callable[[], None]:
    torch.manual_seed(1)
    x = torch.randn(batch, 3, SIZE, SIZE).contiguous(memory_format=torch.channels_last)
    y = (torch.rand(batch, SIZE, SIZE) < 0.22).long()  # (N, H, W) class indices
    loss_fn = DiceCELoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)  # as the trainer
    dtype = torch.bfloat16

    def step() -> None:
        torch.set_num_threads(threads)
        model.train()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=dtype, enabled=precision == "bf16"):
            logits = model(x)
        loss = loss_fn(logits.float(), y)
        torch.set_num_threads(backward_threads)
        loss.backward()
        torch.set_num_threads(threads)
        optimizer.step()

    return step


def parse_variant(name: str) -> tuple[str, set[str]]:
    precision, *options = name.split("+")
    if precision not in ("fp32", "bf16") or not set(options) <= set(OPTIONS):
        raise SystemExit(f"variant {name!r}: expected fp32|bf16 followed by +{'|+'.join(OPTIONS)}")
    return precision, set(options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--variants", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--check", action="store_true", help="check outputs agree, then exit")
    cli = parser.parse_args()
    all_threads = torch.get_num_threads()
    torch.manual_seed(0)
    base = create_model("drunet", in_channels=3, out_channels=1)
    if cli.check:
        x = torch.randn(2, 3, 64, 64)
        ref = base.eval()(x)
        for option in ("selin", "mm1x1"):
            torch.testing.assert_close(build(base, {option}).eval()(x), ref)
        print("variants agree with today's model in eval mode")
        return
    steps: dict[tuple[int, str], Callable[[], None]] = {}
    for batch in cli.batch:
        for name in cli.variants:
            precision, options = parse_variant(name)
            threads = 1 if "t1" in options else all_threads
            backward = 1 if "bt1" in options else threads
            model = build(base, options)
            steps[batch, name] = make_step(model, batch, precision, threads, backward)
    for step in steps.values():  # warm-up: allocator, oneDNN primitive caches
        step()
    times: dict[tuple[int, str], list[float]] = {key: [] for key in steps}
    faults: dict[tuple[int, str], list[int]] = {key: [] for key in steps}
    load_before = os.getloadavg()
    keys = list(steps)
    for r in range(cli.rounds):
        shift = r % len(keys)
        for key in keys[shift:] + keys[:shift]:
            minflt = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            steps[key]()
            times[key].append(time.perf_counter() - start)
            faults[key].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - minflt)
        print(
            f"round {r + 1} (load {os.getloadavg()[0]:.2f}): "
            + ", ".join(f"b{b} {n} {times[b, n][-1] * 1e3:.0f} ms" for b, n in keys),
            flush=True,
        )
    load_after = os.getloadavg()
    torch.set_num_threads(all_threads)
    print(f"\ndrunet (drunet_s, NHWC), {SIZE}×{SIZE}, {all_threads} threads, {cli.rounds} rounds")
    for batch in cli.batch:
        ref = cli.variants[0]
        for name in cli.variants:
            ratios = [t / r for t, r in zip(times[batch, name], times[batch, ref], strict=True)]
            median = statistics.median(times[batch, name])
            print(
                f"  batch {batch} {name:18s} median {median * 1e3:7.0f} ms  "
                f"{batch / median:6.2f} img/s  ratio to {ref} {statistics.median(ratios):.2f} "
                f"[{min(ratios):.2f}–{max(ratios):.2f}]  "
                f"minor faults/step {statistics.median(faults[batch, name]):.0f}"
            )
    print(f"load average (1, 5, 15 min): before {load_before}, after {load_after}")


if __name__ == "__main__":
    main()
