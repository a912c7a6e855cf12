"""Temporary files and per-file write errors: clean-up deletes only what a dead drunet process
left, two runs on one folder do not undo each other, one unwritable output fails one input."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from drunet import atomic
from drunet.cli.common import PARTIAL_EXIT
from drunet.datasets import write_image
from tests.robustness.conftest import assert_user_error, invoke

POSIX = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="needs /proc to see which file is being written"
)


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(atomic.TEMP_SUFFIX)]


def masks(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*_mask.png"))


def test_a_users_tmp_files_survive_predict(trained_run, images, tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    mine = [out / ".notes.tmp", out / ".000_mask.png.k3j4h5.tmp", out / ".x.drunet-a-b.tmp"]
    for path in mine:
        path.write_text("mine")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True,
                          capture_output=True, check=True).stdout.strip()  # fmt: skip
    stale = out / f".000_mask.png.drunet-{dead}-k3j4h5ab.tmp"  # a killed drunet's leftover
    stale.write_bytes(b"\x89PNG half")
    result = invoke("predict", images, "--model", trained_run, "--out", out)
    assert result.exit_code == 0, result.output
    assert all(p.read_text() == "mine" for p in mine) and not stale.exists()


def test_an_output_name_too_long_fails_that_input_only(trained_run, images, tmp_path) -> None:
    long = images / ("a" * 250 + ".png")  # a valid name; "<stem>_overlay.png" is not
    write_image(long, np.zeros((40, 40), np.uint8))
    out = tmp_path / "out"
    result = invoke("predict", images, "--model", trained_run, "--out", out)
    assert result.exit_code == PARTIAL_EXIT, result.output
    assert "Traceback" not in result.output and "1 input(s) failed" in result.output
    assert "a" * 250 in result.output and "File name too long" in result.output
    assert "free some space" not in result.output
    assert masks(out) == [f"{i:03d}_mask.png" for i in range(5)]  # the others are written
    assert not temporaries(out)


@POSIX
def test_one_unwritable_output_fails_that_input_only(
    trained_run, images, tmp_path, monkeypatch
) -> None:
    # An output name the folder will not take (an undeletable file in a sticky folder, say);
    # the folder itself is writable. Injected at the rename, where such a refusal happens.
    real_replace = os.replace

    def replace(src, dst) -> None:
        if Path(dst).name == "002_mask.png":
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    out = tmp_path / "out"
    result = invoke("predict", images, "--model", trained_run, "--out", out)
    assert result.exit_code == PARTIAL_EXIT, result.output
    assert "Traceback" not in result.output and "1 input(s) failed" in result.output
    assert "002_mask.png" in result.output and "Operation not permitted" in result.output
    assert masks(out) == ["000_mask.png", "001_mask.png", "003_mask.png", "004_mask.png"]
    assert not temporaries(out)


# A `python -m drunet` that stops in its first fsync of a temporary file (a write in flight)
# until the file named by $RELEASE exists.
PAUSED = textwrap.dedent(
    """
    import os, pathlib, runpy, time
    real_fsync, release = os.fsync, pathlib.Path(os.environ["RELEASE"])
    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp"):
            deadline = time.monotonic() + 60
            while not release.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        real_fsync(fd)
    os.fsync = fsync
    runpy.run_module("drunet", run_name="__main__")
    """
)


@POSIX
@pytest.mark.integration
def test_two_continue_runs_on_one_folder_both_complete(trained_run, images, tmp_path) -> None:
    out, release = tmp_path / "out", tmp_path / "release"
    args = ["predict", str(images), "--model", str(trained_run), "--out", str(out), "--continue"]
    first = subprocess.Popen(
        [sys.executable, "-c", PAUSED, *args],
        env={**os.environ, "RELEASE": str(release)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (out.is_dir() and temporaries(out)):  # the first run is mid-write
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()[0]
            time.sleep(0.05)
        second = subprocess.run(
            [sys.executable, "-m", "drunet", *args], capture_output=True, text=True, timeout=120
        )
        assert second.returncode == 0, second.stdout + second.stderr
    finally:
        release.touch()
        output = first.communicate(timeout=120)[0]
    assert first.returncode == 0, output  # its temporary was not deleted under it
    assert masks(out) == [f"{i:03d}_mask.png" for i in range(5)]
    assert not temporaries(out)


def test_a_read_only_folder_still_stops_the_run(trained_run, images, tmp_path, monkeypatch) -> None:
    # The folder refuses every new file: one message, not one failure per input.
    def mkstemp(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), kwargs.get("dir"))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", mkstemp)
    result = invoke("predict", images, "--model", trained_run, "--out", tmp_path / "locked")
    assert_user_error(result, "Permission denied", "writable folder")
    assert "input(s) failed" not in result.output
