"""Resumable training state: optimiser, schedule, scaler, epoch, best score, history.

Written next to the weights as ``state.pt`` with ``torch.save`` and read back with
``torch.load(weights_only=True)``: only tensors and plain containers, never pickled code.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from drunet.atomic import atomic_write_bytes
from drunet.engine.history import EpochRecord
from drunet.engine.rng import rng_state, set_rng_state
from drunet.errors import DrunetError

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
    """Read ``state.pt`` without unpickling code and check its entries; ``history`` comes back
    as EpochRecords and ``schedule`` as ``{"epochs": int | None, "anchor": (step, factor) |
    None}``. A missing or wrong-typed entry is a one-line ``DrunetError`` naming it."""
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
    payload["history"] = [_record(path, i, item) for i, item in enumerate(payload["history"])]
    payload["schedule"] = _schedule(path, payload)
    return payload


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


def _schedule(path: Path, payload: dict[str, Any]) -> dict[str, Any]:
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
    return {"epochs": epochs, "anchor": anchor}


def _damaged(path: Path, entry: str, problem: str) -> DrunetError:
    return DrunetError(
        f"cannot resume: {path} entry '{entry}' {problem}; the file is damaged or was not "
        "written by drunet — restore it from a copy or start a new run"
    )


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
        if state["scaler"]:  # empty when saved disabled (no float16): keep the fresh scaler
            scaler.load_state_dict(state["scaler"])


def restore_rng(state: dict[str, Any], path: Path) -> None:
    """:func:`~drunet.engine.rng.set_rng_state` with a damaged entry named, not a traceback."""
    try:
        set_rng_state(state["rng"])
    except (TypeError, ValueError, RuntimeError, IndexError, KeyError) as err:
        raise _damaged(path, "rng", f"cannot be restored ({_first_line(err)})") from None


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
