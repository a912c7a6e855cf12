"""Device and precision choice: CPU is float32; CUDA picks bfloat16, or float16 with a scaler."""

from __future__ import annotations

import pytest
import torch

from drunet.engine.device import Precision, select_device, select_precision
from drunet.errors import DrunetError

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("amp", [True, False])
def test_cpu_trains_in_float32(amp: bool) -> None:
    assert select_precision(CPU, amp=amp) == Precision(CPU, None, False)
    assert select_precision(CPU, amp=amp, bf16_supported=True).autocast_dtype is None


def test_cuda_with_bfloat16_needs_no_scaler() -> None:
    assert select_precision(CUDA, amp=True, bf16_supported=True) == Precision(
        CUDA, torch.bfloat16, False
    )


def test_cuda_without_bfloat16_uses_float16_and_a_scaler() -> None:
    assert select_precision(CUDA, amp=True, bf16_supported=False) == Precision(
        CUDA, torch.float16, True
    )


@pytest.mark.parametrize("bf16", [True, False])
def test_cuda_without_amp_is_float32(bf16: bool) -> None:
    assert select_precision(CUDA, amp=False, bf16_supported=bf16) == Precision(CUDA, None, False)


def test_float32_autocast_is_a_no_op() -> None:
    precision = select_precision(CPU, amp=True)
    layer = torch.nn.Linear(3, 2)
    with precision.autocast():
        out = layer(torch.ones(1, 3))
    assert out.dtype == torch.float32


def test_bfloat16_autocast_changes_the_matmul_dtype_on_cpu() -> None:
    # The same Precision object drives CUDA; on CPU its autocast context is observable too.
    precision = Precision(CPU, torch.bfloat16, False)
    with precision.autocast():
        out = torch.nn.Linear(3, 2)(torch.ones(1, 3))
    assert out.dtype == torch.bfloat16


def test_select_device_cpu_and_auto() -> None:
    assert select_device("cpu") == CPU
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert select_device("auto").type == expected
    assert select_device().type == expected


def test_asking_for_cuda_without_a_gpu_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DrunetError, match="train.device is 'cuda'"):
        select_device("cuda")
    assert select_device("auto") == CPU
