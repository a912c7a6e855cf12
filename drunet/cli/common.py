"""What every command shares: the consoles, the ``--debug`` switch and user-error handling."""

from __future__ import annotations

import contextlib
import logging
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
  {USER_ERROR_EXIT}    usage or input error (bad flag, missing or unreadable file, invalid config)
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


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn user mistakes into one clear line and exit code 2 (a traceback with ``--debug``)."""
    try:
        yield
    except (DrunetError, ValidationError, ValueError, FileNotFoundError) as err:
        # ValueError and FileNotFoundError from the library name the bad value or file too.
        if state.debug:
            raise
        print_error(str(err))
        raise typer.Exit(USER_ERROR_EXIT) from None
    except OSError as err:
        # The file system refused: a read-only folder, a full disk, a vanished mount.
        if state.debug:
            raise
        where = f"{err.filename}: " if err.filename else ""
        print_error(
            f"cannot write {where}{err.strerror or err} — free some space or choose a writable "
            "folder; files already written are kept"
        )
        raise typer.Exit(USER_ERROR_EXIT) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: files already written are kept")
        raise typer.Exit(INTERRUPTED_EXIT) from None


def print_error(message: str) -> None:
    """One red ``error:`` line; the message is printed as written (no rich markup in paths)."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def print_failures(title: str, failed: dict[Path, str]) -> None:
    """The inputs that failed, one line each, naming the file once."""
    err_console.print(f"[red]{escape(title)}[/]", highlight=False)
    for path, reason in failed.items():
        line = reason if str(path) in reason else f"{path}: {reason}"
        err_console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
