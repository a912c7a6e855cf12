"""Issue 25, class 4: exhausted memory is one line naming the step and what to lower; the error
handler imports nothing and cannot raise; a bug is never shown as a user error."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import typer

from drunet import bounds
from drunet.cli import common
from drunet.cli.common import USER_ERROR_EXIT, out_of_memory, user_errors
from drunet.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

OOM_FORMS = [
    MemoryError(),
    torch.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total)"
    ),
    RuntimeError("could not create a primitive"),
    RuntimeError(
        "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
        "you tried to allocate 1099511627776 bytes. Error code 12 (Cannot allocate memory)"
    ),
    RuntimeError("MPS backend out of memory (MPS allocated: 8.00 GB)"),
    OSError(errno.ENOMEM, "Cannot allocate memory"),
]


@pytest.fixture
def fail_with(monkeypatch):
    """Make ``drunet.bounds.batch_pixel_bound`` (a drunet step) fail with ``err``."""

    def setup(err: BaseException) -> None:
        def raise_it() -> int:
            raise err

        monkeypatch.setattr(bounds, "machine_memory", raise_it)

    return setup


def handled(err: BaseException, fail_with) -> int:
    fail_with(err)
    with pytest.raises(typer.Exit) as exit_info, user_errors():
        bounds.batch_pixel_bound()
    return exit_info.value.exit_code


@pytest.mark.parametrize("err", OOM_FORMS, ids=lambda e: type(e).__name__)
def test_every_out_of_memory_form_is_one_line(err, capsys, fail_with) -> None:
    assert out_of_memory(err)
    before = set(sys.modules)
    assert handled(err, fail_with) == USER_ERROR_EXIT
    assert set(sys.modules) == before  # the handler imported nothing
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: out of memory in batch_pixel_bound (drunet/bounds.py) (")
    assert "lower the batch size" in lines[0] and "Traceback" not in lines[0]


def test_threads_that_cannot_start_name_the_thread_knobs(capsys, fail_with) -> None:
    assert handled(RuntimeError("can't start new thread"), fail_with) == USER_ERROR_EXIT
    assert "--prefetch 0, data.num_workers 0" in capsys.readouterr().err


def test_the_handler_cannot_raise_when_printing_fails(monkeypatch, capfd, fail_with) -> None:
    def broken(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(common.err_console, "print", broken)
    assert handled(MemoryError(), fail_with) == USER_ERROR_EXIT
    err = capfd.readouterr().err
    assert err.startswith("error: out of memory in batch_pixel_bound") and err.count("\n") == 1


@pytest.mark.parametrize(
    "err", [ValueError("a bug in drunet"), TypeError("a bug"), RuntimeError("shapes differ")]
)
def test_a_programming_error_is_not_a_user_error(err, fail_with) -> None:
    fail_with(err)
    with pytest.raises(type(err)), user_errors():
        bounds.batch_pixel_bound()


def test_drunet_errors_stay_user_errors(capsys, fail_with) -> None:
    assert handled(ConfigError("data.batch_size is too large; lower it"), fail_with) == 2
    assert capsys.readouterr().err == "error: data.batch_size is too large; lower it\n"


LIMITED = """
import resource, runpy, sys
limit = int(sys.argv.pop(1))
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
sys.argv[0] = "drunet"
runpy.run_module("drunet", run_name="__main__")
"""


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS is enforced on Linux")
def test_predict_under_an_address_space_limit_prints_one_line(
    trained_run, images, tmp_path
) -> None:
    """The issue's trial: ``ulimit -v 4000000`` and a plain ``drunet predict`` of small images."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "300"}
    args = [sys.executable, "-c", LIMITED, str(4_000_000 * 1024), "predict", str(images)]
    args += ["--model", str(trained_run), "--out", str(tmp_path / "out")]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert "Traceback" not in done.stderr, done.stderr
    if done.returncode != 0:  # on this machine: threads cannot start within 4 GB
        assert done.returncode == USER_ERROR_EXIT, done.stderr
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and errors[0].startswith("error: out of memory in "), done.stderr
