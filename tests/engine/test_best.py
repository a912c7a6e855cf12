"""BestTracker: which epoch is best (strictly better only) and when patience runs out."""

from __future__ import annotations

import pytest

from drunet.engine.epochs import BestTracker, EpochRecord


def record(epoch: int, dice: float, iou: float = 0.0) -> EpochRecord:
    return EpochRecord(epoch, 1.0, 1.0, 1e-3, 1.0, {"dice": dice, "iou": iou})


def test_the_first_epoch_always_improves_and_ties_keep_the_earlier_epoch() -> None:
    best = BestTracker()
    assert best.update(record(1, 0.0))  # a Dice of 0 still beats "no epoch yet"
    assert (best.epoch, best.score) == (1, 0.0)
    assert best.update(record(2, 0.5))
    assert not best.update(record(3, 0.5))  # equal is not better
    assert (best.epoch, best.score) == (2, 0.5)
    assert best.is_best(2) and not best.is_best(3)


def test_monitor_picks_the_score() -> None:
    best = BestTracker(monitor="iou")
    for epoch, (dice, iou) in enumerate([(0.9, 0.1), (0.1, 0.4), (0.5, 0.3)], start=1):
        best.update(record(epoch, dice, iou))
    assert (best.epoch, best.score) == (2, 0.4)


@pytest.mark.parametrize(
    ("patience", "stops_at"), [(None, None), (1, 3), (2, 4), (3, 5), (4, None)]
)
def test_patience_counts_epochs_since_the_best(patience: int | None, stops_at: int | None) -> None:
    best = BestTracker(patience=patience)
    stopped = None
    for epoch, dice in enumerate([0.2, 0.6, 0.5, 0.6, 0.55], start=1):
        best.update(record(epoch, dice))
        if best.should_stop(epoch):
            stopped = epoch
            break
    assert stopped == stops_at
