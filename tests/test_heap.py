"""``keep_freed_memory``: a large tensor freed and made again is not faulted in again."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

# Runs in a fresh process: the setting is process-wide and cannot be undone.
SCRIPT = """
import json, resource, torch
from drunet.heap import keep_freed_memory

def faults_of_64_mib_tensors():
    # A 64 MiB float32 tensor made, used and freed, as a training step's feature maps are.
    # The first ones may grow the heap: blocks freed below a small live one do not merge with
    # the heap's top, so the heap settles after a few (4-6 here); the faults of the next 3 count.
    for _ in range(12):
        torch.ones(16 * 2**20).sum()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        torch.ones(16 * 2**20).sum()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

default = faults_of_64_mib_tensors()
kept = keep_freed_memory()
print(json.dumps({"default": default, "kept": kept, "after": faults_of_64_mib_tensors(),
                  "again": keep_freed_memory()}))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_a_freed_large_tensor_is_reused_instead_of_faulted_in_again() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    # 64 MiB in 4 KiB pages is 16,384 faults: glibc maps each such block afresh by default.
    assert result["default"] > 3 * 15_000
    assert result["kept"] is True and result["again"] is True
    assert result["after"] < 200


def test_the_trainer_keeps_freed_memory_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from drunet.config import ExperimentConfig
    from drunet.engine import prepare

    calls: list[int] = []
    monkeypatch.setattr(prepare, "keep_freed_memory", lambda: calls.append(1) or True)
    import torch

    for flag in ("benchmark", "deterministic"):  # the CUDA call sets them: restored after
        monkeypatch.setattr(torch.backends.cudnn, flag, getattr(torch.backends.cudnn, flag))
    prepare._configure_backends(ExperimentConfig().train, torch.device("cpu"))
    assert calls == [1]
    prepare._configure_backends(ExperimentConfig().train, torch.device("cuda"))  # GPU: heap as is
    assert calls == [1]


def test_drunet_keep_heap_0_leaves_the_c_library_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from drunet import heap

    calls: list[int] = []
    monkeypatch.setattr(heap, "_set_once", lambda: calls.append(1) or True)
    monkeypatch.setenv(heap.HEAP_ENV, "0")
    assert heap.keep_freed_memory() is False and calls == []
    monkeypatch.setenv(heap.HEAP_ENV, " 1 ")
    assert heap.keep_freed_memory() is True and calls == [1]


@pytest.mark.parametrize("value", ["yes", "true", "2", "off"])
def test_a_malformed_drunet_keep_heap_is_an_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    from drunet import heap
    from drunet.errors import DrunetError

    monkeypatch.setenv(heap.HEAP_ENV, value)
    with pytest.raises(DrunetError, match=f"DRUNET_KEEP_HEAP '{value}' must be 1 .* or 0"):
        heap.keep_freed_memory()


def test_the_predictor_keeps_freed_memory_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from drunet.checkpoint import build_model
    from drunet.config import config_from_dict
    from drunet.inference import predictor

    calls: list[int] = []
    monkeypatch.setattr(predictor, "keep_freed_memory", lambda: calls.append(1) or True)
    config = config_from_dict(
        {
            "model": {"name": "drunet", "in_channels": 1, "num_classes": 2},
            "data": {"normalization": {"mean": [0.5], "std": [0.25]}},
        }
    )
    predictor.Predictor(build_model(config), config, device="cpu")
    assert calls == [1]
