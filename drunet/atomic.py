"""Atomic file writes: a temporary file in the same folder, then ``os.replace``.

A crash or kill mid-write leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by their owner only (0o600); give written files the mode a plain
# open() would (0o666 minus the umask). Read once at import: os.umask cannot be queried without
# setting it, which is not thread-safe.
_FILE_MODE = 0o666 & ~_current_umask()


TEMP_SUFFIX = ".tmp"


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, creating parent folders.

    A failure of the file system (read-only folder, full disk) raises ``OSError`` naming
    ``path``, leaves ``path`` as it was and removes the temporary file.
    """
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
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


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files a killed atomic write left in ``folder`` (not recursive).

    Only names this module creates (``.<name>.<random>.tmp``) are touched. Returns them.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [
        p
        for p in folder.iterdir()
        if p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX) and p.name.count(".") >= 3
    ]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))
