"""`drunet train --devices 2` on the CPU: the CLI relaunches itself under torchrun (gloo) and the
run completes on a 6-image dataset whose validation split does not divide across the ranks."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from drunet.datasets import make_synthetic
from tests.conftest import tiny_recipe


@pytest.mark.integration
def test_train_devices_2_completes_on_six_images(tmp_path: Path) -> None:
    data = make_synthetic(tmp_path / "data", num_images=6, sizes=((48, 48), (40, 56)), seed=5)
    config = tmp_path / "tiny.yaml"
    # 6 images at val_fraction 0.5: 3 validation images over 2 ranks (2 and 1).
    recipe = tiny_recipe(data={"layout": {"val_fraction": 0.5}}, train={"epochs": 2})
    config.write_text(yaml.safe_dump(recipe))
    command = [sys.executable, "-m", "drunet", "train", "--devices", "2", "--data", str(data)]
    command += ["--config", str(config), "--runs-dir", str(tmp_path / "runs"), "--name", "ddp"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DRUNET_DEVICE": "cpu"}
    try:
        done = subprocess.run(
            command + ["-q"], env=env, capture_output=True, text=True, timeout=300
        )
    except subprocess.TimeoutExpired as err:  # a hang is a failure, not a stuck suite
        pytest.fail(f"drunet train --devices 2 hung: {err}")
    # torchrun's own report fills the last 3 KB of stderr: the failing rank's message is above
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-8000:]
    assert "Traceback" not in done.stderr
    run = tmp_path / "runs" / "ddp"
    assert {"best.safetensors", "last.safetensors", "state.pt"} <= {p.name for p in run.iterdir()}
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["ddp"]  # rank 1 wrote nothing
