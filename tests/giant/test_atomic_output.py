"""atomic_output: a giant output appears under its name only when complete."""

from __future__ import annotations

import os

import pytest

from drunet.atomic import atomic_output, remove_stale_temporaries, temporary_owner


def test_a_file_appears_only_when_the_block_ends(tmp_path):
    path = tmp_path / "mask.tif"
    with atomic_output(path) as tmp:
        tmp.write_bytes(b"half")
        assert not path.exists()
        assert temporary_owner(tmp.name) == os.getpid()
    assert path.read_bytes() == b"half"
    assert os.listdir(tmp_path) == ["mask.tif"]


def test_an_error_removes_the_temporary_and_keeps_the_old_output(tmp_path):
    path = tmp_path / "mask.zarr"
    path.mkdir()
    (path / "old").write_text("finished")
    with pytest.raises(RuntimeError, match="killed"), atomic_output(path, folder=True) as tmp:
        (tmp / "new").write_text("half")
        raise RuntimeError("killed")
    assert os.listdir(tmp_path) == ["mask.zarr"]
    assert os.listdir(path) == ["old"]
    with atomic_output(path, folder=True) as tmp:  # a finished folder replaces the old one
        (tmp / "new").write_text("finished")
    assert os.listdir(path) == ["new"]
    assert sorted(os.listdir(tmp_path)) == ["mask.zarr"]


def test_a_dead_writers_temporary_folder_is_removed(tmp_path):
    dead = tmp_path / ".mask.zarr.drunet-999999999-abcd1234.tmp"  # no such process
    (dead / "0").mkdir(parents=True)
    alive = tmp_path / f".other.zarr.drunet-{os.getpid()}-abcd1234.tmp"
    alive.mkdir()
    assert remove_stale_temporaries(tmp_path) == [dead]
    assert os.listdir(tmp_path) == [alive.name]
