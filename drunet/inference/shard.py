"""``drunet predict --shard I/N``: split a folder between N jobs, each input in exactly one.

Shard ``I`` takes the inputs whose index in the sorted list is ``I`` modulo ``N``, so N jobs on
N machines (same folder, same ``--out`` or not) cover it once, with no coordination; every shard
gets an even share of any run of large or small images.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from drunet.errors import DrunetError
from drunet.inference.slice_files import split_series
from drunet.inference.stack_files import split_stacks

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` → ``(I, N)`` with ``0 <= I < N``; anything else is a one-line error."""
    match = _SHARD.fullmatch(text)
    if match is None:
        raise DrunetError(
            f"--shard {text!r} is not I/N; e.g. --shard 0/4 is the first of 4 shards "
            "(run 0/4, 1/4, 2/4 and 3/4 to cover the inputs)"
        )
    index, count = int(match[1]), int(match[2])
    if count < 1 or index >= count:
        last = f"{count - 1}/{count}" if count >= 1 else "N-1/N"
        raise DrunetError(f"--shard {text}: need 0 <= I < N (the shards are 0/{count} to {last})")
    return index, count


def select_shard(inputs: Sequence[Path], index: int, count: int) -> list[Path]:
    """The inputs of shard ``index`` of ``count``: every ``count``-th of the sorted list."""
    return [path for i, path in enumerate(sorted(inputs)) if i % count == index]


def prediction_units(
    files: list[Path], context: bool, pattern: str | None = None
) -> list[list[Path]]:
    """The inputs as the units ``--shard`` keeps together: for a 2.5D context model a series of
    numbered slices (grouped by ``pattern``, the run's ``data.layout.stack``, when set) is one
    unit (its slices need each other), else every file is its own."""
    if not context:
        return [[path] for path in files]
    stacks, rest = split_stacks(files, context=True)
    series, others = split_series(rest, pattern)
    return [[path] for path in stacks] + series + [[path] for path in others]
