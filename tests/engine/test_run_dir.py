"""Run folders: never reused, automatic names are unique, the latest run and weights are found."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from drunet.checkpoint import BEST, LAST, latest_run, resolve_weights
from drunet.engine import run_folder as runs
from drunet.engine.run_folder import create_run_dir
from drunet.errors import DrunetError


def test_explicit_name_creates_an_empty_folder(tmp_path: Path) -> None:
    path = create_run_dir(tmp_path / "runs", "exp1", "drunet")
    assert path == tmp_path / "runs" / "exp1"
    assert path.is_dir() and list(path.iterdir()) == []


def test_existing_explicit_name_is_refused_and_left_untouched(tmp_path: Path) -> None:
    existing = tmp_path / "exp1"
    existing.mkdir()
    (existing / BEST).write_bytes(b"precious weights")
    (existing / "metrics.csv").write_text("epoch\n1\n")
    with pytest.raises(DrunetError, match="already exists") as info:
        create_run_dir(tmp_path, "exp1", "drunet")
    assert str(existing) in str(info.value)
    assert sorted(p.name for p in existing.iterdir()) == [BEST, "metrics.csv"]
    assert (existing / BEST).read_bytes() == b"precious weights"
    assert (existing / "metrics.csv").read_text() == "epoch\n1\n"


@pytest.mark.parametrize("name", ["a/b", "../escape", "/abs", "", "."])
def test_names_that_are_not_plain_folder_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(DrunetError, match="plain folder name"):
        create_run_dir(tmp_path / "runs", name, "drunet")
    assert not (tmp_path / "runs").exists()


def test_two_automatic_names_in_the_same_second_differ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs.time, "strftime", lambda fmt: "20240102-030405")
    first = create_run_dir(tmp_path, None, "drunet")
    second = create_run_dir(tmp_path, None, "drunet")
    third = create_run_dir(tmp_path, None, "drunet")
    assert [first.name, second.name, third.name] == [
        "20240102-030405-drunet",
        "20240102-030405-drunet-2",
        "20240102-030405-drunet-3",
    ]
    assert all(p.is_dir() for p in (first, second, third))


def test_automatic_name_uses_the_real_clock_and_model(tmp_path: Path) -> None:
    a = create_run_dir(tmp_path, None, "unet_resnet34")
    b = create_run_dir(tmp_path, None, "unet_resnet34")
    assert a != b
    assert a.name.endswith("-unet_resnet34")
    date, clock = a.name.split("-")[:2]
    assert len(date) == 8 and date.isdigit() and len(clock) == 6 and clock.isdigit()


def _run(root: Path, name: str, mtime: float | None, best: bool = True) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / LAST).write_bytes(b"last")
    if best:
        (path / BEST).write_bytes(b"best")
    if mtime is not None:
        for item in (path / BEST, path / LAST, path):
            if item.exists():
                os.utime(item, (mtime, mtime))
    return path


def test_latest_run_is_the_most_recent_with_best_weights(tmp_path: Path) -> None:
    base = 1_700_000_000
    _run(tmp_path, "a-old", base)
    newest = _run(tmp_path, "b-new", base + 200)
    _run(tmp_path, "c-middle", base + 100)
    _run(tmp_path, "d-newer-but-unfinished", base + 300, best=False)
    (tmp_path / "stray-file.txt").write_text("x")
    assert latest_run(tmp_path) == newest


def test_latest_run_follows_the_mtimes_not_the_names(tmp_path: Path) -> None:
    base = 1_700_000_000
    first = _run(tmp_path, "z", base + 50)
    _run(tmp_path, "a", base)
    assert latest_run(tmp_path) == first


@pytest.mark.parametrize("make", [False, True], ids=["missing-folder", "no-finished-run"])
def test_latest_run_without_runs_explains_what_to_do(tmp_path: Path, make: bool) -> None:
    runs_dir = tmp_path / "runs"
    if make:
        _run(runs_dir, "unfinished", None, best=False)
    with pytest.raises(DrunetError) as info:
        latest_run(runs_dir)
    message = str(info.value)
    assert str(runs_dir) in message and BEST in message
    assert "drunet train" in message and "--model" in message


def test_resolve_weights_of_a_run_folder_prefers_best(tmp_path: Path) -> None:
    run = _run(tmp_path, "r", None)
    assert resolve_weights(run) == run / BEST
    assert resolve_weights(str(run)) == run / BEST


def test_resolve_weights_of_a_run_folder_falls_back_to_last(tmp_path: Path) -> None:
    run = _run(tmp_path, "r", None, best=False)
    assert resolve_weights(run) == run / LAST


def test_resolve_weights_of_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DrunetError, match=f"holds no {BEST}, {LAST} or model.safetensors"):
        resolve_weights(tmp_path / "empty")


def test_resolve_weights_of_a_file_is_the_file(tmp_path: Path) -> None:
    path = tmp_path / "exported.safetensors"
    path.write_bytes(b"x")
    assert resolve_weights(path) == path


def test_resolve_weights_of_a_missing_path_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here"
    with pytest.raises(DrunetError, match="no such run folder or weights file") as info:
        resolve_weights(missing)
    assert str(missing) in str(info.value)


def test_resolve_weights_none_means_the_latest_run(tmp_path: Path) -> None:
    _run(tmp_path, "old", 1_700_000_000)
    new = _run(tmp_path, "new", 1_700_000_100)
    assert resolve_weights(None, runs_dir=tmp_path) == new / BEST
