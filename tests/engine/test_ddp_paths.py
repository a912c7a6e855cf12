"""DDP logic without a process group: launch-environment checks, the GPU count, the group's
lifetime, and the Trainer's DDP paths against a fake two-rank group (this process is rank 1,
rank 0's contributions are known values)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import torch
import torch.distributed as dist
from torch import nn

from drunet.config import TrainConfig
from drunet.device import select_precision
from drunet.engine import distributed
from drunet.engine.distributed import DistContext, check_device_count, init_distributed
from drunet.engine.epochs import Budget
from drunet.engine.optim import lr_factor
from drunet.engine.trainer import Trainer, TrainerOptions
from drunet.errors import DrunetError
from tests.engine.test_trainer import MeanLoss, Scale

LAUNCH_VARIABLES = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                    "MASTER_PORT")  # fmt: skip
GOOD = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}


@pytest.fixture
def launch_env(monkeypatch: pytest.MonkeyPatch):
    """Set launch variables; joining a real process group is a test failure."""
    for name in LAUNCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("init_process_group must not be reached")

    monkeypatch.setattr(dist, "init_process_group", refuse)

    def set_env(values: dict[str, str]) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_env


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WORLD_SIZE": "2", **GOOD}, "environment variable RANK is not set"),
        ({"WORLD_SIZE": "two", "RANK": "0", **GOOD}, "WORLD_SIZE='two' is not an integer"),
        ({"WORLD_SIZE": "2", "RANK": "first", **GOOD}, "RANK='first' is not an integer"),
        ({"WORLD_SIZE": "2", "RANK": "2", **GOOD}, "RANK=2 is outside 0..1"),
        ({"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "1.5", **GOOD}, "LOCAL_RANK='1.5'"),
        ({"WORLD_SIZE": "0"}, "WORLD_SIZE=0 must be at least 1"),
        ({"WORLD_SIZE": "2", "RANK": "1"}, "MASTER_ADDR is not set"),
    ],
)
def test_malformed_launch_environment_is_one_line_naming_the_variable(
    launch_env, env: dict[str, str], message: str
) -> None:
    launch_env(env)
    assert distributed.launched_by_torchrun()  # not relaunched: init_distributed names it
    with pytest.raises(DrunetError) as info:
        init_distributed("cpu")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_no_launcher_is_a_single_process(launch_env) -> None:
    assert not distributed.launched_by_torchrun()
    assert init_distributed("cpu") == DistContext()
    launch_env({"WORLD_SIZE": "1"})
    assert init_distributed("cuda") == DistContext()


def test_more_devices_than_visible_gpus_is_an_error_on_cuda(
    launch_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    check_device_count(1, "cuda")
    check_device_count(8, "cpu")  # gloo: any number of CPU processes
    with pytest.raises(DrunetError, match=r"--devices 2 needs 2 GPUs on this node but 1 CUDA"):
        check_device_count(2, "cuda")
    # A torchrun worker refuses before it joins the group or picks a GPU.
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: pytest.fail("set_device"))
    launch_env({"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2", **GOOD})
    with pytest.raises(DrunetError, match="--devices 2 needs 2 GPUs"):
        init_distributed("cuda")


@pytest.mark.parametrize("existing", [False, True])
def test_the_process_group_is_destroyed_by_whoever_created_it(
    launch_env, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    group = {"up": existing, "destroyed": 0}
    monkeypatch.setattr(dist, "is_initialized", lambda: group["up"])
    monkeypatch.setattr(dist, "init_process_group", lambda backend: group.update(up=True))

    def destroy() -> None:
        group.update(up=False, destroyed=group["destroyed"] + 1)

    monkeypatch.setattr(dist, "destroy_process_group", destroy)
    launch_env({"WORLD_SIZE": "2", "RANK": "1", **GOOD})
    with (
        pytest.raises(RuntimeError, match="training failed"),
        distributed.distributed("cpu") as context,
    ):
        assert context.rank == 1 and group["up"]
        raise RuntimeError("training failed")
    assert group["destroyed"] == (0 if existing else 1)  # also after an error


def test_ranks_meet_at_a_barrier_before_the_group_closes_only_after_a_clean_run(
    launch_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    group = {"up": False}
    monkeypatch.setattr(dist, "is_initialized", lambda: group["up"])
    monkeypatch.setattr(dist, "init_process_group", lambda backend: group.update(up=True))
    monkeypatch.setattr(dist, "barrier", lambda: calls.append("barrier"))

    def destroy() -> None:
        calls.append("destroy")
        group.update(up=False)

    monkeypatch.setattr(dist, "destroy_process_group", destroy)
    launch_env({"WORLD_SIZE": "2", "RANK": "1", **GOOD})
    with distributed.distributed("cpu"):
        calls.append("run")
    assert calls == ["run", "barrier", "destroy"]
    calls.clear()
    with pytest.raises(RuntimeError), distributed.distributed("cpu"):
        raise RuntimeError("rank 0 may never reach a barrier")
    assert calls == ["destroy"]


class FakeStore:
    """The launcher's store as ``_close_in_turn`` uses it: a counter the other ranks raise."""

    def __init__(self, others_after: int | None, calls: list[str]) -> None:
        self.value, self.polls, self.others_after, self.calls = 0, 0, others_after, calls

    def add(self, key: str, amount: int) -> int:
        assert key.startswith("drunet/closed/")
        if amount:
            self.calls.append(f"add {amount}")
        else:
            self.polls += 1
            if self.polls == self.others_after:  # rank 1 has closed its side by now
                self.value += 1
        self.value += amount
        return self.value


