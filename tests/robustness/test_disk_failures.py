"""A full disk or a read-only folder, simulated: a clear message, exit 2, nothing lost.

The file system's refusal is injected where every drunet write passes (``os.fsync`` /
``tempfile.mkstemp`` inside :mod:`drunet.atomic`), so the real error path runs: the temporary
file is removed, the target keeps its previous content, the CLI names the file.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from drunet import atomic
from drunet.checkpoint import load_model
from drunet.datasets import read_image
from tests.robustness.conftest import assert_user_error, invoke

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="needs /proc to see which file is being written"
)


def refuse_writes(monkeypatch, when, error: int = errno.ENOSPC) -> list[str]:
    """Make ``os.fsync`` fail with ``error`` for files whose name makes ``when(name)`` true."""
    real_fsync, refused = os.fsync, []

    def fsync(fd: int) -> None:
        name = Path(os.readlink(f"/proc/self/fd/{fd}")).name
        if when(name):
            refused.append(name)
            raise OSError(error, os.strerror(error))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return refused


def refuse_temporary_files(monkeypatch) -> None:
    """A read-only folder: creating the temporary file of an atomic write is refused."""

    def mkstemp(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), kwargs.get("dir"))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", mkstemp)


def no_temporaries(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(atomic.TEMP_SUFFIX)]


def test_disk_full_during_predict_keeps_finished_outputs(
    trained_run, images, tmp_path, monkeypatch
):
    out = tmp_path / "out"
    names = sorted(p.stem for p in images.iterdir())
    # The disk fills up while the third image's mask is being written.
    refused = refuse_writes(monkeypatch, lambda name: name.startswith(f".{names[2]}_mask"))
    result = invoke("predict", images, "--model", trained_run, "--out", out)
    assert_user_error(result, f"{names[2]}_mask.png", "No space left on device")
    assert refused and no_temporaries(out)
    finished = {p: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert {p.name for p in finished} >= {f"{n}_mask.png" for n in names[:2]}
    for path in finished:
        assert read_image(path).size > 0  # every file there is whole
    assert not (out / f"{names[2]}_mask.png").exists()

    monkeypatch.undo()  # space was freed
    result = invoke("predict", images, "--model", trained_run, "--out", out, "--continue")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*_mask.png")) == [f"{n}_mask.png" for n in names]
    for path, mtime in finished.items():
        if path.name.endswith("_mask.png"):  # a finished input is not predicted again
            assert path.stat().st_mtime_ns == mtime, path


def test_disk_full_during_training_keeps_the_last_good_checkpoint(
    trained_run, tmp_path, monkeypatch
):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    refuse_writes(monkeypatch, lambda name: name.startswith(".last.safetensors"))
    result = invoke("train", "--resume", run, "--epochs", "4")
    assert_user_error(result, "last.safetensors", "No space left on device")
    assert no_temporaries(run)
    assert (run / "last.safetensors").read_bytes() == before["last.safetensors"]
    load_model(run / "last.safetensors")  # still loadable
    assert (run / "state.pt").read_bytes() == before["state.pt"]  # resume point unchanged

    monkeypatch.undo()
    result = invoke("train", "--resume", run, "--epochs", "3")
    assert result.exit_code == 0, result.output
    epochs = [line.split(",")[0] for line in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert epochs == ["1", "2", "3"]


def test_read_only_output_folder_for_predict(trained_run, images, tmp_path, monkeypatch) -> None:
    # Root ignores permission bits, so the refusal is injected where the temporary file is made.
    refuse_temporary_files(monkeypatch)
    out = tmp_path / "locked"
    result = invoke("predict", images, "--model", trained_run, "--out", out)
    assert_user_error(result, "Permission denied", "locked/000_", "writable folder")


def test_read_only_runs_folder_for_training(trained_run, tmp_path, monkeypatch) -> None:
    data = trained_run.parent.parent / "data"
    recipe = trained_run / "config.yaml"
    refuse_temporary_files(monkeypatch)
    result = invoke("train", "--data", data, "--config", recipe, "--runs-dir", tmp_path / "runs")
    assert_user_error(result, "Permission denied", "writable folder")


def test_stale_temporaries_of_a_killed_predict_are_cleaned(trained_run, images, tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    dead = 2**22 + 1  # above Linux's pid_max: no such process
    stale = out / f".000_mask.png.drunet-{dead}-k3j4h5ab.tmp"  # a kill -9 mid-write leaves this
    stale.write_bytes(b"\x89PNG half")
    keep = out / ".notes.tmp"  # not a name drunet makes: left alone
    keep.write_text("mine")
    result = invoke("predict", images, "--model", trained_run, "--out", out)
    assert result.exit_code == 0, result.output
    assert not stale.exists() and keep.exists()
