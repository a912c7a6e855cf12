"""A 10 000 × 10 000 grayscale image through ``drunet predict`` on a CPU (slow: ``-m slow``).

Run in a child process so its peak memory is measured alone. Budget: the image (100 MB), its
normalised copy (400 MB, plus about 800 MB of temporaries while normalising), the blend's sum and
weights (800 MB), the mask (100 MB) and the overlay (300 MB) — a few GB, far below 24 GB.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from drunet.checkpoint import build_model, save_weights
from drunet.config import config_from_dict
from drunet.datasets import read_mask, write_image
from tests.conftest import TINY_PARAMS

SIDE = 10_000
PEAK_LIMIT_GB = 6.0


@pytest.mark.slow
def test_a_10k_grayscale_image_predicts_within_a_few_gigabytes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = config_from_dict(
        {
            "model": {
                "in_channels": 1,
                "num_classes": 2,
                "params": TINY_PARAMS,
            },
            "data": {
                "normalization": {"mean": [0.5], "std": [0.25], "clip_percentiles": None},
                "augmentation": {"patch_size": 256},
            },
        }
    )
    save_weights(tmp_path / "run" / "best.safetensors", build_model(config), config)
    rows, cols = np.ogrid[0:SIDE, 0:SIDE]
    write_image(tmp_path / "big.png", ((rows // 7 + cols // 5) % 256).astype(np.uint8))

    start = time.perf_counter()
    command = [sys.executable, "-c", "from drunet.cli.main import main; main()"]
    args = ["predict", str(tmp_path / "big.png"), "--model", str(tmp_path / "run")]
    done = subprocess.run(
        [*command, *args, "--out", str(tmp_path / "out")], capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    # The largest child so far: this test's is the only big one in the session.
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2  # KiB → GiB
    assert done.returncode == 0, done.stderr
    print(f"10k × 10k: {seconds:.0f} s, peak RSS {peak_gb:.2f} GB")  # shown with pytest -s
    assert peak_gb < PEAK_LIMIT_GB
    mask = read_mask(tmp_path / "out" / "big_mask.png")
    assert mask.shape == (SIDE, SIDE)
