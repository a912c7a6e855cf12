"""Does fusing the SE gate into the residual add pay? Fused vs plain module call, side by side.

``DRBlock`` calls SE as a module, ``x = self.se(x)`` (a product), then adds the shortcut (a sum).
The variant measured against it computes the gate and does ``shortcut + x · gate`` in one
``torch.addcmul`` pass over the feature map. Both run the default preset, ``DRUNet(3, 1,
**PRESETS["drunet_s"])``, with identical weights, on a batch of 4 × 3 × 256 × 256:

  * training step — forward, BCE-with-logits loss, backward, AdamW step (train mode);
  * inference — forward in eval mode under ``torch.inference_mode``.

Each round alternates single steps of the two variants (swapping which goes first), so a busy
moment on the shared machine hits both. Prints per-round medians, then the overall medians, the
ratio fused / plain of the medians and the median of the ratios of steps run back to back
(< 1 means fused is faster), and the load average before and after.

    python benchmarks/bench_se.py                  # 5 rounds of 3 steps each
    python benchmarks/bench_se.py --rounds 7 --steps 5
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
import types
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from drunet.models import PRESETS, DRBlock, DRUNet, SqueezeExcite

BATCH, SIZE = 4, 256


def fused_forward(self: DRBlock, x: torch.Tensor) -> torch.Tensor:
    """``DRBlock.forward`` with SE and the residual add fused by ``torch.addcmul``."""
    shortcut = self.shortcut(x)
    x = self.act1(self.bn1(self.conv1(x)))
    x = self.act2(self.bn2(self.conv2(x)))
    x = self.bn3(self.conv3(x))
    se = self.se
    assert isinstance(se, SqueezeExcite)
    s = x.mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
    gate = torch.sigmoid(se.conv_expand(se.act(se.conv_reduce(s))))
    return self.act3(torch.addcmul(shortcut, x, gate))


def fuse_se(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose DRBlocks run :func:`fused_forward`."""
    fused = copy.deepcopy(model)
    for module in fused.modules():
        if isinstance(module, DRBlock):
            module.forward = types.MethodType(fused_forward, module)  # type: ignore[method-assign]
    return fused


def train_step(model: nn.Module, optimiser: torch.optim.Optimizer) -> Callable[[], None]:
    x = torch.randn(BATCH, 3, SIZE, SIZE)
    y = (torch.rand(BATCH, 1, SIZE, SIZE) > 0.5).float()

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        F.binary_cross_entropy_with_logits(model(x), y).backward()
        optimiser.step()

    return step


def inference(model: nn.Module) -> Callable[[], None]:
    x = torch.randn(BATCH, 3, SIZE, SIZE)

    def step() -> None:
        with torch.inference_mode():
            model(x)

    return step


def seconds_per_step(step: Callable[[], None], steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round and variant")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    cli = parser.parse_args()
    if cli.threads:
        torch.set_num_threads(cli.threads)
    torch.manual_seed(0)
    plain = DRUNet(3, 1, **PRESETS["drunet_s"])
    models = {"plain": plain, "fused": fuse_se(plain)}
    with torch.no_grad():
        check = torch.randn(1, 3, 64, 64)
        torch.testing.assert_close(models["fused"].eval()(check), plain.eval()(check))
    steps: dict[str, dict[str, Callable[[], None]]] = {"train": {}, "infer": {}}
    for name, model in models.items():
        model.train()
        steps["train"][name] = train_step(model, torch.optim.AdamW(model.parameters(), 1e-3))
        steps["infer"][name] = inference(copy.deepcopy(model).eval())
    times: dict[str, dict[str, list[float]]] = {k: {"plain": [], "fused": []} for k in steps}
    load_before = os.getloadavg()
    for kind in steps:  # warm-up: allocator, oneDNN primitive caches
        for step in steps[kind].values():
            seconds_per_step(step, 2)
    for r in range(cli.rounds):
        for kind in steps:
            # Single steps, alternating and swapping the order, so the two variants of a pair
            # run moments apart and a load spike hits both.
            for i in range(cli.steps):
                order = ["plain", "fused"] if (r + i) % 2 == 0 else ["fused", "plain"]
                for name in order:
                    times[kind][name].append(seconds_per_step(steps[kind][name], 1))
        print(
            f"round {r + 1}: "
            + ", ".join(
                f"{k} {n} {statistics.median(times[k][n][-cli.steps :]) * 1e3:.0f} ms"
                for k in steps
                for n in ("plain", "fused")
            )
        )
    load_after = os.getloadavg()
    print(
        f"\nDRUNet drunet_s, batch {BATCH} × 3 × {SIZE} × {SIZE}, {torch.get_num_threads()} threads"
    )
    for kind in steps:
        plain_ms = statistics.median(times[kind]["plain"]) * 1e3
        fused_ms = statistics.median(times[kind]["fused"]) * 1e3
        pairs = zip(times[kind]["fused"], times[kind]["plain"], strict=True)
        ratios = [f / p for f, p in pairs]
        print(
            f"{kind:>5}: plain {plain_ms:7.1f} ms, fused {fused_ms:7.1f} ms, "
            f"ratio of medians fused/plain {fused_ms / plain_ms:.3f}, "
            f"median of paired ratios {statistics.median(ratios):.3f}"
        )
    print(f"load average (1, 5, 15 min): before {load_before}, after {load_after}")


if __name__ == "__main__":
    main()
