"""Multi-GPU / multi-node training with PyTorch DDP, launched by ``torchrun``.

drunet never schedules processes itself: ``torchrun`` starts one process per device and sets
``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; :func:`init_distributed` reads them. Backend: NCCL
on CUDA, gloo on CPU (what the tests use). Each rank trains on its own share of every epoch's
samples (:class:`~drunet.engine.data.EpochSampler` with ``rank``/``world_size``), gradients
are averaged by DDP (not between the micro-batches of an accumulation group: ``no_sync``),
validation runs on the bare module over each rank's share of the images — shares may be uneven
or empty, so no collective may run per image — and its confusion counts are summed over ranks.
Every collective is reached by every rank equally often. Only rank 0 writes files.

Single node, 4 GPUs::

    torchrun --standalone --nproc_per_node 4 -m drunet train --data DIR

Two nodes (run on each, with its own ``--node_rank``)::

    torchrun --nnodes 2 --node_rank 0 --nproc_per_node 4 \\
        --rdzv_backend c10d --rdzv_endpoint HOST:29500 -m drunet train --data DIR
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from drunet.errors import DrunetError


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job (a single process is rank 0 of 1)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over ranks in place (no-op for one process)."""
        if self.enabled:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def broadcast_buffers(self, model: nn.Module) -> None:
        """Copy rank 0's buffers (BatchNorm running statistics) to every rank, so all ranks
        validate and save the same model."""
        if self.enabled:
            for buffer in model.buffers():
                dist.broadcast(buffer, src=0)

    def broadcast_object(self, value: object) -> object:
        """Rank 0's ``value`` on every rank (e.g. the run folder name)."""
        if not self.enabled:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather_object(self, value: object) -> list[object] | None:
        """Every rank's ``value`` on rank 0, in rank order (``None`` on the other ranks)."""
        if not self.enabled:
            return [value]
        gathered: list[object] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(value, gathered, dst=0)
        return gathered

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def launched_by_torchrun() -> bool:
    """Whether a launcher asked for more than one process (``WORLD_SIZE`` set and not 1; a
    malformed value counts, so that :func:`init_distributed` names it)."""
    return os.environ.get("WORLD_SIZE", "").strip() not in ("", "1")


def check_device_count(devices: int, device_type: str) -> None:
    """One GPU per process: asking for more processes than visible GPUs is an error on CUDA
    (on CPU any number of gloo processes can run)."""
    if device_type != "cuda":
        return
    visible = torch.cuda.device_count()
    if devices > visible:
        raise DrunetError(
            f"--devices {devices} needs {devices} GPUs on this node but {visible} CUDA GPU(s) "
            f"are visible (see CUDA_VISIBLE_DEVICES); use --devices {visible} or train.device=cpu"
        )


# The launcher's variables drunet (or torch, for the rendezvous) reads: what each one is, and
# the smallest value it may take. A set one must be a whole number in range, in every process.
_LAUNCH_INTEGERS: dict[str, tuple[str, int]] = {
    "WORLD_SIZE": ("the number of processes in the job", 1),
    "RANK": ("this process's rank, 0..WORLD_SIZE-1", 0),
    "LOCAL_RANK": ("this process's rank on its node", 0),
    "LOCAL_WORLD_SIZE": ("the number of processes on this node", 1),
    "MASTER_PORT": ("the rendezvous port, 1..65535", 1),
}
_FIX = "unset it to train in one process, or launch with torchrun (drunet train --devices N does)"


def launch_context() -> DistContext:
    """This process's place in the job from the launcher's environment (rank 0 of 1 without
    one). Every launcher variable that is set is checked, also in a single process: a
    malformed or out-of-range one is a one-line ``DrunetError`` naming it, its value and the
    fix."""
    values = {name: _env_int(name) for name in _LAUNCH_INTEGERS}
    world_size = values["WORLD_SIZE"] or 1
    rank, local_rank = values["RANK"] or 0, values["LOCAL_RANK"] or 0
    if rank >= world_size:
        raise DrunetError(
            f"environment variable RANK={rank} is outside 0..{world_size - 1} (WORLD_SIZE="
            f"{world_size}); {_FIX}"
        )
    port = values["MASTER_PORT"]
    if port is not None and port > 65535:
        raise DrunetError(
            f"environment variable MASTER_PORT={port} is not a port (1..65535); choose a free "
            f"port or {_FIX}"
        )
    if world_size == 1:
        return DistContext()
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        if not os.environ.get(name, "").strip():
            raise DrunetError(
                f"environment variable {name} is not set but WORLD_SIZE={world_size} is; launch "
                "with torchrun (drunet train --devices N does) or set it"
            )
    return DistContext(rank=rank, local_rank=local_rank, world_size=world_size)


