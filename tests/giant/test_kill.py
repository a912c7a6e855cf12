"""A streamed ``drunet predict`` killed with SIGKILL continues with ``--continue`` from its last
finished rows, and its mask equals an uninterrupted run's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from drunet.giant.journal import Journal, partial_folder
from tests.giant.test_cli import loaded, tiled_tiff, weights  # noqa: F401 - the fixture
from tests.giant.test_stream import textured

pytestmark = pytest.mark.integration


def test_a_killed_run_continues_from_its_last_finished_rows(tmp_path: Path, weights: Path) -> None:  # noqa: F811
    image = textured(1600, 480)
    source = tiled_tiff(tmp_path / "scan.tif", image)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "drunet", "predict", str(source), "--model", str(weights)]
    command += ["--out", str(out), "--stream", "--max-pixels", "0", "--precision", "fp32"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path.cwd())}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    mask = out / "scan_mask.tif"
    journal = Journal(mask, {})
    deadline = time.monotonic() + 120
    while journal.done_rows() < 300 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = journal.done_rows()
    assert 300 <= done < 1600 and not mask.exists()
    finished = subprocess.run([*command, "--continue"], env=env, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    assert f"continued from row {done}" in finished.stdout
    assert np.array_equal(tifffile.imread(mask), loaded(weights, max_pixels=0).predict(image))
    assert not partial_folder(mask).exists()
