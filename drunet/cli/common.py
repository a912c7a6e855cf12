"""What every command shares: the consoles, the ``--debug`` switch and user-error handling."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.logging import RichHandler

from drunet.errors import DrunetError

console = Console()
err_console = Console(stderr=True)


class State:
    debug = False


state = State()

USER_ERROR_EXIT = 2


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
        err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        raise typer.Exit(USER_ERROR_EXIT) from None
    except OSError as err:
        # The file system refused: a read-only folder, a full disk, a vanished mount.
        if state.debug:
            raise
        where = f"{err.filename}: " if err.filename else ""
        err_console.print(
            f"[bold red]error:[/] cannot write {where}{err.strerror or err} — free some space or "
            "choose a writable folder; files already written are kept",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(USER_ERROR_EXIT) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: files already written are kept")
        raise typer.Exit(130) from None
