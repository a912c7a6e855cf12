"""save_pretrained / from_pretrained: model.safetensors + config.json round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from drunet.errors import DrunetError
from drunet.models import DRUNet, SmpUnet, create_model
from drunet.models.pretrained import PretrainedMixin


def test_drunet_round_trip_rebuilds_the_same_network(tmp_path: Path) -> None:
    torch.manual_seed(0)
    kwargs = {"init_features": 4, "depth": 2, "se_reduction": 2, "norm": "group", "act": "silu"}
    model = create_model("drunet", in_channels=2, out_channels=3, **kwargs).eval()
    assert model.save_pretrained(tmp_path / "m") == tmp_path / "m"
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["format"] == "drunet-pretrained/1" and config["model"] == "drunet"
    stored = config["kwargs"]
    assert stored["in_channels"] == 2 and stored["out_channels"] == 3
    assert {k: stored[k] for k in kwargs} == kwargs
    assert set(stored) == set(model.init_kwargs)  # every argument, defaults included
    loaded = DRUNet.from_pretrained(tmp_path / "m")
    assert not loaded.training
    x = torch.randn(2, 2, 37, 50)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_smp_round_trip_needs_no_encoder_weights_file(tmp_path: Path) -> None:
    donor = create_model("unet_resnet34", in_channels=3, out_channels=2, encoder_name="resnet18")
    weights = tmp_path / "encoder.safetensors"
    save_file({k: v.contiguous() for k, v in donor.net.encoder.state_dict().items()}, str(weights))
    model = create_model(
        "unet_resnet34",
        in_channels=3,
        out_channels=2,
        encoder_name="resnet18",
        encoder_weights=str(weights),
    ).eval()
    model.save_pretrained(tmp_path / "m")
    weights.unlink()  # the saved model carries the encoder weights itself
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["model"] == "unet_resnet34" and "encoder_weights" not in config["kwargs"]
    loaded = SmpUnet.from_pretrained(tmp_path / "m")
    x = torch.randn(1, 3, 40, 45)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    generic = PretrainedMixin.from_pretrained(tmp_path / "m")  # any registered model
    assert isinstance(generic, SmpUnet)


def test_loading_as_the_wrong_class_says_which_to_use(tmp_path: Path) -> None:
    create_model("drunet", in_channels=1, out_channels=1, init_features=4, depth=1).save_pretrained(
        tmp_path
    )
    with pytest.raises(DrunetError, match="holds a DRUNet.*DRUNet.from_pretrained"):
        SmpUnet.from_pretrained(tmp_path)


def test_missing_and_damaged_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(DrunetError, match=r"config\.json does not exist.*save_pretrained"):
        DRUNet.from_pretrained(tmp_path)
    create_model("drunet", in_channels=1, out_channels=1, init_features=4, depth=1).save_pretrained(
        tmp_path
    )
    (tmp_path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(DrunetError, match=r"model\.safetensors"):
        DRUNet.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text('{"model": "drunet"}')
    with pytest.raises(DrunetError, match="not a drunet pretrained config"):
        DRUNet.from_pretrained(tmp_path)


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path: Path) -> None:
    small = create_model("drunet", in_channels=1, out_channels=1, init_features=4, depth=1)
    big = create_model("drunet", in_channels=1, out_channels=1, init_features=8, depth=1)
    small.save_pretrained(tmp_path / "small")
    big.save_pretrained(tmp_path / "big")
    (tmp_path / "big" / "model.safetensors").replace(tmp_path / "small" / "model.safetensors")
    with pytest.raises(DrunetError, match="does not fit the model"):
        DRUNet.from_pretrained(tmp_path / "small")


def test_unknown_arguments_still_fail_when_building() -> None:
    with pytest.raises(ValueError, match="widht"):
        create_model("drunet", widht=3)
    with pytest.raises(TypeError, match="widht"):
        DRUNet(widht=3)
