"""Per-stack scores of an evaluation: a stack's slice counts summed, then scored.

A stack (a multi-page TIFF read as slices, or numbered 2D files named by ``data.layout.stack``)
is scored like the whole set is: its slices' tp / fp / fn are summed per class and Dice, IoU,
precision and recall come from those sums (a class absent from all of them is absent for the
stack: :mod:`drunet.evaluation.scoring`). So a stack's Dice is *not* the mean of its slices'
Dice: a slice with little foreground weighs little. Its ``mean`` is the foreground classes'
average (``macro`` on the stack's slices, absent classes left out). HD95 is not given per stack:
a volume's surface distance is not a reduction of the slices' 2D ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from drunet.datasets import Pair
from drunet.evaluation.scoring import COUNTS, SCORES, class_scores, json_number, nanmean


@dataclass(frozen=True)
class StackScores:
    """One stack: how many slices were scored, per-class counts and scores, foreground mean."""

    name: str
    slices: int
    counts: dict[str, list[int]]  # tp / fp / fn per class, summed over the slices
    per_class: dict[str, list[float]]  # dice / iou / precision / recall per class (NaN: absent)
    mean: dict[str, float]  # the present foreground classes' average of each score


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
    counts: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    stacks: Sequence[str | None],
    absent_as_one: bool = False,
) -> list[StackScores]:
    """Scores of every stack named in ``stacks`` (one entry per row of the ``(N, C)`` tp, fp,
    fn ``counts``; None for an image that is no stack slice), sorted by name."""
    rows: dict[str, list[int]] = {}
    for i, stack in enumerate(stacks):
        if stack is not None:
            rows.setdefault(stack, []).append(i)
    results = []
    for name in sorted(rows):
        index = torch.tensor(rows[name])
        tp, fp, fn = (s[index].sum(0) for s in counts)
        per_class = class_scores(tp, fp, fn, absent_as_one)
        results.append(
            StackScores(
                name,
                len(rows[name]),
                {k: [int(v) for v in s] for k, s in zip(COUNTS, (tp, fp, fn), strict=True)},
                {k: [float(v) for v in per_class[k]] for k in SCORES},
                {k: nanmean(per_class[k][1:]) for k in SCORES},
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
    averaged over the stacks) and ``stacks``: per stack its slices, mean and per-class scores
    (``None`` for an absent class)."""
    return {
        "count": len(results),
        "mean": {k: json_number(nanmean([s.mean[k] for s in results])) for k in SCORES},
        "stacks": {
            stack.name: {
                "slices": stack.slices,
                "mean": {k: json_number(v) for k, v in stack.mean.items()},
                "per_class": {
                    name: {k: json_number(stack.per_class[k][c]) for k in SCORES}
                    for c, name in enumerate(class_names)
                },
            }
            for stack in results
        },
    }
