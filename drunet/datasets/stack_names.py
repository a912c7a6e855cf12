"""Several stacks stored as numbered 2D files in one folder (``data.layout.stack``).

``cellA_z0.png, cellA_z1.png, …, cellB_z0.png, …`` are the slices of stacks ``cellA`` and
``cellB`` under the pattern ``"{name}_z{index}"``: ``{index}`` (exactly one) is the slice's
number, ``{name}`` (at most one) the stack's name; everything else is literal text. The pattern
is matched against a whole file stem; ``{index}`` takes digits only, ``{name}`` at least one
character (the shortest that lets the rest match, so ``a_z1_z3`` is slice 3 of stack ``a_z1``).
Without ``{name}`` every matching file of the folder is a slice of one stack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_EXAMPLE = 'e.g. "{name}_z{index}" for cellA_z0.png, cellA_z1.png, …, cellB_z0.png'


@dataclass(frozen=True)
class NumberedSlice:
    """Slice ``index`` of stack ``stack`` (``""`` when ``pattern`` has no ``{name}``)."""

    pattern: str
    stack: str
    index: int

    @property
    def volume(self) -> str:
        """The stack's name for scores and splits: ``stack``, or for a pattern without
        ``{name}`` the pattern with ``*`` for the index (the folder is one stack)."""
        return self.stack or self.pattern.replace("{index}", "*")


def check_stack_pattern(pattern: str) -> str:
    """Return ``pattern`` when it has exactly one ``{index}``, at most one ``{name}`` and no
    other placeholder; else a ``ValueError`` naming ``data.layout.stack`` and the fix."""
    found = _PLACEHOLDER.findall(pattern)
    unknown = sorted({f"{{{p}}}" for p in found if p not in ("name", "index")})
    problem = None
    if unknown:
        problem = f"has unknown placeholder(s) {', '.join(unknown)}; only {{name}} and {{index}}"
    elif found.count("index") != 1:
        problem = f"needs exactly one {{index}} (the slice number), found {found.count('index')}"
    elif found.count("name") > 1:
        problem = f"may hold {{name}} (the stack) once, found {found.count('name')}"
    elif "{" in _PLACEHOLDER.sub("", pattern) or "}" in _PLACEHOLDER.sub("", pattern):
        problem = "has an unmatched brace"
    if problem is not None:
        raise ValueError(f"data.layout.stack {pattern!r} {problem}; {_EXAMPLE}")
    return pattern


@lru_cache(maxsize=32)
def _regex(pattern: str) -> re.Pattern[str]:
    parts = []
    position = 0
    for match in _PLACEHOLDER.finditer(pattern):
        parts.append(re.escape(pattern[position : match.start()]))
        parts.append("(?P<name>.+?)" if match.group(1) == "name" else "(?P<index>[0-9]+)")
        position = match.end()
    parts.append(re.escape(pattern[position:]))
    return re.compile("".join(parts))


def match_slice(stem: str, pattern: str) -> NumberedSlice | None:
    """The stack and slice index a file ``stem`` names under ``pattern``, or ``None`` when it
    does not match."""
    match = _regex(check_stack_pattern(pattern)).fullmatch(stem)
    if match is None:
        return None
    name = match.group("name") if "name" in match.groupdict() else ""
    return NumberedSlice(pattern, name, int(match.group("index")))