@pytest.mark.parametrize(("rank", "others_after"), [(1, None), (0, 3), (0, None)])
def test_after_a_clean_run_rank_0_closes_its_connections_last(
    launch_env, monkeypatch: pytest.MonkeyPatch, rank: int, others_after: int | None
) -> None:
    calls: list[str] = []
    store = FakeStore(others_after, calls)
    group = {"up": False}
    monkeypatch.setattr(dist, "is_initialized", lambda: group["up"])
    monkeypatch.setattr(dist, "init_process_group", lambda backend: group.update(up=True))
    monkeypatch.setattr(dist, "barrier", lambda: calls.append("barrier"))
    monkeypatch.setattr(dist.distributed_c10d, "_get_default_store", lambda: store)
    monkeypatch.setattr(distributed, "_CLOSE_WAIT_S", 0.2)

    def destroy() -> None:
        calls.append(f"destroy after {store.polls} polls")
        group.update(up=False)

    monkeypatch.setattr(dist, "destroy_process_group", destroy)
    launch_env({"WORLD_SIZE": "2", "RANK": str(rank), **GOOD})
    with distributed.distributed("cpu"):
        pass
    if rank == 1:  # its side first, then it says so
        assert calls == ["barrier", "destroy after 0 polls", "add 1"]
    elif others_after == 3:  # rank 0 waits until rank 1 has closed
        assert calls == ["barrier", "destroy after 3 polls"]
    else:  # rank 1 never says so: rank 0 closes after the wait (0.2 s, at most 21 polls)
        assert calls == ["barrier", f"destroy after {store.polls} polls"]
        assert 2 <= store.polls <= 21


# ---------------------------------------------------------------- the Trainer under DDP


@dataclass(frozen=True)
class FakeRankOne(DistContext):
    """Rank 1 of 2: ``all_reduce_sum`` adds rank 0's next queued tensor and logs the call."""

    rank: int = 1
    world_size: int = 2
    rank0: list[torch.Tensor] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        self.calls.append("all_reduce")
        return tensor.add_(self.rank0.pop(0).to(tensor.dtype))

    def broadcast_buffers(self, model: nn.Module) -> None:
        self.calls.append("broadcast_buffers")


