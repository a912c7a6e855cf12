"""Per-stack scores of an evaluation: a stack's slice counts summed, then scored.

A stack (a multi-page TIFF read as slices, or numbered 2D files named by ``data.layout.stack``)
is scored like the whole set is: its slices' tp /
fp / fn are summed per class and Dice, IoU, precision and recall come from those sums (the
empty rule of :mod:`drunet.metrics`). So a stack's Dice is *not* the mean of its slices' Dice:
a slice with little foreground weighs little. Its ``mean`` is the foreground classes' average
(``macro`` on the stack's slices). HD95 is not given per stack: a volume's surface distance is
not a reduction of the slices' 2D ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from drunet.datasets import Pair
from drunet.metrics import Stats, reduce_stats, scores_from_counts

SCORES = ("dice", "iou", "precision", "recall")
COUNTS = ("tp", "fp", "fn")


@dataclass(frozen=True)
class StackScores:
    """One stack: how many slices were scored, per-class counts and scores, foreground mean."""

    name: str
    slices: int
    counts: dict[str, list[int]]  # tp / fp / fn per class, summed over the slices
    per_class: dict[str, list[float]]  # dice / iou / precision / recall per class
    mean: dict[str, float]  # the foreground classes' average of each score


def stack_slice(pair: Pair) -> tuple[str | None, int | None]:
    """``(stack, slice)`` of a pair: a multi-page TIFF's case and page, a numbered slice's stack
    (for a pattern without ``{name}``, the pattern with ``*`` for the index: the folder is one
    stack) and index, or ``(None, None)`` for a 2D image."""
    if pair.page is not None:
        return pair.case, pair.page
    if pair.numbered is not None:
        return pair.numbered.volume, pair.numbered.index
    return None, None


def stack_scores(
    stats: Stats, stacks: Sequence[str | None], foreground: Sequence[int]
) -> list[StackScores]:
    """Scores of every stack named in ``stacks`` (one entry per row of ``stats``; None for an
    image that is no stack slice), sorted by name."""
    rows: dict[str, list[int]] = {}
    for i, stack in enumerate(stacks):
        if stack is not None:
            rows.setdefault(stack, []).append(i)
    results = []
    for name in sorted(rows):
        index = torch.tensor(rows[name])
        part = Stats(*(s[index] for s in stats))
        tp, fp, fn = (s.sum(0) for s in part[:3])
        per_class = scores_from_counts(tp, fp, fn)
        mean = reduce_stats(part, "macro", foreground)
        results.append(
            StackScores(
                name,
                len(rows[name]),
                {k: [int(v) for v in s] for k, s in zip(COUNTS, (tp, fp, fn), strict=True)},
                {k: [float(v) for v in per_class[k]] for k in SCORES},
                {k: float(mean[k]) for k in SCORES},
            )
        )
    return results


def stack_rows(results: Sequence[StackScores], class_names: Sequence[str]) -> list[dict[str, Any]]:
    """``per_stack.csv``: one row per stack and class, scores and summed counts."""
    rows = []
    for stack in results:
        for c, name in enumerate(class_names):
            row: dict[str, Any] = {"stack": stack.name, "slices": stack.slices, "class": c}
            row["name"] = name
            row.update({k: stack.per_class[k][c] for k in SCORES})
            row.update({k: stack.counts[k][c] for k in COUNTS})
            rows.append(row)
    return rows


def stack_summary(results: Sequence[StackScores], class_names: Sequence[str]) -> dict[str, Any]:
    """``summary.json``'s ``per_stack``: ``count``, ``mean`` (each stack's foreground mean,
    averaged over the stacks) and ``stacks``: per stack its slices, mean and per-class scores."""
    return {
        "count": len(results),
        "mean": {k: sum(s.mean[k] for s in results) / len(results) for k in SCORES},
        "stacks": {
            stack.name: {
                "slices": stack.slices,
                "mean": stack.mean,
                "per_class": {
                    name: {k: stack.per_class[k][c] for k in SCORES}
                    for c, name in enumerate(class_names)
                },
            }
            for stack in results
        },
    }
