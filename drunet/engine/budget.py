"""A wall-clock training budget (``train.max_minutes``), the same on every DDP rank."""

from __future__ import annotations

import time


class Budget:
    """The LR decays over ``seconds`` of training and training stops when they are spent.

    Under DDP every rank must see the same progress — the learning rate is a function of it,
    and all ranks must stop at the same step — so the Trainer shares rank 0's clock through the
    collective it runs after every optimiser step (:meth:`share`); :meth:`progress` then
    returns that value instead of this process's own clock.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started: float | None = None
        self.shared: float | None = None

    def start(self) -> None:
        if self.started is None:
            self.started = time.perf_counter()

    def clock(self) -> float:
        """Share of the budget this process has used, in [0, 1] (0 before it starts)."""
        if self.started is None:
            return 0.0
        return min(1.0, (time.perf_counter() - self.started) / self.seconds)

    def share(self, progress: float) -> None:
        """Use ``progress`` (rank 0's :meth:`clock`) from now on."""
        self.shared = progress

    def progress(self) -> float:
        """Share of the budget used, in [0, 1]: the shared value if any, else the clock."""
        return self.shared if self.shared is not None else self.clock()

    def spent(self) -> bool:
        return self.progress() >= 1.0
