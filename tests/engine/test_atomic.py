"""``drunet.atomic``: content lands whole, a failed write leaves the old file and no temp files."""

from __future__ import annotations

import os
import stat
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
