"""Atomic file writes: a temporary file in the same folder, then ``os.replace``.

A crash or kill mid-write leaves either the old file or the new one, never half of one. The
temporary is named ``.<name>.drunet-<pid>-<random>.tmp``: unmistakably drunet's, and owned by
the process ``<pid>``, so clean-up removes only what a process that has died left behind —
never a user's ``.notes.tmp``, never the file another drunet process is writing right now.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by their owner only (0o600); give written files the mode a plain
# open() would (0o666 minus the umask). Read once at import: os.umask cannot be queried without
# setting it, which is not thread-safe.
_FILE_MODE = 0o666 & ~_current_umask()
_FOLDER_MODE = 0o777 & ~_current_umask()


log = logging.getLogger(__name__)

TEMP_SUFFIX = ".tmp"
TEMP_MARK = "drunet"
# .<name>.drunet-<pid>-<mkstemp's random letters>.tmp (names may hold any character but "/").
_TEMP_NAME = re.compile(rf"\..*\.{TEMP_MARK}-([1-9][0-9]*)-[a-z0-9_]+\{TEMP_SUFFIX}", re.S)
_NAME_MAX = 255  # bytes in one path component on Linux, macOS and Windows file systems


def _temp_prefix(name: str) -> str:
    """``.<name>.drunet-<pid>-``, ``name`` shortened so that the whole temporary name fits in
    ``_NAME_MAX`` bytes (the final name may still be too long: that error is the caller's)."""
    tag = f".{TEMP_MARK}-{os.getpid()}-"
    room = _NAME_MAX - len(tag) - 1 - 8 - len(TEMP_SUFFIX)  # "." + mkstemp's 8 letters
    encoded = os.fsencode(name)
    if len(encoded) > room:
        name = encoded[:room].decode("utf-8", "ignore") or "x"
    return f".{name}{tag}"


def temporary_owner(name: str) -> int | None:
    """The process id in a drunet temporary file name, or ``None`` if ``name`` is not one."""
    match = _TEMP_NAME.fullmatch(name)
    return int(match.group(1)) if match else None


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one we may not signal counts; Windows: always)."""
    if os.name == "nt":  # os.kill there terminates the process: never clean up by pid
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: alive, another user's
        return True
    return True


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, creating parent folders.

    A failure of the file system (read-only folder, full disk) raises ``OSError`` naming
    ``path``, leaves ``path`` as it was and removes the temporary file.
    """
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        prefix = _temp_prefix(path.name)
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=TEMP_SUFFIX, dir=path.parent)
        if hasattr(os, "fchmod"):  # POSIX only; Windows files have no such permission bits
            os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno is not None:
            # The same OSError subclass (PermissionError, …), naming the file the user asked for.
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise


def file_in_the_way(folder: str | Path) -> Path | None:
    """The existing non-folder at ``folder`` or at one of its parents, which stops the folder
    from being created or used (``None`` when there is none)."""
    for path in (Path(folder), *Path(folder).parents):
        if os.path.lexists(path):
            return None if path.is_dir() else path
    return None


def can_create_files(folder: str | Path) -> bool:
    """Whether a new file can be created in ``folder`` (tried with a temporary, then removed)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix("probe"), suffix=TEMP_SUFFIX, dir=folder)
    except OSError:
        return False
    os.close(fd)
    Path(tmp).unlink(missing_ok=True)
    return True


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files killed drunet processes left in ``folder`` (not recursive).

    Only this module's names (``.<name>.drunet-<pid>-<random>.tmp``) whose process is gone are
    touched: a live process's file may be mid-write. Returns the files removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.iterdir():
        pid = temporary_owner(path.name)
        if pid is None or process_alive(pid):
            continue
        try:
            if path.is_dir() and not path.is_symlink():  # a folder from atomic_output
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:  # another process cleaned it first
            continue
        except OSError as err:  # not ours to delete after all: leave it
            log.warning("could not remove the stale temporary file %s: %s", path, err)
            continue
        removed.append(path)
    return removed


@contextmanager
def atomic_output(path: str | Path, *, folder: bool = False) -> Iterator[Path]:
    """A temporary name beside ``path`` for a file (or, ``folder=True``, a folder) written step
    by step, moved to ``path`` when the block ends without error.

    The temporary has this module's name (``.<name>.drunet-<pid>-<random>.tmp``), so a killed
    writer's half-written output is never mistaken for a finished one and is removed by
    ``remove_stale_temporaries``; an error or interrupt removes it at once. An existing ``path``
    is replaced (an existing folder is moved aside first, then deleted).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = _temp_prefix(path.name)
    if folder:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=TEMP_SUFFIX, dir=path.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=TEMP_SUFFIX, dir=path.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        tmp.chmod(_FOLDER_MODE if folder else _FILE_MODE)
        old: Path | None = None
        if folder and os.path.lexists(path):  # os.replace cannot replace a non-empty folder
            old = Path(tempfile.mkdtemp(prefix=prefix, suffix=TEMP_SUFFIX, dir=path.parent))
            os.replace(path, old / "old")
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file: symlinks, hard links, ``./x`` and ``../d/x`` included.

    When either does not exist (yet), whether both lead to the same place once resolved.
    """
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def append_lines(path: str | Path, lines: list[str]) -> None:
    """Append UTF-8 ``lines`` to ``path`` (created if missing) in one ``O_APPEND`` write.

    Concurrent appenders never interleave within a write on a local file system, and a crash
    leaves at most a last line cut short, which readers skip. A symbolic link at ``path`` is
    refused rather than followed.
    """
    path = Path(path)
    data = "".join(f"{line}\n" for line in lines).encode("utf-8")
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, flags, _FILE_MODE)
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as err:
        if err.errno is None:
            raise
        raise OSError(err.errno, err.strerror, str(path)) from err
