"""The run folder: ``runs/<name>/`` created new (never reused), and everything it receives after
an epoch, written by one callback the Trainer calls. What a run folder holds is named in
:mod:`drunet.checkpoint`."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import TYPE_CHECKING

from drunet import checkpoint as runs
from drunet.atomic import atomic_write_text
from drunet.checkpoint import save_config_and_weights, unwrap
from drunet.config import ExperimentConfig
from drunet.engine.epochs import EpochRecord
from drunet.engine.plots import plot_progress
from drunet.engine.state import Schedule, save_state
from drunet.engine.tensorboard import EventLog, open_event_log
from drunet.errors import DrunetError

if TYPE_CHECKING:
    from drunet.engine.trainer import Trainer


def create_run_dir(runs_dir: str | Path, name: str | None, model_name: str) -> Path:
    """Make a new, empty run folder and return it. An explicit ``name`` that exists is an
    error; an automatic name gets a numeric suffix when two runs start in the same second."""
    runs_dir = Path(runs_dir)
    if name is not None:
        if not name or Path(name).name != name or name in (".", ".."):
            raise DrunetError(f"run name {name!r} must be a plain folder name (no '/')")
        path = runs_dir / name
        if path.exists():
            raise DrunetError(
                f"run folder {path} already exists; choose another --name (runs are never "
                "overwritten)"
            )
        path.mkdir(parents=True)
        return path
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{model_name}"
    for suffix in ["", *(f"-{i}" for i in range(2, 1000))]:
        path = runs_dir / f"{stem}{suffix}"
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise DrunetError(f"could not create a new run folder in {runs_dir}")


def write_metrics_csv(path: str | Path, history: list[EpochRecord]) -> None:
    """Rewrite the whole ``metrics.csv`` (atomically) so it always matches the history."""
    rows = [record.row() for record in history]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
    atomic_write_text(path, buffer.getvalue())


class RunWriter:
    """Rank 0's per-epoch files in ``run_dir``, in an order that survives a kill at any moment:

    1. ``best.safetensors`` when the monitored score improved, and ``last.safetensors`` — each
       with ``config.yaml``, the configuration they were trained under;
    2. ``state.pt``: the epoch, weights, optimiser, schedule, scaler, RNG and history — what
       ``resume`` continues from (it holds the weights too, so one atomic file is consistent);
    3. ``metrics.csv``, ``progress.png`` and TensorBoard events, for people.

    Every file is written atomically. Nothing is written before the first epoch ends — the
    TensorBoard log is opened then too — so a run that fails before that leaves its folder as it
    was. ``state.pt`` also keeps what defines the schedule beside the scheduler's own state: the
    total epochs and a resumed run's ``anchor`` (see :func:`~drunet.engine.optim.resumed_anchor`).
    """

    def __init__(
        self, run_dir: Path, config: ExperimentConfig, anchor: tuple[int, float] | None = None
    ) -> None:
        self.run_dir = run_dir
        self.config = config
        self.schedule = Schedule(config.train.epochs, anchor)
        self.events: EventLog | None = None
        self.events_opened = False

    def on_epoch_end(self, record: EpochRecord, trainer: Trainer) -> None:
        model = unwrap(trainer.model)
        if trainer.best.is_best(record.epoch):
            save_config_and_weights(self.run_dir, runs.BEST, model, self.config)
        save_config_and_weights(self.run_dir, runs.LAST, model, self.config)
        save_state(
            self.run_dir / runs.STATE,
            epoch=record.epoch,
            model=model,
            optimizer=trainer.optimizer,
            scheduler=trainer.scheduler,
            scaler=trainer.scaler,
            best_epoch=trainer.best.epoch,
            best_score=trainer.best.score,
            history=trainer.history,
            schedule=self.schedule,
        )
        write_metrics_csv(self.run_dir / runs.METRICS, trainer.history)
        class_names = self.config.data.masks.class_names
        plot_progress(trainer.history, self.run_dir / runs.PROGRESS, class_names)
        if not self.events_opened:  # purges events a killed run left from this epoch on
            self.events = open_event_log(self.run_dir, self.config.train.tensorboard, record.epoch)
            self.events_opened = True
        if self.events is not None:
            self.events.add_epoch(record)

    def close(self) -> None:
        if self.events is not None:
            self.events.close()
            self.events = None
