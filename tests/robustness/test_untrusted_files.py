"""Files drunet is asked to load: pickled code never runs; foreign checkpoints are named.

A pickle payload here is an object whose unpickling creates a marker file — the harmless stand-in
for any code an attacker would run. drunet reads weights only from safetensors and its resume
state only with ``torch.load(weights_only=True)``, so the marker must never appear.
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from drunet.errors import DrunetError
from drunet.hub.pretrained import from_pretrained, save_pretrained
from drunet.inference import Predictor
from drunet.models import DRUNet, create_model
from tests.robustness.conftest import assert_user_error, invoke


class Payload:
    """Unpickling this calls ``open(marker, "w")``: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def write_pickle_bomb(path: Path, marker: Path) -> None:
    torch.save({"model": Payload(marker), "epoch": 1}, path)
    assert not marker.exists()
    # The payload is live: a plain unpickle would run it (checked once, then cleaned up).
    torch.load(path, weights_only=False)["model"].close()  # the file handle the payload opened
    assert marker.exists()
    marker.unlink()


def test_resume_with_a_pickle_payload_in_state_does_not_run_it(trained_run, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    marker = tmp_path / "pwned"
    write_pickle_bomb(run / "state.pt", marker)
    result = invoke("train", "--resume", run, "--epochs", "3")
    assert_user_error(result, "state.pt")
    assert not marker.exists()
    assert (run / "last.safetensors").read_bytes() == (
        trained_run / "last.safetensors"
    ).read_bytes()


@pytest.mark.parametrize("name", ["evil.pt", "evil.safetensors", "best.safetensors"])
def test_predict_with_pickled_weights_does_not_run_them(trained_run, tmp_path, name) -> None:
    marker = tmp_path / "pwned"
    weights = tmp_path / name
    with weights.open("wb") as handle:
        pickle.dump({"state_dict": Payload(marker)}, handle)
    image = next((trained_run.parent.parent / "data" / "images").iterdir())
    result = invoke("predict", image, "--model", weights, "--out", tmp_path / "out")
    assert_user_error(result, name, "safetensors")
    assert not marker.exists()
    assert not (tmp_path / "out").exists()
    with pytest.raises(DrunetError, match="safetensors"):
        Predictor.from_run(weights)
    assert not marker.exists()


def test_from_pretrained_with_a_pickle_does_not_run_it(tmp_path) -> None:
    marker = tmp_path / "pwned"
    folder = tmp_path / "model"
    save_pretrained(DRUNet(1, 1, init_features=4, depth=2), folder)
    with (folder / "model.safetensors").open("wb") as handle:
        pickle.dump(Payload(marker), handle)
    with pytest.raises(DrunetError, match="model.safetensors"):
        from_pretrained(folder)
    assert not marker.exists()


def test_weights_of_another_architecture_are_named(trained_run, tmp_path) -> None:
    # Weights of a wider network under the run's configuration: the shapes cannot fit.
    from safetensors.torch import load_file, save_file

    from drunet.checkpoint import CONFIG_KEY, read_weights

    state, _ = read_weights(trained_run / "best.safetensors")
    metadata = {CONFIG_KEY: _config_json(trained_run)}
    model = _config(trained_run)["model"]
    params = {**model["params"], "init_features": 8}
    other = create_model(model["name"], model["in_channels"], 1, **params)
    save_file(
        {k: v.contiguous() for k, v in other.state_dict().items()},
        tmp_path / "other.safetensors",
        metadata=metadata,
    )
    assert set(load_file(tmp_path / "other.safetensors")) == set(state)  # same keys, other shapes
    image = next((trained_run.parent.parent / "data" / "images").iterdir())
    result = invoke("predict", image, "--model", tmp_path / "other.safetensors", "--out", tmp_path)
    assert_user_error(result, "other.safetensors", "do not fit")


def test_safetensors_from_elsewhere_without_a_config_is_named(tmp_path) -> None:
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(3)}, tmp_path / "foreign.safetensors")
    result = invoke("predict", tmp_path / "foreign.safetensors", "--model",
                    tmp_path / "foreign.safetensors", "--out", tmp_path / "out")  # fmt: skip
    assert_user_error(result, "foreign.safetensors", "no drunet configuration")


def test_resume_after_the_config_was_changed_to_another_model(trained_run, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    config = _config(run)
    config["model"]["params"] = {**config["model"]["params"], "init_features": 8}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    result = invoke("train", "--resume", run, "--epochs", "3")
    assert_user_error(result, "state.pt", "another model or configuration", "config.yaml")
    for name, content in before.items():  # nothing already written is lost or overwritten
        if name != "config.yaml":
            assert (run / name).read_bytes() == content, name


def test_resume_of_a_folder_that_is_not_a_run(tmp_path) -> None:
    (tmp_path / "notes").mkdir()
    result = invoke("train", "--resume", tmp_path / "notes")
    assert_user_error(result, "notes", "config.yaml")


def _config(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())


def _config_json(run: Path) -> str:
    import json

    return json.dumps(_config(run))
