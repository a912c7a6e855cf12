"""The benchmarks' own arithmetic: conv FLOPs, the native-bf16 flag, per-round ratios, and a tiny
bench_models run end to end (writes its JSON and table)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_models  # noqa: E402
import conv_peak  # noqa: E402


def test_conv_flops_are_two_per_multiply_add() -> None:
    shape = conv_peak.ConvShape(batch=2, channels=4, size=5)
    assert shape.flops == 2 * 2 * 4 * 5 * 5 * 4 * 9


@pytest.mark.parametrize(
    ("flags", "native"),
    [("fpu avx2 avx512f", False), ("fpu avx512f avx512_bf16", True), ("amx_bf16 amx_tile", True)],
)
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path: Path, flags: str, native: bool) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    assert conv_peak.cpu_native_bf16(cpuinfo) is native
    assert conv_peak.cpu_native_bf16(tmp_path / "missing") is False


def test_conv_peak_runs_in_both_precisions() -> None:
    peak = conv_peak.ConvPeak(conv_peak.ConvShape(batch=1, channels=8, size=8))
    assert peak.supported("fp32") and all(g > 0 for g in peak.gflops("fp32", 2))


def test_ratios_are_per_round() -> None:
    assert bench_models.ratios([2.0, 6.0, 3.0], [1.0, 2.0, 3.0]) == {
        "median": 2.0,
        "min": 1.0,
        "max": 3.0,
    }


@pytest.mark.slow
def test_bench_models_end_to_end(tmp_path: Path) -> None:
    args = ["--models", "drunet:init_features=4,depth=2", "unet_resnet34", "--inputs", "2x1x64x64"]
    args += ["--rounds", "2", "--out", str(tmp_path), "--name", "smoke"]
    subprocess.run(
        [sys.executable, "bench_models.py", *args], cwd=BENCHMARKS, check=True, timeout=600
    )
    result = json.loads((tmp_path / "smoke.json").read_text())
    assert {r["precision"] for r in result["rows"]} == {"fp32", "bf16"}
    assert set(result["conv_peak_gflop_s"]) == {"fp32", "bf16"}
    assert "% conv peak" in (tmp_path / "smoke.md").read_text()
