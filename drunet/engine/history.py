"""Per-epoch records and the metrics CSV written after every epoch."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path

from drunet.atomic import atomic_write_text


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


def write_metrics_csv(path: str | Path, history: list[EpochRecord]) -> None:
    """Rewrite the whole CSV (atomically) so it always matches the history."""
    rows = [record.row() for record in history]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
    atomic_write_text(path, buffer.getvalue())
