"""Output ownership, the rule every command follows: drunet never replaces a file it did not write.

``drunet predict`` names its outputs after its inputs (``<stem>_mask.png``, …), names a folder
may already hold for another reason — a ground-truth mask, a user's overlay. Before it writes a
file, drunet appends the file's name to ``<folder>/.drunet-manifest`` (one JSON string per line,
one ``write`` per batch of names with ``O_APPEND``, so concurrent runs never lose each other's
lines). An existing file at an output name is replaced only if its name is in the manifest;
anything else there is foreign and the run refuses before writing anything.

The record is by name: a file drunet wrote that the user later replaced by hand under the same
name counts as drunet's. A name is relative to the folder: ``a_mask.png``, or
``data/images/000.png`` for a command that writes a tree (``demo``), so one manifest at the top
covers it.

Every command that writes into a folder the user names (``predict``, ``evaluate``, ``compare``,
``export``, the HTML reports, ``demo``) claims its output names through :func:`claim_outputs`
before writing (:func:`check_outputs` first when a long step comes before the writes): a foreign
file at one of them is refused with an :class:`OutputError` naming it, unless the user passed
``--overwrite``.
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

    def name(self, path: Path) -> str:
        """``path``'s name in the manifest: relative to the folder (``data/images/000.png``), or
        its last part when it is not spelt under the folder."""
        try:
            return path.relative_to(self.folder).as_posix()
        except ValueError:
            return path.name

    def owns(self, path: Path) -> bool:
        """Whether drunet wrote ``path`` (in the folder or, by its relative name, below it) in
        this or a past run."""
        name = self.name(path)
        if "/" in name:
            return name in self.names
        return name in self.names and same_file(path.parent, self.folder)

    def foreign(self, path: Path) -> bool:
        """Whether ``path`` exists (a file, folder or link) and drunet did not write it."""
        if not os.path.lexists(path) or self.owns(path):
            return False
        self.reload()  # a concurrent run records a name before it writes the file
        return not self.owns(path)

    def record(self, paths: Iterable[Path]) -> None:
        """Claim ``paths`` (in the folder) before writing them; names already there are skipped."""
        new = list(dict.fromkeys(n for n in map(self.name, paths) if n not in self.names))
        if not new:
            return
        append_lines(self.path, [json.dumps(name, ensure_ascii=False) for name in new])
        self.names.update(new)


def check_outputs(
    folder: str | Path, names: Iterable[str | Path], *, overwrite: bool = False
) -> Manifest:
    """Refuse with :class:`OutputError`, writing nothing, when one of ``names`` (file names in
    ``folder``) exists and drunet did not write it — unless ``overwrite`` (the commands'
    ``--overwrite`` flag). Returns the folder's manifest. A command that must refuse before a
    long step (training, an export's parity check) calls this first, then :func:`claim_outputs`
    just before it writes."""
    manifest = Manifest(folder)
    if not overwrite:
        for path in _paths(manifest.folder, names):
            if manifest.foreign(path):
                raise OutputError(
                    f"{path} exists and drunet did not write it (it is not in {manifest.path}); "
                    "move it away, choose another --out, or pass --overwrite to replace it"
                )
    return manifest


def claim_outputs(
    folder: str | Path, names: Iterable[str | Path], *, overwrite: bool = False
) -> Manifest:
    """Record ``names`` (file names in ``folder``) as drunet's before a command writes them,
    after :func:`check_outputs` (a foreign file is refused unless ``overwrite``, which claims it
    too). Returns the folder's manifest (the folder is created if missing and there is a name to
    record)."""
    names = list(names)
    manifest = check_outputs(folder, names, overwrite=overwrite)
    manifest.record(_paths(manifest.folder, names))
    return manifest


def _paths(folder: Path, names: Iterable[str | Path]) -> list[Path]:
    """``folder / name`` for each name: a path below ``folder`` (``folder/x`` or ``x``; a path
    spelt from ``folder`` is taken as such)."""
    paths = []
    for name in names:
        parts = Path(name).parts
        if parts[: len(folder.parts)] == folder.parts:
            parts = parts[len(folder.parts) :]
        outside = Path(name).is_absolute() and parts == Path(name).parts
        if not parts or outside or ".." in parts:
            raise ValueError(f"output name {name!r} is not a path below {folder}")
        paths.append(folder.joinpath(*parts))
    return paths
