"""Device and precision choices, written once so CPU tests exercise the same logic as CUDA."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Precision:
    """How a forward pass runs: autocast dtype (None = float32) and whether to scale the loss."""

    device: torch.device
    autocast_dtype: torch.dtype | None
    use_grad_scaler: bool

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)


def select_device(requested: str = "auto") -> torch.device:
    """``auto`` → CUDA when present, else CPU; asking for CUDA without one is an error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        from drunet.errors import DrunetError

        raise DrunetError("train.device is 'cuda' but no CUDA GPU is visible; use 'auto' or 'cpu'")
    return torch.device(requested)


def select_precision(
    device: torch.device,
    amp: bool,
    bf16_supported: bool | None = None,
    cpu_bf16: bool = False,
) -> Precision:
    """Mixed precision on CUDA only: bfloat16 where the GPU supports it (no scaler needed, same
    exponent range as float32), else float16 with a GradScaler against underflow. CPU: float32.
    ``bf16_supported`` is injectable so tests can cover both CUDA branches on CPU.
    ``cpu_bf16`` opts in to bfloat16 autocast on CPU."""
    if device.type == "cpu" and cpu_bf16:
        return Precision(device, torch.bfloat16, False)
    if device.type != "cuda" or not amp:
        return Precision(device, None, False)
    if bf16_supported is None:
        bf16_supported = torch.cuda.is_bf16_supported()
    if bf16_supported:
        return Precision(device, torch.bfloat16, False)
    return Precision(device, torch.float16, True)
