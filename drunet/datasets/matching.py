"""Matching two sets of files by name: the one rule behind image/mask pairs, nnU-Net cases and
``drunet evaluate --pred/--truth``.

Every file answers to one or more names (its stem by default; a prediction ``a_mask.png`` also
answers to ``a``). A file on the left and a file on the right are partners when they share a
name, and a match is kept only when it is one to one: the left file has exactly one candidate
on the right and that file no other candidate on the left. Everything else is listed, never
guessed:

* ``missing``: a left file no right file answers to;
* ``extra``: a right file no left file answers to;
* ``ambiguous``: a file with two or more candidates on the other side, with those candidates.

``first_wins`` is the lenient rule of training folders: of the files of one side that share a
name (``a.png`` and ``a.tif``) the first in sorted order is kept and the others are listed as
``duplicates`` (kept, also found), so the pair still forms; ``discover`` turns them into
problems.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

Names = Callable[[Path], Sequence[str]]


def files_in(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """The files directly in ``folder`` whose suffix (any case) is one of ``suffixes``, hidden
    files left out, sorted: what every matching starts from."""
    return sorted(
        path
        for path in folder.iterdir()
        if not path.name.startswith(".") and path.suffix.lower() in suffixes and path.is_file()
    )


def stem(path: Path) -> tuple[str]:
    """The default rule: a file answers to its stem (``a.png`` → ``a``)."""
    return (path.stem,)


@dataclass(frozen=True)
class Ambiguity:
    """``path`` could be matched with every file of ``candidates`` (two or more)."""

    path: Path
    candidates: tuple[Path, ...]


@dataclass
class NameMatch:
    """What :func:`match_files` found. ``pairs`` are ``(left, right)``, sorted by the left
    file's first name; the lists are sorted by their file's first name."""

    pairs: list[tuple[Path, Path]] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)
    extra: list[Path] = field(default_factory=list)
    ambiguous: list[Ambiguity] = field(default_factory=list)
    duplicates: list[tuple[Path, Path]] = field(default_factory=list)  # (kept, also found)

    @property
    def partner(self) -> dict[Path, Path]:
        """Each matched left file's right file."""
        return dict(self.pairs)


def match_files(
    left: Iterable[Path],
    right: Iterable[Path],
    left_names: Names = stem,
    right_names: Names = stem,
    first_wins: bool = False,
) -> NameMatch:
    """Pair ``left`` with ``right`` files by name (see the module docstring)."""
    found = NameMatch()
    lefts = _keep(sorted(left), left_names, first_wins, found.duplicates)
    rights = _keep(sorted(right), right_names, first_wins, found.duplicates)
    on_right: dict[str, list[Path]] = {}
    for path in rights:
        for name in dict.fromkeys(right_names(path)):
            on_right.setdefault(name, []).append(path)
    candidates = {path: _union(on_right.get(n, []) for n in left_names(path)) for path in lefts}
    claimants: dict[Path, list[Path]] = {path: [] for path in rights}
    for path, others in candidates.items():
        for other in others:
            claimants[other].append(path)
    for path in sorted(lefts, key=lambda p: left_names(p)[0]):
        others = candidates[path]
        if not others:
            found.missing.append(path)
        elif len(others) > 1:
            found.ambiguous.append(Ambiguity(path, tuple(others)))
        elif claimants[others[0]] == [path]:
            found.pairs.append((path, others[0]))
    for path in sorted(rights, key=lambda p: right_names(p)[0]):
        if not claimants[path]:
            found.extra.append(path)
        elif len(claimants[path]) > 1:
            found.ambiguous.append(Ambiguity(path, tuple(claimants[path])))
    return found


def _keep(
    paths: list[Path], names: Names, first_wins: bool, duplicates: list[tuple[Path, Path]]
) -> list[Path]:
    """``paths``, without the later files of a shared name when ``first_wins``."""
    if not first_wins:
        return paths
    seen: dict[str, Path] = {}
    kept = []
    for path in paths:
        first = next((seen[n] for n in names(path) if n in seen), None)
        if first is not None:
            duplicates.append((first, path))
            continue
        seen.update(dict.fromkeys(names(path), path))
        kept.append(path)
    return kept


def _union(groups: Iterable[list[Path]]) -> list[Path]:
    return list(dict.fromkeys(path for group in groups for path in group))
