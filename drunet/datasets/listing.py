"""Short lists for messages: the first few names and a count of the rest, runs of integers."""

from __future__ import annotations

from collections.abc import Sequence


def join_limited(
    items: Sequence[object], shown: int = 10, sep: str = ", ", total: int | None = None
) -> str:
    """The first ``shown`` items joined by ``sep``, then ``… and N more`` if some are left.

    ``total`` counts all items when ``items`` holds only the first few (formatting every one
    of thousands of colours would be wasted work).
    """
    listed = items[:shown]
    more = (len(items) if total is None else total) - len(listed)
    return sep.join(str(item) for item in listed) + (f" … and {more} more" if more > 0 else "")


def format_ranges(values: Sequence[int]) -> str:
    """``[0, 2, 3, 4, 7]`` → ``"0, 2-4, 7"`` (a 0/65535 mask would otherwise list 65534 values)."""
    runs: list[list[int]] = []
    for value in values:
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
