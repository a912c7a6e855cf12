"""The best epoch so far and early stopping: one small object the Trainer updates every epoch."""

from __future__ import annotations

from dataclasses import dataclass

from drunet.engine.history import EpochRecord


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
