"""What the Trainer calls besides the model: a progress reporter and a per-epoch callback."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from drunet.engine.history import EpochRecord

if TYPE_CHECKING:
    from drunet.engine.trainer import Trainer


class Reporter(Protocol):
    """Where progress goes (a rich progress bar in the CLI, nothing in tests)."""

    def start_epoch(self, epoch: int, epochs: int, steps: int) -> None: ...
    def step(self, loss: float) -> None: ...
    def end_epoch(self, record: EpochRecord) -> None: ...


class SilentReporter:
    """Reports nothing (tests, the API, DDP ranks other than 0); usable as a context manager
    like the CLI's reporters."""

    def __enter__(self) -> SilentReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def start_epoch(self, epoch: int, epochs: int, steps: int) -> None:
        pass

    def step(self, loss: float) -> None:
        pass

    def end_epoch(self, record: EpochRecord) -> None:
        pass


class EpochCallback(Protocol):
    """Called after each epoch's validation, once the Trainer's ``history`` and ``best`` hold
    it (e.g. :class:`~drunet.engine.run_writer.RunWriter`). It receives the trainer instead of
    keeping a reference: a cycle would leave the loader workers to the cyclic garbage collector,
    whose shutdown of them hangs for 5 s."""

    def on_epoch_end(self, record: EpochRecord, trainer: Trainer) -> None: ...
