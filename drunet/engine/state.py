"""Resumable training state: optimiser, schedule, scaler, epoch, best score, history, and the
Python, NumPy, torch and per-GPU random states.

Written next to the weights as ``state.pt`` with ``torch.save`` and read back with
``torch.load(weights_only=True)``: only tensors and plain containers, never pickled code.
:func:`load_state` checks every entry and returns a typed :class:`TrainingState`; files written
by older drunet versions (no ``schedule`` entry, or the anchor under ``extra.lr_anchor``) read
into the same type.
"""

from __future__ import annotations

import contextlib
import io
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from drunet.atomic import atomic_write_bytes
from drunet.engine.epochs import EpochRecord
from drunet.errors import DrunetError


@dataclass(frozen=True)
class Schedule:
    """What defines the learning-rate schedule beyond the scheduler's own state: the total
    epochs it was built for (``None`` in files older than this entry: the run's config.yaml
    total) and a resumed run's anchor ``(step, factor)`` (see
    :func:`~drunet.engine.optim.resumed_anchor`)."""

    epochs: int | None = None
    anchor: tuple[int, float] | None = None


@dataclass(frozen=True)
class TrainingState:
    """``state.pt`` as read back: everything needed to continue after ``epoch``."""

    epoch: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    scaler: dict[str, Any]  # empty when it was saved disabled (no float16)
    best_epoch: int
    best_score: float
    history: list[EpochRecord]
    rng: dict[str, Any]
    schedule: Schedule


# What state.pt holds: entry → accepted types. ``schedule`` ({"epochs": total the schedule
# was built for, "anchor": [step, factor] or None}) is optional: older runs lack it.
ENTRIES: dict[str, type | tuple[type, ...]] = {
    "epoch": int,
    "model": dict,
    "optimizer": dict,
    "scheduler": dict,
    "scaler": dict,
    "best_epoch": int,
    "best_score": (int, float),
    "history": list,
    "rng": dict,
}


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
    schedule: Schedule | None = None,
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
        "schedule": {
            "epochs": schedule.epochs,
            "anchor": list(schedule.anchor) if schedule.anchor else None,
        }
        if schedule
        else {},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_state(path: str | Path) -> TrainingState:
    """Read ``state.pt`` without unpickling code and check its entries. A missing or
    wrong-typed entry is a one-line ``DrunetError`` naming it."""
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
    if not isinstance(payload, dict):
        raise _damaged(path, "(top level)", f"is {type(payload).__name__}, expected dict")
    for name, kinds in ENTRIES.items():
        _require(path, payload, name, kinds)
    scheduler = payload["scheduler"]
    _require(path, scheduler, "last_epoch", int, "scheduler.")
    for name in ("_last_lr", "base_lrs"):
        if not _require(path, scheduler, name, list, "scheduler."):
            raise _damaged(path, f"scheduler.{name}", "is empty")
    for name, kinds in (("python", list), ("numpy", dict), ("torch", torch.Tensor)):
        _require(path, payload["rng"], name, kinds, "rng.")
    return TrainingState(
        epoch=payload["epoch"],
        model=payload["model"],
        optimizer=payload["optimizer"],
        scheduler=scheduler,
        scaler=payload["scaler"],
        best_epoch=payload["best_epoch"],
        best_score=float(payload["best_score"]),
        history=[_record(path, i, item) for i, item in enumerate(payload["history"])],
        rng=payload["rng"],
        schedule=_schedule(path, payload),
    )


def _require(
    path: Path, mapping: dict, name: str, kinds: type | tuple[type, ...], prefix: str = ""
) -> Any:
    if name not in mapping:
        raise _damaged(path, prefix + name, "is missing")
    value = mapping[name]
    accepted = kinds if isinstance(kinds, tuple) else (kinds,)
    if not isinstance(value, accepted) or (isinstance(value, bool) and bool not in accepted):
        expected = " or ".join(kind.__name__ for kind in accepted)
        raise _damaged(path, prefix + name, f"is {type(value).__name__}, expected {expected}")
    return value


def _record(path: Path, index: int, item: object) -> EpochRecord:
    try:
        return EpochRecord(**item)  # type: ignore[arg-type]
    except TypeError as err:
        raise _damaged(path, f"history[{index}]", f"is not an epoch record ({err})") from None


def _schedule(path: Path, payload: dict[str, Any]) -> Schedule:
    schedule = payload.get("schedule", {})
    if not isinstance(schedule, dict):
        raise _damaged(path, "schedule", f"is {type(schedule).__name__}, expected dict")
    epochs = schedule.get("epochs")
    anchor = schedule.get("anchor", payload.get("extra", {}).get("lr_anchor"))  # older runs
    if epochs is not None and (not isinstance(epochs, int) or isinstance(epochs, bool)):
        raise _damaged(path, "schedule.epochs", f"is {type(epochs).__name__}, expected int")
    if anchor is not None:
        try:
            step, factor = anchor
            anchor = (int(step), float(factor))
        except (TypeError, ValueError):
            raise _damaged(path, "schedule.anchor", "is not a (step, factor) pair") from None
    return Schedule(epochs, anchor)


def _damaged(path: Path, entry: str, problem: str) -> DrunetError:
    return DrunetError(
        f"cannot resume: {path} entry '{entry}' {problem}; the file is damaged or was not "
        "written by drunet — restore it from a copy or start a new run"
    )


def restore_state(
    state: TrainingState,
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
) -> None:
    """Load ``state`` (read from ``path``) into freshly built training objects. A state that
    does not fit them (another model or configuration) is a ``DrunetError``, not a traceback."""
    with _state_mismatch(path):
        model.load_state_dict(state.model)
        optimizer.load_state_dict(state.optimizer)
        scheduler.load_state_dict(state.scheduler)
        if state.scaler:  # empty when saved disabled (no float16): keep the fresh scaler
            scaler.load_state_dict(state.scaler)


def restore_rng(state: TrainingState, path: Path) -> None:
    """:func:`set_rng_state` with a damaged entry named, not a traceback."""
    try:
        set_rng_state(state.rng)
    except (TypeError, ValueError, RuntimeError, IndexError, KeyError) as err:
        raise _damaged(path, "rng", f"cannot be restored ({_first_line(err)})") from None


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
    """Restore what :func:`rng_state` returned."""
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
        # Only the GPUs that exist now: a run saved on 4 GPUs may resume on 1.
        for index, gpu_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(gpu_state, index)


@contextlib.contextmanager
def _state_mismatch(path: Path) -> Iterator[None]:
    try:
        yield
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as err:
        raise DrunetError(
            f"cannot resume {path.parent}: {path.name} was written for another model or "
            f"configuration than {path.parent / 'config.yaml'} ({_first_line(err)}); restore "
            "the run's config.yaml or start a new run"
        ) from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