def _env_int(name: str) -> int | None:
    """The launcher variable ``name`` as an integer (``None`` when unset or empty)."""
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    meaning, least = _LAUNCH_INTEGERS[name]
    try:
        number = int(value)
    except ValueError:
        raise DrunetError(
            f"environment variable {name}={value!r} is not an integer ({meaning}); {_FIX}"
        ) from None
    if number < least:
        raise DrunetError(
            f"environment variable {name}={number} must be at least {least} ({meaning}); {_FIX}"
        )
    return number


def init_distributed(device_type: str) -> DistContext:
    """Join the process group ``torchrun`` set up; a plain process gets rank 0 of 1."""
    context = launch_context()
    if not context.enabled:
        return context
    if device_type == "cuda":
        # torchrun starts LOCAL_WORLD_SIZE processes on this node, one per GPU.
        local_world = _env_int("LOCAL_WORLD_SIZE") or context.local_rank + 1
        check_device_count(max(local_world, context.local_rank + 1), "cuda")
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(context.local_rank)
        dist.init_process_group(backend=backend)
    return context


@contextlib.contextmanager
def distributed(device_type: str) -> Iterator[DistContext]:
    """:func:`init_distributed` for the length of a run; the process group is destroyed at the
    end (also after an error) when this call created it — a group the caller set up stays.

    After a run that ended normally every rank meets at a barrier, then the ranks close their
    connections one side at a time (:func:`_close_in_turn`): gloo aborts a process (SIGABRT)
    whose peer closes a connection while its own side is still busy with it, which killed rank
    1 of ``drunet train --devices 2`` at the very end, under load, even after a barrier.
    After an error the group is destroyed at once (the other ranks may never reach the end;
    torchrun ends them)."""
    created = not dist.is_initialized()
    context = init_distributed(device_type)
    ended = False
    try:
        yield context
        if created:
            context.barrier()
            ended = True
    finally:
        if created and context.enabled and dist.is_initialized():
            if ended:
                _close_in_turn(context)
            else:
                dist.destroy_process_group()


_closings = itertools.count()  # every rank closes its groups equally often: the same keys
_CLOSE_WAIT_S = 60.0


def _close_in_turn(context: DistContext) -> None:
    """Destroy the process group, rank 0 last: every other rank destroys its side and says so
    through the launcher's key-value store (TCP, not gloo's connections); rank 0 destroys its
    own once all have, or after ``_CLOSE_WAIT_S`` seconds. Without a store: at once."""
    key = f"drunet/closed/{next(_closings)}"
    store = _default_store()
    if store is None:
        dist.destroy_process_group()
        return
    if not context.is_main:
        dist.destroy_process_group()
        store.add(key, 1)
        return
    deadline = time.monotonic() + _CLOSE_WAIT_S
    while store.add(key, 0) < context.world_size - 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    dist.destroy_process_group()


def _default_store() -> dist.Store | None:
    """The store the default group was set up with (``torchrun``'s), if torch exposes it."""
    getter = getattr(dist.distributed_c10d, "_get_default_store", None)
    try:
        return getter() if getter is not None else None
    except (RuntimeError, ValueError):
        return None


def wrap_model(model: nn.Module, context: DistContext, sync_bn: bool) -> nn.Module:
    """DDP-wrap ``model`` for multi-process training (optionally with SyncBatchNorm)."""
    if not context.enabled:
        return model
    if sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    device_ids = [context.local_rank] if next(model.parameters()).is_cuda else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
