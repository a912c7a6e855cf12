"""DDP on CPU (gloo), 2 processes launched by torchrun: same weights, whole-set metrics, no
hang when the validation images do not split evenly; launch-environment checks; and the
Trainer's DDP paths (bare-module validation, no_sync, shared time budget) with a fake group."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import DataLoader

from drunet.checkpoint import build_model
from drunet.config import load_config
from drunet.datasets import SegmentationDataset, make_synthetic
from drunet.engine.data import EpochSampler, prepare_data
from drunet.engine.distributed import DistContext
from drunet.engine.prepare import build_criterion
from drunet.metrics import ConfusionMeter, logits_to_labels

WORKER = Path(__file__).with_name("ddp_worker.py")
HANG_SECONDS = 240  # a deadlocked run is killed and fails the test instead of hanging it
# Validation images → what else the run exercises (accumulation with no_sync, a time budget).
CASES = {
    1: {},  # rank 1 validates nothing
    2: {"accumulate": 2, "steps_per_epoch": 4, "max_minutes": 30},
    3: {"accumulate": 2, "steps_per_epoch": 4, "max_minutes": 30},  # 2 images and 1
}


@dataclass
class DdpRun:
    root: Path
    n_val: int
    summaries: list[dict]


def run_torchrun(args: list[str], log: Path, timeout: float = HANG_SECONDS) -> None:
    """Two processes under torchrun; on a hang every one of them is killed and the test fails.

    torchrun starts each worker in its own session, so its workers are found through /proc and
    killed one by one; the output goes to a file, not a pipe a stuck worker would hold open.
    """
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", *args]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for pid in [*_children(process.pid), process.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            process.wait()
            pytest.fail(f"DDP run hung (killed after {timeout:.0f} s):\n{log.read_text()[-3000:]}")
    assert process.returncode == 0, log.read_text()[-3000:]


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


@pytest.fixture(scope="module", params=sorted(CASES), ids=lambda n: f"{n}-val")
def ddp_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> DdpRun:
    n_val = request.param
    root = tmp_path_factory.mktemp(f"ddp{n_val}")
    total = n_val + 3  # round(total × fraction) = n_val validation images
    data = make_synthetic(root / "data", num_images=total, sizes=((48, 48), (40, 56)), seed=2)
    options = {"val_fraction": n_val / total, "train": CASES[n_val]}
    run_torchrun([str(WORKER), str(data), str(root), json.dumps(options)], root / "torchrun.log")
    summaries = [json.loads((root / f"rank{r}.json").read_text()) for r in (0, 1)]
    return DdpRun(root, n_val, summaries)


@pytest.mark.integration
def test_ranks_hold_identical_weights_and_learning_rates(ddp_run: DdpRun) -> None:
    rank0 = load_file(str(ddp_run.root / "rank0.safetensors"))
    rank1 = load_file(str(ddp_run.root / "rank1.safetensors"))
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key  # buffers (BN statistics) too
    # With a time budget the LR follows rank 0's clock on every rank, bit for bit.
    lrs = [summary["lrs"] for summary in ddp_run.summaries]
    assert lrs[0] == lrs[1] and len(lrs[0]) == 2


@pytest.mark.integration
def test_only_rank_zero_wrote_one_run_folder(ddp_run: DdpRun) -> None:
    runs = list((ddp_run.root / "runs").iterdir())
    assert [p.name for p in runs] == ["ddp"]
    saved = load_file(str(runs[0] / "last.safetensors"))
    rank0 = load_file(str(ddp_run.root / "rank0.safetensors"))
    assert all(torch.equal(saved[k], rank0[k]) for k in rank0)
    assert all(summary["group_destroyed"] for summary in ddp_run.summaries)


@pytest.mark.integration
def test_post_processing_is_chosen_on_every_validation_image_once(ddp_run: DdpRun) -> None:
    # Rank 0 gathers both shares (rank 1's may be empty), chooses, and every rank returns it.
    first, second = (summary["postprocessing"] for summary in ddp_run.summaries)
    assert first == second and first["images"] == ddp_run.n_val
    assert ddp_run.summaries[0]["postprocess"] == ddp_run.summaries[1]["postprocess"]
    stored = load_config(ddp_run.root / "runs" / "ddp" / "config.yaml").postprocess
    assert stored.model_dump() == ddp_run.summaries[0]["postprocess"]
    assert {f"postprocess.{k}": v for k, v in stored.model_dump().items() if k != "select"} == {
        step["key"]: step["value"] for step in first["steps"]
    }


@pytest.mark.integration
def test_metrics_equal_a_single_process_evaluation(ddp_run: DdpRun) -> None:
    summaries = ddp_run.summaries
    assert summaries[0]["scores"] == summaries[1]["scores"]
    assert summaries[0]["val_loss"] == summaries[1]["val_loss"]
    config = load_config(ddp_run.root / "runs" / "ddp" / "config.yaml")
    prepared = prepare_data(config)
    config, _, val_pairs = prepared.config, prepared.train, prepared.val
    assert len(val_pairs) == ddp_run.n_val  # shares of (1, 0), (1, 1) or (2, 1) images
    model = build_model(config)
    model.load_state_dict(load_file(str(ddp_run.root / "rank0.safetensors")))
    model.eval()
    dataset = SegmentationDataset(val_pairs, config.data.normalization, masks=config.data.masks)
    meter, losses, criterion = ConfusionMeter(2), [], build_criterion(config)
    with torch.no_grad():
        for image, mask in DataLoader(dataset, batch_size=1):
            logits = model(image)
            meter.update(logits_to_labels(logits), mask)
            losses.append(criterion(logits, mask).item())
    for key, value in meter.compute().as_dict().items():
        assert summaries[0]["scores"][key] == pytest.approx(value, abs=1e-12), key
    assert summaries[0]["val_loss"] == pytest.approx(sum(losses) / len(losses), rel=1e-5)


def test_epoch_sampler_shards_without_overlap() -> None:
    shards = [list(EpochSampler(10, seed=3, rank=r, world_size=2)) for r in (0, 1)]
    assert sorted(shards[0] + shards[1]) == list(range(10))
    sampler = EpochSampler(10, seed=3)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first and sorted(list(sampler)) == list(range(10))


def test_single_process_context_is_a_no_op() -> None:
    context = DistContext()
    tensor = torch.tensor([1.0, 2.0])
    assert context.all_reduce_sum(tensor) is tensor and not context.enabled
    assert context.broadcast_object("x") == "x"