class DDPLike(nn.Module):
    """Stands in for DistributedDataParallel: a forward that would run a collective (it must
    not be called in validation) and a ``no_sync`` that counts its uses."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module
        self.no_sync_entries = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert self.training, "validation called the DDP forward (a buffer broadcast)"
        return self.module(x)

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        self.no_sync_entries += 1
        yield


class BenchmarkProbe(Scale):
    def __init__(self) -> None:
        super().__init__()
        self.benchmark_seen: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.benchmark_seen.append(torch.backends.cudnn.benchmark)
        return super().forward(x)


def ddp_trainer(
    model: nn.Module, train: list, val: list, context: DistContext, **kwargs
) -> Trainer:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    cpu = select_precision(torch.device("cpu"), "fp32")
    accumulate = kwargs.pop("accumulate", 1)
    options = TrainerOptions(2, cpu, accumulate=accumulate, dist=context)
    return Trainer(model, MeanLoss(), optimizer, scheduler, train, val, options, **kwargs)


def test_validation_runs_the_bare_module_without_autotuning(monkeypatch) -> None:
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    probe = BenchmarkProbe()
    # One image: logits [[1, -1]] vs target [[1, 1]] → tp 1, fn 1: Dice 2/3, loss 0.
    val = [(torch.tensor([[[[1.0, -1.0]]]]), torch.tensor([[[1, 1]]]))]
    context = FakeRankOne(rank0=[torch.zeros(2, 2, dtype=torch.int64), torch.zeros(5)])
    loss, scores = ddp_trainer(DDPLike(probe), [], val, context).validate()
    assert scores["dice"] == pytest.approx(2 / 3) and loss == 0.0
    assert scores["image_dice"] == pytest.approx(2 / 3) and scores["image_iou"] == 0.5
    assert probe.benchmark_seen == [False] and torch.backends.cudnn.benchmark is True
    assert context.calls == ["broadcast_buffers", "all_reduce", "all_reduce"]


def test_an_empty_validation_share_still_joins_every_collective_once() -> None:
    # Rank 0 scored tp 3, fp 1, fn 0 (matrix[truth, prediction]) with losses summing to 1.5
    # over 2 images, whose per-image Dice sum to 1.6 and IoU to 1.2; rank 1 has no image and
    # must end with the same whole-set result.
    matrix = torch.tensor([[4, 1], [0, 3]])
    totals = torch.tensor([1.5, 2.0, 1.6, 1.2, 2.0], dtype=torch.float64)
    context = FakeRankOne(rank0=[matrix, totals])
    loss, scores = ddp_trainer(DDPLike(Scale()), [], [], context).validate()
    assert context.calls == ["broadcast_buffers", "all_reduce", "all_reduce"]
    assert loss == pytest.approx(0.75)
    assert scores["dice_1"] == pytest.approx(2 * 3 / (2 * 3 + 1))  # 6/7
    assert scores["image_dice"] == pytest.approx(0.8) and scores["image_iou"] == pytest.approx(0.6)


@pytest.mark.parametrize(("world_size", "expected"), [(2, 2), (1, 0)])
def test_gradient_accumulation_skips_the_all_reduce_between_boundaries(
    world_size: int, expected: int
) -> None:
    batch = (torch.ones(1, 1, 2, 2), torch.zeros(1, 2, 2).long())
    model = DDPLike(Scale())
    context = FakeRankOne() if world_size == 2 else DistContext()
    trainer = ddp_trainer(model, [batch] * 4, [], context, accumulate=2)
    trainer.train_epoch(1, 1)
    assert model.no_sync_entries == expected  # micro-batches 1 and 3 of 4 (accumulate=2)


def test_time_budget_follows_rank_zeros_clock(monkeypatch) -> None:
    context = FakeRankOne(rank0=[torch.tensor([0.25], dtype=torch.float64)])
    budget = Budget(60.0)
    trainer = ddp_trainer(Scale(), [], [], context, budget=budget)
    budget.start()
    monkeypatch.setattr(budget, "clock", lambda: 0.9)  # this rank's own clock disagrees
    assert not trainer._budget_spent()
    assert budget.progress() == 0.25  # rank 1 contributed 0, rank 0 its 0.25
    factor = lr_factor(TrainConfig(), 1000, 0, time_progress=budget.progress)
    assert factor(5) == pytest.approx(0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi / 4)))
    context.rank0.append(torch.tensor([1.0], dtype=torch.float64))
    assert trainer._budget_spent()  # rank 0's budget is spent: every rank stops now
