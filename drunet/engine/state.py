"""Resumable training state: optimiser, schedule, scaler, epoch, best score, history.

Written next to the weights as ``state.pt`` with ``torch.save`` and read back with
``torch.load(weights_only=True)``: only tensors and plain containers, never pickled code.
"""

from __future__ import annotations

import contextlib
import io
import random
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from drunet.atomic import atomic_write_bytes
from drunet.engine.history import EpochRecord
from drunet.errors import DrunetError


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states as plain values (loadable with weights_only)."""
    legacy = np.random.get_state(legacy=True)
    assert isinstance(legacy, tuple)  # the global generator is always MT19937
    kind, keys, pos, has_gauss, cached = legacy
    state: dict[str, Any] = {
        "python": list(random.getstate()[1]) + [random.getstate()[0]],
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": pos,
            "has_gauss": has_gauss,
            "cached": cached,
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    python = state["python"]
    random.setstate((python[-1], tuple(python[:-1]), None))
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["kind"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(
    path: str | Path,
    *,
    epoch: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    best_epoch: int,
    best_score: float,
    history: list[EpochRecord],
    schedule: dict[str, Any] | None = None,
) -> None:
    """Everything needed to continue after ``epoch`` (atomic write). ``schedule`` holds what
    defines the learning-rate schedule beyond the scheduler's own state."""
    payload = {
        "epoch": epoch,
        # The weights again, so one atomic file holds a consistent epoch (last.safetensors and
        # state.pt are two writes; a kill between them must not mix epochs on resume).
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "best_epoch": best_epoch,
        "best_score": best_score,
        "history": [asdict(record) for record in history],
        "rng": rng_state(),
        "schedule": schedule or {},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_state(path: str | Path) -> dict[str, Any]:
    """Read ``state.pt`` without unpickling code; ``history`` comes back as EpochRecords."""
    path = Path(path)
    if not path.is_file():
        raise DrunetError(
            f"cannot resume: {path} is missing (the run did not finish an epoch, or it was "
            "trained by an older drunet); start a new run instead"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unpickling failure means "not our file"
        raise DrunetError(f"cannot resume: {path} is not a readable drunet state ({err})") from None
    payload["history"] = [EpochRecord(**record) for record in payload["history"]]
    return payload


def restore_state(
    state: dict[str, Any],
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
) -> None:
    """Load ``state`` (read from ``path``) into freshly built training objects. A state that
    does not fit them (another model or configuration) is a ``DrunetError``, not a traceback."""
    with _state_mismatch(path):
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])


@contextlib.contextmanager
def _state_mismatch(path: Path) -> Iterator[None]:
    try:
        yield
    except (RuntimeError, KeyError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DrunetError(
            f"cannot resume {path.parent}: {path.name} was written for another model or "
            f"configuration than {path.parent / 'config.yaml'} ({reason}); restore the run's "
            "config.yaml or start a new run"
        ) from None
