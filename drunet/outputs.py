"""Output ownership, the rule every command follows: drunet never replaces a file it did not write.

``drunet predict`` names its outputs after its inputs (``<stem>_mask.png``, …), names a folder
may already hold for another reason — a ground-truth mask, a user's overlay. Before it writes a
file, drunet appends the file's name to ``<folder>/.drunet-manifest`` (one JSON string per line,
one ``write`` per batch of names with ``O_APPEND``, so concurrent runs never lose each other's
lines). An existing file at an output name is replaced only if its name is in the manifest;
anything else there is foreign and the run refuses before writing anything.

The record is by name: a file drunet wrote that the user later replaced by hand under the same
name counts as drunet's.

Every command that writes into a folder the user names (``predict``, ``evaluate``, ``compare``,
``export``, the HTML reports, ``demo``) claims its output names through :func:`claim_outputs`
before writing: a foreign file at one of them is refused with an :class:`OutputError` naming it,
unless the user passed ``--overwrite``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from drunet.atomic import append_lines, same_file
from drunet.errors import OutputError

MANIFEST = ".drunet-manifest"


class Manifest:
    """The names drunet wrote in ``folder`` (read once; :meth:`record` adds to it)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / MANIFEST
        self.names: set[str] = set()
        self.reload()

    def reload(self) -> None:
        """Read the manifest again (another run may have added names)."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as err:
            raise OSError(err.errno, err.strerror, str(self.path)) from err
        for line in text.splitlines():
            try:
                name = json.loads(line)
            except ValueError:  # a line cut short by a full disk: ignore it
                continue
            if isinstance(name, str):
                self.names.add(name)

    def owns(self, path: Path) -> bool:
        """Whether drunet wrote ``path`` (a file directly in the folder) in this or a past run."""
        return path.name in self.names and same_file(path.parent, self.folder)

    def foreign(self, path: Path) -> bool:
        """Whether ``path`` exists (a file, folder or link) and drunet did not write it."""
        if not os.path.lexists(path) or self.owns(path):
            return False
        self.reload()  # a concurrent run records a name before it writes the file
        return not self.owns(path)

    def record(self, paths: Iterable[Path]) -> None:
        """Claim ``paths`` (in the folder) before writing them; names already there are skipped."""
        new = [p.name for p in paths if p.name not in self.names]
        if not new:
            return
        append_lines(self.path, [json.dumps(name, ensure_ascii=False) for name in new])
        self.names.update(new)


def claim_outputs(
    folder: str | Path, names: Iterable[str | Path], *, overwrite: bool = False
) -> Manifest:
    """Record ``names`` (file names in ``folder``) as drunet's before a command writes them.

    Refuses with :class:`OutputError`, before writing anything, when one of them exists and
    drunet did not write it — unless ``overwrite`` (the commands' ``--overwrite`` flag), which
    claims such files too. Returns the folder's manifest (the folder is created if missing
    and there is a name to record).
    """
    manifest = Manifest(folder)
    paths = _paths(manifest.folder, names)
    if not overwrite:
        for path in paths:
            if manifest.foreign(path):
                raise OutputError(
                    f"{path} exists and drunet did not write it (it is not in {manifest.path}); "
                    "move it away, choose another output folder, or pass --overwrite to "
                    "replace it"
                )
    manifest.record(paths)
    return manifest


def _paths(folder: Path, names: Iterable[str | Path]) -> list[Path]:
    """``folder / name`` for each name; a name must be a plain file name (no folder part)."""
    paths = []
    for name in names:
        path = Path(name)
        if not path.name or path.parent not in (Path("."), folder):
            raise ValueError(f"output name {name!r} is not a file name in {folder}")
        paths.append(folder / path.name)
    return paths
