"""What the training loop keeps from one epoch to the next: each epoch's record, the best epoch
with early stopping, and the wall-clock budget (``train.max_minutes``)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field


@dataclass
class EpochRecord:
    """What one epoch produced. ``scores`` holds ``dice``, ``iou`` and per-class values."""

    epoch: int
    train_loss: float
    val_loss: float
    lr: float
    seconds: float  # the whole epoch: training and validation
    scores: dict[str, float] = field(default_factory=dict)
    train_seconds: float = 0.0  # the training steps only
    samples: int = 0  # training patches seen (per process under DDP)

    @property
    def train_images_per_second(self) -> float:
        return self.samples / self.train_seconds if self.train_seconds > 0 else 0.0

    def row(self) -> dict[str, float]:
        flat = {k: v for k, v in asdict(self).items() if k != "scores"}
        return {**flat, **self.scores}


@dataclass
class BestTracker:
    """The best value of the monitored validation score and the epoch that reached it.

    Args:
        monitor: the score in ``EpochRecord.scores`` that decides (``dice`` or ``iou``).
        patience: epochs without improvement after which :meth:`should_stop` is true
            (``None``: never stop early).
        epoch, score: the best so far (``0, -1.0`` before any epoch: the first one improves).
    """

    monitor: str = "dice"
    patience: int | None = None
    epoch: int = 0
    score: float = -1.0

    def update(self, record: EpochRecord) -> bool:
        """Take ``record`` into account; ``True`` when it is strictly better than the best."""
        score = record.scores[self.monitor]
        if score > self.score:
            self.epoch, self.score = record.epoch, score
            return True
        return False

    def is_best(self, epoch: int) -> bool:
        return epoch == self.epoch

    def should_stop(self, epoch: int) -> bool:
        """Whether ``patience`` epochs have passed since the best one."""
        return self.patience is not None and epoch - self.epoch >= self.patience


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
