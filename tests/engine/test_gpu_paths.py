"""The CUDA-only switches, exercised on the CPU as far as the logic goes.

No GPU here: these tests check that each switch is set exactly when it should be — cuDNN
autotuning off under determinism, pinned host memory only when CUDA is there, non-blocking copies
only to a CUDA device, channels_last batches for an NHWC model — not the GPU's own behaviour.
"""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from drunet.config import TrainConfig, config_from_dict
from drunet.datasets import make_synthetic
from drunet.device import select_precision
from drunet.engine import prepare as prepare_module
from drunet.engine.data import make_loaders, prepare_data
from drunet.engine.optim import lr_factor
from drunet.engine.trainer import Trainer, TrainerOptions
from drunet.models import DRUNet
from tests.engine.test_train import tiny_config


@pytest.fixture
def restore_backends():
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    yield
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved
    torch.use_deterministic_algorithms(False)


@pytest.mark.usefixtures("restore_backends")
@pytest.mark.parametrize("deterministic", [False, True])
def test_cudnn_autotuning_only_without_determinism(deterministic: bool) -> None:
    config = config_from_dict({"train": {"deterministic": deterministic}})
    prepare_module._configure_backends(config.train, torch.device("cuda"))
    assert torch.backends.cudnn.benchmark is (not deterministic)
    assert torch.backends.cudnn.deterministic is deterministic
    assert torch.are_deterministic_algorithms_enabled() is deterministic


@pytest.mark.usefixtures("restore_backends")
def test_cpu_leaves_cudnn_alone() -> None:
    torch.backends.cudnn.benchmark = False
    prepare_module._configure_backends(config_from_dict({}).train, torch.device("cpu"))
    assert torch.backends.cudnn.benchmark is False


@pytest.mark.parametrize(
    ("cuda", "device", "pinned", "workers"),
    [
        (False, "auto", False, 0),
        (True, "auto", True, min(4, os.cpu_count() or 1)),
        (True, "cpu", False, 0),  # a GPU machine training on the CPU: nothing to pin for
    ],
)
def test_loaders_pin_memory_and_add_workers_only_for_cuda_training(
    tmp_path, monkeypatch, cuda: bool, device: str, pinned: bool, workers: int
) -> None:
    data = make_synthetic(tmp_path / "data", num_images=4, sizes=((32, 32),), seed=0)
    recipe = tiny_config(data, tmp_path / "runs")
    prepared = prepare_data(recipe)
    config, train_pairs, val_pairs = prepared.config, prepared.train, prepared.val
    config.train.device = device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: int(cuda))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    train_loader, val_loader = make_loaders(config, train_pairs, val_pairs)
    assert train_loader.pin_memory is pinned and val_loader.pin_memory is pinned
    assert train_loader.num_workers == workers


def make_trainer(device: str, channels_last: bool) -> Trainer:
    # The memory format is the model's own (model.params.channels_last), not a trainer option.
    model = DRUNet(3, 2, 4, depth=1, blocks_per_stage=1, channels_last=channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(TrainConfig(), 1, 0))
    precision = select_precision(torch.device(device), "fp32")
    options = TrainerOptions(2, precision)
    return Trainer(model, nn.MSELoss(), optimizer, scheduler, [], [], options)


@pytest.mark.parametrize(("device", "non_blocking"), [("cpu", False), ("cuda", True)])
def test_batches_copy_non_blocking_only_to_cuda(monkeypatch, device: str, non_blocking: bool):
    trainer = make_trainer(device, channels_last=True)
    calls = []

    def record(self, *args, **kwargs):  # stands in for the copy: no GPU to copy to
        calls.append(kwargs)
        return self.contiguous(memory_format=kwargs.get("memory_format", torch.preserve_format))

    monkeypatch.setattr(torch.Tensor, "to", record)
    images, masks = trainer._to_device((torch.zeros(2, 3, 8, 8), torch.zeros(2, 8, 8)))
    assert [c["non_blocking"] for c in calls] == [non_blocking, non_blocking]
    assert calls[0]["memory_format"] is torch.channels_last


@pytest.mark.parametrize("channels_last", [False, True])
def test_batches_take_the_models_memory_format(channels_last: bool) -> None:
    trainer = make_trainer("cpu", channels_last)
    images, masks = trainer._to_device((torch.rand(2, 3, 8, 8), torch.zeros(2, 8, 8)))
    assert images.is_contiguous(memory_format=torch.channels_last) is channels_last
    assert masks.is_contiguous()
