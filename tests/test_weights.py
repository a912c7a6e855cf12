"""Starting weights: one adaptation rule (hand-computed values), encoder weights from files or
the local Hugging Face cache, and user-named files read safely."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from drunet import weights
from drunet.errors import ConfigError, DrunetError
from drunet.models import create_model
from drunet.weights import adapt_state, load_encoder_weights


def tensor(*values: float) -> torch.Tensor:
    """A ``(1, C, 1, 1)`` conv weight holding ``values`` along its input channels."""
    return torch.tensor(values).view(1, len(values), 1, 1)


def test_one_rule_adapts_the_image_part_loads_matches_and_refreshes_the_rest() -> None:
    stored = {
        "stem": tensor(1, 2, 3),  # a stem trained on RGB
        "refine": tensor(10, 20, 1, 2, 3),  # two feature channels, then RGB
        "head": torch.ones(2, 4, 1, 1),  # two classes
        "norm": torch.tensor([5.0, 6.0]),
        "other": tensor(7, 8, 9),  # same outputs and kernel, but it does not read the image
    }
    convs = {"stem": 0, "refine": 2}
    grey = {
        "stem": torch.zeros(1, 1, 1, 1),
        "refine": torch.zeros(1, 3, 1, 1),
        "head": torch.zeros(3, 4, 1, 1),  # three classes
        "norm": torch.zeros(2),
        "other": torch.zeros(1, 1, 1, 1),
        "new": torch.zeros(1),
    }
    result = adapt_state(grey, stored, convs)
    assert result.loaded == ["norm"]
    assert result.adapted == ["stem", "refine"]
    assert result.reinitialised == ["head", "other", "new"]
    assert result.state["stem"].flatten().tolist() == [1 + 2 + 3]  # summed for one channel
    assert result.state["refine"].flatten().tolist() == [10, 20, 1 + 2 + 3]  # features kept
    assert set(result.state) == {"stem", "refine", "norm"}
    # Two image channels: kernels repeated cyclically (R, G) and scaled by 3 / 2.
    two = adapt_state({"stem": torch.zeros(1, 2, 1, 1)}, stored, convs)
    assert two.state["stem"].flatten().tolist() == [1.5, 3.0]
    # Four: R, G, B, R scaled by 3 / 4; the features before the image stay as stored.
    four = adapt_state({"refine": torch.zeros(1, 6, 1, 1)}, stored, convs)
    assert four.state["refine"].flatten().tolist() == [10, 20, 0.75, 1.5, 2.25, 0.75]


def encoder_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone().contiguous() for k, v in model.net.encoder.state_dict().items()}


@pytest.mark.parametrize("channels", [1, 4])
def test_encoder_weights_adapt_to_any_channel_count(tmp_path: Path, channels: int) -> None:
    """A 3-channel encoder state dict (a plain PyTorch file, read weights_only) loads into a 1-
    or 4-channel model: the stem adapted by the rule above, everything else as saved."""
    donor = create_model("unet_resnet34", in_channels=3, encoder_name="resnet18")
    state = encoder_state(donor)
    path = tmp_path / "encoder.pt"
    torch.save(state, path)
    model = create_model("unet_resnet34", in_channels=channels, encoder_name="resnet18")
    assert load_encoder_weights(model, str(path)) == ["net.encoder.conv1.weight"]
    loaded = model.net.encoder.state_dict()
    stem = state["conv1.weight"]  # (64, 3, 7, 7)
    repeated = stem[:, [0, 1, 2, 0]] * (3 / 4)
    expected = stem.sum(dim=1, keepdim=True) if channels == 1 else repeated
    torch.testing.assert_close(loaded["conv1.weight"], expected)
    for key, value in state.items():
        if key != "conv1.weight":
            assert torch.equal(loaded[key], value), key


def test_a_local_safetensors_file_is_loaded(tmp_path: Path) -> None:
    donor = create_model("unet_resnet34", encoder_name="resnet18")
    path = tmp_path / "resnet18_encoder.safetensors"
    save_file(encoder_state(donor), str(path))
    torch.manual_seed(99)
    model = create_model("unet_resnet34", encoder_name="resnet18")
    assert load_encoder_weights(model, str(path)) == []
    for key, value in donor.net.encoder.state_dict().items():
        assert torch.equal(model.net.encoder.state_dict()[key], value), key


def test_imagenet_from_the_local_cache_is_used(monkeypatch, tmp_path: Path) -> None:
    donor = create_model("unet_resnet34", encoder_name="resnet18")
    cached = tmp_path / "model.safetensors"
    save_file(encoder_state(donor), str(cached))
    asked = []
    monkeypatch.setattr(weights, "_hf_cached", lambda repo, rev: asked.append(repo) or cached)
    model = create_model("unet_resnet34", encoder_name="resnet18")
    load_encoder_weights(model, "imagenet")
    assert asked == ["smp-hub/resnet18.imagenet"]
    assert torch.equal(model.net.encoder.conv1.weight, donor.net.encoder.conv1.weight)


def test_pretrained_names_fail_offline_with_a_fix(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # an empty cache
    model = create_model("unet_resnet34", encoder_name="resnet18", encoder_depth=3)
    with pytest.raises(DrunetError, match="not in the local Hugging Face cache.*never downloads"):
        load_encoder_weights(model, "imagenet")
    with pytest.raises(DrunetError, match="no such file, and not a pretrained name"):
        load_encoder_weights(model, str(tmp_path / "missing.pt"))


def test_weights_of_another_encoder_name_the_tensor(tmp_path: Path) -> None:
    donor = create_model("unet_resnet34", encoder_name="resnet34")
    path = tmp_path / "resnet34.safetensors"
    state = encoder_state(donor)
    state["bn1.weight"] = torch.ones(3)  # resnet18's bn1 has 64 channels too: break one
    save_file(state, str(path))
    model = create_model("unet_resnet34", encoder_name="resnet18", encoder_depth=3)
    with pytest.raises(DrunetError, match=r"bn1.weight has shape \(3,\).*another encoder"):
        load_encoder_weights(model, str(path))


def test_a_drunet_takes_no_encoder_weights(tmp_path: Path) -> None:
    model = create_model("drunet", 1, 1, init_features=4, depth=1)
    with pytest.raises(ConfigError, match=r"applies to smp models \(unet_resnet34, smp:ARCH"):
        load_encoder_weights(model, str(tmp_path / "x.pt"))


class Payload:
    """Any object: a pickle holding it is refused without running its code."""


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("encoder.pt", pickle.dumps({"conv1.weight": Payload()})),  # a pickle of objects
        ("encoder.pth", b"PK\x03\x04 not really a zip"),  # a damaged torch archive
        ("encoder.bin", b""),  # empty
        ("encoder.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json"),
    ],
    ids=["pickle", "damaged-zip", "empty", "bad-safetensors"],
)
def test_unsafe_or_damaged_files_are_one_drunet_error(
    tmp_path: Path, name: str, content: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DrunetError) as info:
        weights.read_state_file(path)
    message = str(info.value)
    assert str(path) in message and "train.encoder_weights" in message
    assert "weights_only" not in message and "\n" not in message


def test_a_pickled_full_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    torch.save({"state_dict": {"w": torch.ones(1)}, "epoch": 3}, path)  # nested, not flat
    with pytest.raises(DrunetError, match="does not hold a flat state dict of tensors"):
        weights.read_state_file(path)
