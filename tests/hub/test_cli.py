"""``--model hf:org/name`` on the commands that name a model, from a pre-filled cache, offline;
once in a fresh process, where huggingface_hub reads HF_HUB_CACHE / HF_HUB_OFFLINE itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from drunet.cli.main import app
from drunet.config import load_config
from drunet.datasets import read_image, read_mask
from drunet.hub.pretrained import save_run
from drunet.inference import Predictor
from tests.conftest import tiny_recipe
from tests.hub.conftest import fill_cache


@pytest.fixture
def cached_run(trained_run: Path, hf_cache: Path, tmp_path: Path) -> Path:
    """The trained run saved for the Hub and put in the cache as lab/cells."""
    fill_cache(hf_cache, "lab/cells", save_run(trained_run, tmp_path / "hub"))
    return trained_run


def test_predict_with_a_hub_model_equals_the_run(cached_run, hub_data: Path, tmp_path) -> None:
    images = hub_data / "images"
    args = ["predict", str(images), "--model", "hf:lab/cells", "--out", str(tmp_path / "p")]
    result = CliRunner().invoke(app, [*args, "--no-overlay"])
    assert result.exit_code == 0, result.output
    predictor = Predictor.from_run(cached_run)
    for image in sorted(images.iterdir()):
        mask = read_mask(tmp_path / "p" / f"{image.stem}_mask.png")
        assert np.array_equal(mask, predictor.predict(read_image(image)))


def test_export_of_a_hub_model_needs_out(cached_run) -> None:
    result = CliRunner().invoke(app, ["export", "hf:lab/cells"])
    assert result.exit_code == 2
    assert "hf:lab/cells lives in the Hugging Face cache: name the exported file with --out" in (
        " ".join(result.output.split())
    )


def test_a_fresh_process_reads_the_cache_and_respects_offline(
    cached_run: Path, hf_cache: Path, hub_data: Path, tmp_path: Path
) -> None:
    image = sorted((hub_data / "images").iterdir())[0]
    env = {**os.environ, "HF_HUB_CACHE": str(hf_cache), "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[2]), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "drunet", "predict", str(image), "--out", str(tmp_path)]
    done = subprocess.run(
        [*command, "--model", "hf:lab/cells"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    mask = read_mask(tmp_path / f"{image.stem}_mask.png")
    assert np.array_equal(mask, Predictor.from_run(cached_run).predict(read_image(image)))
    missing = subprocess.run(
        [*command, "--model", "hf:lab/absent"], env=env, capture_output=True, text=True
    )
    assert missing.returncode == 2
    lines = (missing.stdout + missing.stderr).strip().splitlines()
    assert len(lines) == 1 and "hf:lab/absent is not in the local Hugging Face cache" in lines[0]
    assert "HF_HUB_OFFLINE" in lines[0]


def test_train_starts_from_a_hub_model(
    cached_run, hf_cache: Path, hub_data: Path, tmp_path
) -> None:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe()))
    args = ["train", "--data", str(hub_data), "--config", str(recipe), "--name", "ft"]
    result = CliRunner().invoke(
        app, [*args, "--runs-dir", str(tmp_path / "runs"), "--init-from", "hf:lab/cells"]
    )
    assert result.exit_code == 0, result.output
    config = load_config(tmp_path / "runs" / "ft" / "config.yaml")
    (snapshot,) = (hf_cache / "models--lab--cells" / "snapshots").iterdir()
    assert config.train.init_from == f"hf:lab/cells@{snapshot.name}"  # the commit read


def test_evaluate_a_hub_model_as_its_run(cached_run: Path, hub_data: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    for name, model in (("hub", "hf:lab/cells"), ("run", str(cached_run))):
        args = ["evaluate", "--model", model, "--data", str(hub_data), "--split", "all"]
        result = runner.invoke(app, [*args, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    hub_rows = (tmp_path / "hub" / "per_image.csv").read_text()
    assert hub_rows == (tmp_path / "run" / "per_image.csv").read_text() and hub_rows.count("\n") > 6
