"""``drunet.atomic``: content lands whole, a failed write leaves the old file and no temp files."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from drunet import atomic
from drunet.atomic import atomic_write_bytes, atomic_write_text


def test_writes_bytes_and_creates_parent_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "data.bin"
    atomic_write_bytes(path, b"\x00\x01\xffhello")
    assert path.read_bytes() == b"\x00\x01\xffhello"
    assert os.listdir(path.parent) == ["data.bin"]


def test_writes_utf8_text_and_replaces_old_content(tmp_path: Path) -> None:
    path = tmp_path / "note.txt"
    path.write_text("a much longer previous content\n", encoding="utf-8")
    atomic_write_text(path, "Zürich µm\n")
    assert path.read_bytes() == "Zürich µm\n".encode()
    assert os.listdir(tmp_path) == ["note.txt"]


def _fail(*args: object, **kwargs: object) -> None:
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("where", ["replace", "fsync"])
def test_failed_write_keeps_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("old: 1\n", encoding="utf-8")
    monkeypatch.setattr(atomic.os, where, _fail)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_text(path, "new: 2\n")
    assert path.read_text(encoding="utf-8") == "old: 1\n"
    assert os.listdir(tmp_path) == ["config.yaml"]


def test_interrupted_write_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(tmp_path / "new.bin", b"data")
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_new_files_get_the_mode_a_plain_write_gives(tmp_path: Path) -> None:
    # mkstemp creates 0o600 files; masks and run files must be as readable as with open().
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic_write_text(tmp_path / "atomic.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    mode = stat.S_IMODE((tmp_path / "atomic.txt").stat().st_mode)
    assert mode == 0o666 & ~umask == stat.S_IMODE(plain.stat().st_mode)


# ---------------------------------------------------------------- temporaries and clean-up


def _temporary_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> str:
    """The temporary file name an atomic write of ``name`` uses."""
    seen: list[str] = []
    real_replace = os.replace

    def replace(src: str, dst: object) -> None:
        seen.append(Path(src).name)
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(atomic.os, "replace", replace)
    atomic_write_bytes(tmp_path / name, b"x")
    monkeypatch.undo()
    return seen[0]


def test_temporary_names_are_drunets_and_name_the_writing_process(tmp_path, monkeypatch) -> None:
    name = _temporary_name(tmp_path, monkeypatch, "a_mask.png")
    assert name.startswith(f".a_mask.png.drunet-{os.getpid()}-") and name.endswith(".tmp")
    assert atomic.temporary_owner(name) == os.getpid()


def test_a_long_name_still_gets_a_temporary_that_fits(tmp_path, monkeypatch) -> None:
    long = "é" * 60 + "a" * 128 + ".png"  # 252 bytes: fits, but not with a suffix added
    name = _temporary_name(tmp_path, monkeypatch, long)
    assert len(os.fsencode(name)) <= 255 and atomic.temporary_owner(name) == os.getpid()
    assert (tmp_path / long).read_bytes() == b"x"


@pytest.mark.parametrize(
    "name",
    [".notes.tmp", ".notes.a.tmp", ".x.png.k3j4h5.tmp", ".x.drunet-ab-k3j.tmp", "x.drunet-1-a.tmp"],
)
def test_clean_up_leaves_names_drunet_does_not_make(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text("mine")
    assert atomic.remove_stale_temporaries(tmp_path) == []
    assert (tmp_path / name).read_text() == "mine"


@pytest.mark.skipif(sys.platform == "win32", reason="liveness by os.kill(pid, 0) is POSIX")
def test_clean_up_removes_a_dead_process_temporary_and_keeps_a_live_ones(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".a_mask.png.drunet-{sleeper.pid}-k3j4h5ab.tmp"
        live.write_bytes(b"being written")
        assert atomic.remove_stale_temporaries(tmp_path) == []
        assert live.exists()  # its writer may rename it any moment
    finally:
        sleeper.kill()
        sleeper.wait()
    assert atomic.remove_stale_temporaries(tmp_path) == [live]  # the writer died mid-write
    assert not live.exists()


def test_a_process_we_may_not_signal_counts_as_alive(tmp_path, monkeypatch) -> None:
    def refuse(pid: int, signal: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(atomic.os, "kill", refuse)
    other = tmp_path / ".a.png.drunet-1-k3j4h5ab.tmp"  # pid 1: another user's process
    other.write_bytes(b"")
    assert atomic.remove_stale_temporaries(tmp_path) == [] and other.exists()
