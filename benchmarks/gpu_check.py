"""The GPU path end to end, in a few minutes, for whoever has a CUDA machine.

    python benchmarks/gpu_check.py [--out DIR] [--epochs 3] [--size 256]

Trains a small DRUNet on synthetic data with automatic mixed precision and channels_last,
resumes it for one more epoch, predicts a folder in fp16 and fp32 and in fp16 through
``torch.compile`` (``--compile``; its warm-up call compiles), exports ONNX (parity checked
against PyTorch) and prints a table: training and prediction images/s, peak GPU memory, and how
many mask pixels fp16 and fp32 agree on. On a machine without CUDA it says so and exits 0.
Everything it exercises is covered on the CPU by the test suite's logic tests
(tests/test_device.py, tests/engine/test_gpu_paths.py).
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: a temp dir)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--size", type=int, default=256, help="synthetic image side")
    parser.add_argument(
        "--cpu", action="store_true", help="dry-run the same steps on the CPU (bf16 for fp16)"
    )
    args = parser.parse_args()
    if not args.cpu and not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU is visible on this machine; nothing to check (exit 0).")
        return 0
    out = args.out or Path(tempfile.mkdtemp(prefix="drunet-gpu-check-"))
    device = "cpu" if args.cpu else "cuda"
    rows = run_checks(out, args.epochs, args.size, device)
    width = max(len(name) for name, _ in rows)
    where = "the CPU" if args.cpu else torch.cuda.get_device_name()
    print(f"\ndrunet GPU check on {where} (torch {torch.__version__})")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print(f"\nwork folder: {out}")
    return 0


def _peak_mib(device: str) -> str:
    if device != "cuda":
        return "n/a (CPU)"
    return f"{torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"


def _reset_peak(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def run_checks(out: Path, epochs: int, size: int, device: str) -> list[tuple[str, str]]:
    from drunet import train
    from drunet.config import config_from_dict
    from drunet.datasets import make_synthetic, read_image
    from drunet.engine.train import resume
    from drunet.export import export_run
    from drunet.inference import PredictOptions, Predictor

    data = make_synthetic(out / "data", num_images=48, sizes=((size, size),), seed=0)
    config = config_from_dict(
        {
            "runs_dir": str(out / "runs"),
            "name": "gpu",
            "data": {
                "root": str(data),
                "batch_size": 8,
                "num_workers": 2,
                "augmentation": {"patch_size": min(size, 256)},
            },
            "train": {
                "epochs": epochs,
                "device": device,
                "steps_per_epoch": 20,
            },
        }
    )
    rows: list[tuple[str, str]] = []
    _reset_peak(device)
    result = train(config)
    rows.append(("train: validation Dice", f"{result.best_score:.3f}"))
    rows.append(("train: images/s (last epoch)", f"{_train_rate(result.run_dir):.1f}"))
    rows.append(("train: peak GPU memory", _peak_mib(device)))

    resumed = resume(result.run_dir, epochs=epochs + 1)
    rows.append(("resume: epochs in metrics.csv", str(len(resumed.history))))

    images = sorted((data / "images").iterdir())
    arrays = [read_image(p) for p in images]
    masks = {}
    half = "fp16" if device == "cuda" else "bf16"
    for precision in ("fp32", half, f"{half}+compile"):
        options = PredictOptions(
            precision=precision.split("+")[0], compile=precision.endswith("+compile")
        )
        predictor = Predictor.from_run(result.run_dir, device=device, options=options)
        predictor.predict_batch(arrays[:4])  # warm-up (cuDNN, allocator, the compile)
        _reset_peak(device)
        started = time.perf_counter()
        masks[precision] = [p.mask for p in predictor.predict_batch(arrays)]
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        rows.append((f"predict {precision}: images/s", f"{len(arrays) / seconds:.1f}"))
        rows.append((f"predict {precision}: peak GPU memory", _peak_mib(device)))
    for name, reference in ((half, "fp32"), (f"{half}+compile", half)):
        pairs = zip(masks[name], masks[reference], strict=True)
        agree = float(np.mean([np.mean(a == b) for a, b in pairs]))
        rows.append((f"{name} vs {reference} masks: pixels agreeing", f"{100 * agree:.2f} %"))

    exported = export_run(result.run_dir, out / "model.onnx")
    parity = exported.parity
    rows.append(
        ("export ONNX: max |logit diff|", f"{parity.worst:.2e}" if parity else "not checked")
    )
    return rows


def _train_rate(run_dir: Path) -> float:
    with (run_dir / "metrics.csv").open() as f:
        last = list(csv.DictReader(f))[-1]
    return float(last["samples"]) / max(float(last["train_seconds"]), 1e-9)


if __name__ == "__main__":
    sys.exit(main())
