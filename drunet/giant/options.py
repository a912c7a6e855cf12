"""``GiantOptions``: how ``drunet predict`` streams giant images (:mod:`drunet.giant.files`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GiantOptions:
    """How giant inputs are predicted: ``level``/``mpp`` choose the pyramid level; ``tissue``
    skips background (``None``: on for whole-slide files); ``resume`` is ``--continue``;
    ``overwrite`` replaces foreign files and discards an unfinished run's journal."""

    probabilities: bool = False
    level: int | None = None
    mpp: float | None = None
    tissue: bool | None = None
    resume: bool = False
    overwrite: bool = False
