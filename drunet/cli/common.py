"""What every command shares: the consoles, the ``--debug`` switch and user-error handling."""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from drunet.errors import DrunetError

console = Console()
err_console = Console(stderr=True)


OverwriteOption = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Replace files at the output names that drunet did not write (refused otherwise).",
    ),
]


class State:
    debug = False


state = State()

# Exit codes, distinct and documented in ``drunet --help`` and the README.
DONE_EXIT = 0
PROBLEMS_FOUND_EXIT = 1  # ``drunet verify`` found errors in the data
USER_ERROR_EXIT = 2  # a usage or input error: nothing (more) could be done
PARTIAL_EXIT = 3  # ``predict`` / ``evaluate``: some inputs failed, the others were written
INTERRUPTED_EXIT = 130  # Ctrl-C (128 + SIGINT), as shells report it

EXIT_CODES_HELP = f"""\b
Exit codes:
  {DONE_EXIT}    done
  {PROBLEMS_FOUND_EXIT}    verify found problems in the data
  {USER_ERROR_EXIT}    usage or input error (bad flag, missing or unreadable file, invalid config),
       or out of memory (the message names what to lower)
  {PARTIAL_EXIT}    predict / evaluate: some inputs failed, the others were written
  {INTERRUPTED_EXIT}  interrupted (Ctrl-C); files already written are kept
"""


def setup_logging(debug: bool) -> None:
    level = logging.DEBUG if debug else logging.WARNING
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=debug, show_time=False)],
        force=True,
    )


# What to lower when memory runs out; a command may name its own knobs (user_errors(oom_hint=…)).
OOM_HINT = (
    "lower the batch size (--batch-size, data.batch_size) or the patch, tile or whole-image size "
    "(data.augmentation.patch_size, --tile-size, --max-pixels)"
)
# Out-of-memory messages of the host allocator, oneDNN, CUDA/MPS and threads, lower case.
_OOM_MESSAGES = (
    "out of memory",
    "can't allocate memory",
    "cannot allocate memory",
    "defaultcpuallocator: can't allocate",
    "could not create a primitive",
    "can't start new thread",
)
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # …/drunet


def out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` means memory (or threads) ran out: ``MemoryError``, torch's
    ``OutOfMemoryError`` (CUDA, MPS), a ``RuntimeError`` from an allocator or oneDNN, ``ENOMEM``."""
    if isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError":
        return True
    if isinstance(err, OSError) and err.errno == errno.ENOMEM:
        return True
    if not isinstance(err, RuntimeError):
        return False
    try:
        text = str(err).lower()
    except Exception:  # a message that cannot even be formatted
        return False
    return any(m in text for m in _OOM_MESSAGES)


def oom_message(err: BaseException, hint: str = OOM_HINT) -> str:
    """One line: the step (the innermost drunet function), what ran out, and what to lower."""
    step, tb = "", err.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename.startswith(_PACKAGE) and code.co_filename != __file__:
            module = os.path.relpath(code.co_filename, os.path.dirname(_PACKAGE))
            step = f" in {code.co_name} ({module})"
        tb = tb.tb_next
    try:
        lines = str(err).strip().splitlines()
        detail = lines[0][:160] if lines else ""
    except Exception:
        detail = ""
    what = f"{type(err).__name__}: {detail}" if detail else type(err).__name__
    if "can't start new thread" in detail:
        hint = (
            "lower the threads drunet starts (predict --prefetch 0, data.num_workers 0) or raise "
            "the process's memory or thread limit (ulimit -v, ulimit -u)"
        )
    return f"out of memory{step} ({what}); {hint}, or close other programs"


@contextlib.contextmanager
def user_errors(oom_hint: str = OOM_HINT) -> Iterator[None]:
    """Turn user mistakes and exhausted memory into one clear line and exit code 2 (a traceback
    with ``--debug``). Only drunet's own error types (and pydantic's, for configuration) are
    user mistakes: any other exception is a bug and keeps its traceback. The handler imports
    nothing and cannot raise (printing falls back to a plain write to stderr)."""
    message = None
    try:
        yield
    except (DrunetError, ValidationError, FileNotFoundError) as err:
        # FileNotFoundError from the library names the missing file.
        if state.debug:
            raise
        message = _text(err)
    except OSError as err:
        if state.debug:
            raise
        if out_of_memory(err):
            message = oom_message(err, oom_hint)
        else:  # the file system refused: a read-only folder, a full disk, a vanished mount
            where = f"{err.filename}: " if err.filename else ""
            message = (
                f"cannot write {where}{err.strerror or _text(err)} — free some space or choose a "
                "writable folder; files already written are kept"
            )
    except (MemoryError, RuntimeError) as err:
        if state.debug or not out_of_memory(err):
            raise
        message = oom_message(err, oom_hint)
    except KeyboardInterrupt:
        _print("[yellow]interrupted[/]: files already written are kept", "interrupted")
        raise typer.Exit(INTERRUPTED_EXIT) from None
    # Here, outside the except clauses, the failed work's frames (and their tensors) are freed.
    if message is not None:
        print_error(message)
        raise typer.Exit(USER_ERROR_EXIT)


def _text(err: BaseException) -> str:
    try:
        return str(err)
    except Exception:
        return type(err).__name__


def _print(rich_text: str, plain: str) -> None:
    """Print to stderr through rich; if even that fails (memory ran out), write ``plain``."""
    try:
        err_console.print(rich_text, highlight=False, soft_wrap=True)
    except BaseException:  # the handler must not raise
        with contextlib.suppress(BaseException):
            os.write(2, f"{plain}\n".encode("utf-8", "replace"))


def print_error(message: str) -> None:
    """One red ``error:`` line; the message is printed as written (no rich markup in paths)."""
    _print(f"[bold red]error:[/] {escape(message)}", f"error: {message}")


def _warm_up() -> None:
    """Render one error line now, so that printing one later imports nothing (rich loads its
    emoji table on the first line it renders; an import may fail once memory has run out)."""
    Console(file=io.StringIO()).print(f"[bold red]error:[/] {escape('x :y:')}", highlight=False)


_warm_up()


def print_failures(title: str, failed: dict[Path, str]) -> None:
    """The inputs that failed, one line each, naming the file once."""
    err_console.print(f"[red]{escape(title)}[/]", highlight=False)
    for path, reason in failed.items():
        line = reason if str(path) in reason else f"{path}: {reason}"
        err_console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
