"""Plain Markdown tables: what the console prints when it is not a terminal (a log file keeps
every digit and name whole, where a rich table would cut cells to fit a guessed width)."""

from __future__ import annotations

from collections.abc import Sequence


def markdown(rows: Sequence[dict[str, str]], titles: Sequence[str] | None = None) -> str:
    """``rows`` of text cells as a Markdown table; the columns are ``titles`` or every key seen.

    A ``|`` inside a cell is escaped so that names cannot break the table.
    """
    if titles is None:
        titles = list(dict.fromkeys(t for row in rows for t in row))

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    lines = [line(titles), "|" + "---|" * len(titles)]
    lines += [line([row.get(t, "") for t in titles]) for row in rows]
    return "\n".join(lines) + "\n"
