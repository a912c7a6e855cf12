"""state.pt: damaged entries are named, per-GPU RNG states restore only what exists, a disabled
GradScaler's empty state loads into an enabled one, and the resumed schedule's anchor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from drunet.config import TrainConfig
from drunet.engine import state as rng
from drunet.engine.epochs import EpochRecord
from drunet.engine.optim import build_scheduler, resumed_anchor
from drunet.engine.state import Schedule, load_state, restore_state, save_state
from drunet.errors import DrunetError


def write_state(path: Path, scaler_enabled: bool = False) -> dict[str, Any]:
    """A real state.pt of a one-layer model after 3 optimiser steps; returns the raw payload."""
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = build_scheduler(optimizer, TrainConfig(epochs=2), steps_per_epoch=5)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    save_state(
        path,
        epoch=1,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=torch.amp.GradScaler("cpu", enabled=scaler_enabled),
        best_epoch=1,
        best_score=0.5,
        history=[EpochRecord(1, 0.9, 0.8, 0.1, 2.0, {"dice": 0.5, "iou": 1 / 3})],
        schedule=Schedule(2, None),
    )
    return torch.load(path, weights_only=True)


def test_a_saved_state_reads_back(tmp_path: Path) -> None:
    write_state(tmp_path / "state.pt")
    state = load_state(tmp_path / "state.pt")
    assert state.epoch == 1 and state.best_score == 0.5
    assert state.history == [EpochRecord(1, 0.9, 0.8, 0.1, 2.0, {"dice": 0.5, "iou": 1 / 3})]
    assert state.schedule == Schedule(epochs=2, anchor=None)
    assert state.scheduler["last_epoch"] == 3


@pytest.mark.parametrize(
    ("damage", "entry", "problem"),
    [
        (lambda s: s.pop("optimizer"), "optimizer", "is missing"),
        (lambda s: s.update(epoch="two"), "epoch", "is str, expected int"),
        (lambda s: s.update(best_score=None), "best_score", "is NoneType, expected int or float"),
        (lambda s: s.update(scheduler=5), "scheduler", "is int, expected dict"),
        (lambda s: s["scheduler"].pop("last_epoch"), "scheduler.last_epoch", "is missing"),
        (lambda s: s["scheduler"].update(_last_lr=[]), "scheduler._last_lr", "is empty"),
        (lambda s: s["rng"].update(torch=[1, 2]), "rng.torch", "is list, expected Tensor"),
        (lambda s: s.update(history=[{"epoch": 1}]), "history[0]", "is not an epoch record"),
        (lambda s: s.update(schedule={"epochs": "4"}), "schedule.epochs", "is str, expected int"),
        (
            lambda s: s.update(schedule={"anchor": [3]}),
            "schedule.anchor",
            "is not a (step, factor)",
        ),
    ],
)
def test_a_damaged_entry_is_one_line_naming_state_pt_and_the_entry(
    tmp_path: Path, damage, entry: str, problem: str
) -> None:
    path = tmp_path / "state.pt"
    payload = write_state(path)
    damage(payload)
    torch.save(payload, path)
    with pytest.raises(DrunetError) as info:
        load_state(path)
    message = str(info.value)
    assert f"{path} entry '{entry}' {problem}" in message and "\n" not in message


def test_cuda_rng_states_restore_only_on_gpus_that_exist(monkeypatch) -> None:
    state = rng.rng_state()  # no GPU here: add what a 3-GPU machine would have saved
    state["cuda"] = [torch.full((8,), i, dtype=torch.uint8) for i in range(3)]
    restored: list[tuple[int, int]] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(
        torch.cuda, "set_rng_state", lambda s, device: restored.append((int(s[0]), device))
    )
    rng.set_rng_state(state)
    assert restored == [(0, 0)]  # GPU 0 gets GPU 0's state; the missing GPUs are skipped


def test_rng_state_round_trip() -> None:
    state = rng.rng_state()
    expected = torch.rand(3)
    torch.rand(5)
    rng.set_rng_state(state)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(("saved", "resumed"), [(False, True), (True, False), (True, True)])
def test_grad_scaler_state_loads_whether_it_was_enabled_or_not(
    tmp_path: Path, saved: bool, resumed: bool
) -> None:
    write_state(tmp_path / "state.pt", scaler_enabled=saved)
    state = load_state(tmp_path / "state.pt")
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = build_scheduler(optimizer, TrainConfig(epochs=2), steps_per_epoch=5)
    scaler = torch.amp.GradScaler("cpu", enabled=resumed, init_scale=8.0)
    restore_state(state, tmp_path / "state.pt", model, optimizer, scheduler, scaler)
    assert scheduler.last_epoch == 3
    # A saved enabled scaler brings its scale (65536); a saved disabled one leaves ours (8).
    expected = 65536.0 if saved else 8.0
    assert scaler.get_scale() == (expected if resumed else 1.0)


def test_resumed_anchor_keeps_the_saved_one_unless_the_total_changes() -> None:
    scheduler = {"last_epoch": 20, "_last_lr": [0.004, 0.004], "base_lrs": [0.01, 0.01]}
    assert resumed_anchor(Schedule(4, None), scheduler, 4) is None
    assert resumed_anchor(Schedule(6, (10, 0.5)), scheduler, 6) == (10, 0.5)
    assert resumed_anchor(Schedule(4, None), scheduler, 6) == (20, pytest.approx(0.4))
