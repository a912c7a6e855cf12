"""Adding a family is its own file plus one registry line: a toy family (one 1×1 conv), defined
and registered here and nowhere else, builds through ``create_model``, validates through the
config, saves and loads through the checkpoint code, starts from other weights, has an encoder
for fine-tuning, and passes the shared model tester."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import Field
from torch import nn

from drunet.checkpoint import build_model, load_model, save_config_and_weights
from drunet.config import config_from_dict
from drunet.engine.optim import encoder_modules
from drunet.errors import ConfigError
from drunet.hub.pretrained import save_pretrained
from drunet.models import create_model
from drunet.models.family import ModelFamily, Params
from drunet.models.padding import check_input
from drunet.models.registry import model_names, register, shown_names, unregister
from drunet.weights import init_from
from tests.models.model_tester import ModelTester


# ---- the family's own file: a network, its params, the family object ----
class ToyNet(nn.Module):
    """One 1×1 conv: ``(N, in_channels, H, W) → (N, out_channels, H, W)``."""

    def __init__(self, in_channels: int = 3, out_channels: int = 1, bias: bool = True) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_channels, "ToyNet")
        return self.conv(x)


class ToyParams(Params):
    bias: bool | None = Field(default=None)


def _build(name: str, in_channels: int, out_channels: int, **params: Any) -> nn.Module:
    return ToyNet(in_channels, out_channels, **params)


TOY = ModelFamily(
    tag="toy",
    model_class=ToyNet,
    params=ToyParams,
    names=("toy",),
    resolve=lambda name: name if name == "toy" else None,
    build=_build,
    describe=lambda model: ("toy", {"bias": model.conv.bias is not None}),
    encoder=lambda model: model.conv,
    input_convs=lambda model: {"conv.weight": 0},
)


# ---- the one registry line (here for the duration of this module's tests) ----
@pytest.fixture(autouse=True, scope="module")
def registered() -> Iterator[None]:
    register(TOY)
    yield
    unregister("toy")


class TestToy(ModelTester):
    name = "toy"
    kwargs = {"bias": False}
    multiple = 4  # a 1×1 conv needs no padding: any multiple holds


def toy_config(in_channels: int = 2, **params: Any) -> Any:
    model = {"name": "toy", "in_channels": in_channels, "num_classes": 2, "params": params}
    return config_from_dict({"model": model})


def test_it_is_registered_like_the_others() -> None:
    assert "toy" in model_names() and "toy" in shown_names()
    assert type(create_model("toy", 2, 1, bias=False)) is ToyNet


def test_the_config_types_its_params() -> None:
    config = toy_config(bias=False)
    assert type(config.model.params) is ToyParams and config.model.params.bias is False
    assert config.model.spec().kwargs == {"bias": False}
    with pytest.raises(ConfigError, match=r"unknown key 'model.params.init_features'"):
        toy_config(init_features=8)


def test_it_saves_loads_and_starts_other_runs(tmp_path: Path) -> None:
    config = toy_config(in_channels=3)
    torch.manual_seed(0)
    model = build_model(config)
    save_config_and_weights(tmp_path, "best.safetensors", model, config)
    loaded, stored = load_model(tmp_path)
    assert type(loaded) is ToyNet and stored.model.name == "toy"
    x = torch.randn(1, 3, 5, 7)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    save_pretrained(ToyNet(3, 1, bias=False), tmp_path / "pretrained")  # described by its family
    assert load_model(tmp_path / "pretrained")[1].model.params.bias is False
    grey = build_model(toy_config(in_channels=1))  # the stem rule adapts its one conv
    report = init_from(grey, tmp_path)
    assert report.adapted == ["conv.weight"] and report.loaded == ["conv.bias"]
    expected = model.conv.weight.sum(dim=1, keepdim=True)
    torch.testing.assert_close(grey.conv.weight, expected)


def test_fine_tuning_finds_its_encoder() -> None:
    model = create_model("toy", 2, 1)
    assert encoder_modules(model) == [model.conv]
