"""Multi-GPU / multi-node training with PyTorch DDP, launched by ``torchrun``.

drunet never schedules processes itself: ``torchrun`` starts one process per device and sets
``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; :func:`init_distributed` reads them. Backend: NCCL
on CUDA, gloo on CPU (what the tests use). Each rank trains on its own share of every epoch's
samples (:class:`~drunet.engine.sampling.EpochSampler` with ``rank``/``world_size``), gradients
are averaged by DDP, validation confusion counts are summed over ranks, and only rank 0 writes
files.

Single node, 4 GPUs::

    torchrun --standalone --nproc_per_node 4 -m drunet train --data DIR

Two nodes (run on each, with its own ``--node_rank``)::

    torchrun --nnodes 2 --node_rank 0 --nproc_per_node 4 \\
        --rdzv_backend c10d --rdzv_endpoint HOST:29500 -m drunet train --data DIR
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


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

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device_type: str) -> DistContext:
    """Join the process group ``torchrun`` set up; a plain process gets rank 0 of 1."""
    if not launched_by_torchrun():
        return DistContext()
    context = DistContext(
        rank=int(os.environ["RANK"]),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        world_size=int(os.environ["WORLD_SIZE"]),
    )
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(context.local_rank)
        dist.init_process_group(backend=backend)
    return context


def wrap_model(model: nn.Module, context: DistContext, sync_bn: bool) -> nn.Module:
    """DDP-wrap ``model`` for multi-process training (optionally with SyncBatchNorm)."""
    if not context.enabled:
        return model
    if sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    device_ids = [context.local_rank] if next(model.parameters()).is_cuda else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def shutdown(context: DistContext) -> None:
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()
