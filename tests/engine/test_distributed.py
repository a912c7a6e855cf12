"""DDP on CPU (gloo), 2 processes launched by torchrun: same weights, whole-set metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import DataLoader

from drunet.checkpoint import build_model
from drunet.config import load_config
from drunet.datasets import SegmentationDataset, make_synthetic
from drunet.engine.data import prepare_config
from drunet.engine.distributed import DistContext
from drunet.engine.sampling import EpochSampler
from drunet.metrics import ConfusionMeter, logits_to_labels

WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    data = make_synthetic(root / "data", num_images=10, sizes=((48, 48), (40, 56)), seed=2)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(WORKER), str(data), str(root),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return root


@pytest.mark.integration
def test_ranks_hold_identical_weights(ddp_run: Path) -> None:
    rank0 = load_file(str(ddp_run / "rank0.safetensors"))
    rank1 = load_file(str(ddp_run / "rank1.safetensors"))
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key  # buffers (BN statistics) too


@pytest.mark.integration
def test_only_rank_zero_wrote_one_run_folder(ddp_run: Path) -> None:
    runs = list((ddp_run / "runs").iterdir())
    assert [p.name for p in runs] == ["ddp"]
    saved = load_file(str(runs[0] / "last.safetensors"))
    rank0 = load_file(str(ddp_run / "rank0.safetensors"))
    assert all(torch.equal(saved[k], rank0[k]) for k in rank0)


@pytest.mark.integration
def test_metrics_equal_a_single_process_evaluation(ddp_run: Path) -> None:
    summaries = [json.loads((ddp_run / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert summaries[0]["scores"] == summaries[1]["scores"]
    config = load_config(ddp_run / "runs" / "ddp" / "config.yaml")
    config, _, val_pairs = prepare_config(config)
    assert len(val_pairs) == 4  # two whole images per rank
    model = build_model(config)
    model.load_state_dict(load_file(str(ddp_run / "rank0.safetensors")))
    model.eval()
    dataset = SegmentationDataset(
        val_pairs, normalization=config.data.normalization, masks=config.data.masks
    )
    meter = ConfusionMeter(2)
    with torch.no_grad():
        for image, mask in DataLoader(dataset, batch_size=1):
            meter.update(logits_to_labels(model(image)), mask)
    single = meter.compute().as_dict()
    for key, value in single.items():
        assert summaries[0]["scores"][key] == pytest.approx(value, abs=1e-12), key


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
