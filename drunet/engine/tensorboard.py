"""TensorBoard event files for a run, written only when the ``tensorboard`` package is installed.

``tensorboard`` is an optional dependency (``pip install tensorboard``); without it training runs
exactly the same and :func:`open_event_log` returns ``None``. The events go to
``<run>/tensorboard/``: ``tensorboard --logdir runs`` shows every run side by side.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from drunet.engine.epochs import EpochRecord

EVENTS_DIR = "tensorboard"


def tensorboard_available() -> bool:
    """Whether ``torch.utils.tensorboard`` can write events (it needs the tensorboard package)."""
    return importlib.util.find_spec("tensorboard") is not None


class EventLog:
    """Per-epoch scalars of a run: losses, learning rate, epoch time, throughput, scores.

    Resuming at epoch ``e`` purges events at and after ``e`` left by the interrupted run, so a
    crashed epoch never shows twice.
    """

    def __init__(self, run_dir: Path, first_epoch: int = 1) -> None:
        from torch.utils.tensorboard import SummaryWriter  # imported only when wanted

        self.writer: Any = SummaryWriter(
            log_dir=str(run_dir / EVENTS_DIR), purge_step=first_epoch if first_epoch > 1 else None
        )

    def add_epoch(self, record: EpochRecord) -> None:
        step = record.epoch
        scalars = {
            "loss/train": record.train_loss,
            "loss/val": record.val_loss,
            "lr": record.lr,
            "time/epoch_seconds": record.seconds,
            "time/train_images_per_second": record.train_images_per_second,
            **{f"val/{name}": value for name, value in record.scores.items()},
        }
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()  # a killed run keeps every finished epoch

    def close(self) -> None:
        self.writer.close()


def open_event_log(run_dir: Path, enabled: bool, first_epoch: int = 1) -> EventLog | None:
    """An :class:`EventLog` for ``run_dir``, or ``None`` when disabled or not installed."""
    if not enabled or not tensorboard_available():
        return None
    return EventLog(run_dir, first_epoch)
