"""Device and precision choices: every branch, CUDA and MPS included, decided on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from drunet import device as dev
from drunet.device import Hardware, Precision, resolve_device, select_precision
from drunet.errors import DrunetError

CPU, CUDA = torch.device("cpu"), torch.device("cuda", 0)


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch):
    """Pretend to have ``gpus`` CUDA devices and/or MPS."""

    def set_up(gpus: int = 0, mps: bool = False) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        monkeypatch.setattr(dev, "_mps_available", lambda: mps)
        monkeypatch.delenv(dev.DEVICE_ENV, raising=False)

    return set_up


@pytest.mark.parametrize(
    ("gpus", "mps", "expected"),
    [(0, False, "cpu"), (0, True, "mps"), (2, False, "cuda:0"), (1, True, "cuda:0")],
)
def test_auto_prefers_cuda_then_mps_then_cpu(machine, gpus, mps, expected) -> None:
    machine(gpus, mps)
    assert resolve_device("auto") == torch.device(expected)
    assert resolve_device(None) == torch.device(expected)  # no DRUNET_DEVICE: auto


def test_explicit_devices_that_exist(machine) -> None:
    machine(gpus=2, mps=True)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("CUDA") == torch.device("cuda")
    assert resolve_device("mps") == torch.device("mps")
    assert resolve_device("cpu") == CPU
    assert resolve_device(torch.device("cpu")) == CPU


@pytest.mark.parametrize(
    ("gpus", "mps", "requested", "available"),
    [
        (0, False, "cuda", "available: cpu (or auto)"),
        (2, False, "cuda:2", "available: cpu, cuda:0, cuda:1 (or auto)"),
        (0, False, "mps", "available: cpu (or auto)"),
        (1, False, "mps", "available: cpu, cuda:0 (or auto)"),
    ],
)
def test_a_missing_device_names_what_is_available(machine, gpus, mps, requested, available):
    machine(gpus, mps)
    with pytest.raises(DrunetError, match=f"--device {requested} is not available") as info:
        resolve_device(requested)
    assert str(info.value).endswith(available)


@pytest.mark.parametrize("text", ["gpu", "cuda:x", "cuda:-1", "", "cpu0"])
def test_a_malformed_device_is_named(machine, text: str) -> None:
    machine()
    with pytest.raises(DrunetError, match="is not a device; use auto, cpu, cuda, cuda:N or mps"):
        resolve_device(text)


def test_the_environment_sets_the_default(machine, monkeypatch) -> None:
    machine(gpus=1)
    monkeypatch.setenv(dev.DEVICE_ENV, "cpu")
    assert resolve_device(None) == CPU
    assert resolve_device("auto") == CUDA  # an explicit choice wins
    monkeypatch.setenv(dev.DEVICE_ENV, "tpu")
    with pytest.raises(DrunetError, match="DRUNET_DEVICE 'tpu' is not a device"):
        resolve_device(None)


# --- precision -------------------------------------------------------------------------------

AMPERE, TURING, VOLTA = Hardware((8, 0)), Hardware((7, 5)), Hardware((7, 0))


@pytest.mark.parametrize(
    ("device", "hardware", "training", "expected"),
    [
        # bf16 only where the GPU runs it natively; T4 (7.5) and V100 (7.0) get fp16 + scaler.
        (CUDA, AMPERE, True, Precision(CUDA, torch.bfloat16, False)),
        (CUDA, TURING, True, Precision(CUDA, torch.float16, True)),
        (CUDA, VOLTA, True, Precision(CUDA, torch.float16, True)),
        (CUDA, TURING, False, Precision(CUDA, torch.float16, False)),  # no scaler to predict
        (CPU, Hardware(), True, Precision(CPU, None, False)),
        (CPU, Hardware(cpu_native_bf16=True), False, Precision(CPU, torch.bfloat16, False)),
        (torch.device("mps"), Hardware(), False, Precision(torch.device("mps"), None, False)),
    ],
)
def test_auto_precision(device, hardware, training, expected) -> None:
    assert select_precision(device, "auto", training=training, hardware=hardware) == expected


@pytest.mark.parametrize(
    ("requested", "dtype", "scaler"),
    [("fp32", None, False), ("fp16", torch.float16, True), ("bf16", torch.bfloat16, False)],
)
def test_explicit_precision(requested, dtype, scaler) -> None:
    chosen = select_precision(CUDA, requested, training=True, hardware=TURING)
    assert (chosen.autocast_dtype, chosen.use_grad_scaler, chosen.name) == (
        dtype,
        scaler,
        requested,
    )
    on_cpu = select_precision(CPU, requested, training=True, hardware=Hardware())
    assert on_cpu.autocast_dtype == dtype and not on_cpu.use_grad_scaler  # scaler: CUDA only


CPUINFO = "processor\t: 0\nflags\t\t: fpu sse avx512f {extra}\nbogomips\t: 4000\n"


@pytest.mark.parametrize(
    ("extra", "native"), [("amx_bf16 amx_tile", True), ("avx512_bf16", True), ("avx2", False)]
)
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, monkeypatch, extra, native) -> None:
    monkeypatch.delenv(dev.CPU_BF16_ENV, raising=False)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO.format(extra=extra))
    assert dev.cpu_native_bf16(cpuinfo) is native
    assert dev.cpu_native_bf16(tmp_path / "missing") is False  # not Linux: no bf16 guess
    for value, expected in (("0", False), ("1", True)):  # the override wins either way
        monkeypatch.setenv(dev.CPU_BF16_ENV, value)
        assert dev.cpu_native_bf16(cpuinfo) is expected
    monkeypatch.setenv(dev.CPU_BF16_ENV, "true")  # a typo is named, not silently ignored
    with pytest.raises(DrunetError, match="DRUNET_CPU_BF16 'true' must be 0"):
        dev.cpu_native_bf16(cpuinfo)


def test_auto_on_a_native_bf16_cpu_trains_and_predicts_in_bf16(monkeypatch) -> None:
    monkeypatch.setenv(dev.CPU_BF16_ENV, "1")
    assert Hardware.of(CPU) == Hardware(cpu_native_bf16=True)
    assert select_precision(CPU, "auto", training=True).name == "bf16"
    monkeypatch.setenv(dev.CPU_BF16_ENV, "0")
    assert select_precision(CPU, "auto").name == "fp32"


def test_an_unknown_precision_is_named() -> None:
    with pytest.raises(DrunetError, match="precision 'fp8'"):
        select_precision(CPU, "fp8")


def test_bf16_masks_agree_with_fp32_on_cpu() -> None:
    """bfloat16 autocast on the CPU: the same mask on at least 99 % of pixels (the tolerance
    the README states), and the probabilities within 0.05."""
    from drunet.checkpoint import build_model
    from drunet.config import config_from_dict
    from drunet.inference import PredictOptions, Predictor

    torch.manual_seed(0)
    config = config_from_dict(
        {
            "model": {"in_channels": 1, "num_classes": 3, "params": {"init_features": 8}},
            "data": {"normalization": {"mean": [0.5], "std": [0.25]}},
        }
    )
    model = build_model(config).eval()
    image = (np.random.default_rng(0).random((96, 80)) * 255).astype(np.uint8)
    fp32 = Predictor(model, config, "cpu", PredictOptions(precision="fp32"))
    bf16 = fp32.with_options(precision="bf16")
    assert bf16.precision.autocast_dtype == torch.bfloat16
    mask32, probs32 = fp32.predict(image, return_probabilities=True)
    mask16, probs16 = bf16.predict(image, return_probabilities=True)
    assert probs16.dtype == np.float32  # the blend and the output stay float32
    assert np.mean(mask32 == mask16) >= 0.99
    assert np.abs(probs32 - probs16).max() < 0.05
    assert np.abs(probs32 - probs16).max() > 0  # bf16 really ran
