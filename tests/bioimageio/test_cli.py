"""``drunet export --format bioimageio`` through the CLI: what it prints, the output rule, the
sample fallback and the refusals. The graphs are left out here (the state dict only, so each
export takes a second); ``test_package.py`` makes and tests the full package."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import drunet.bioimageio.package as package_module
from drunet.bioimageio.weights import convert
from drunet.cli.main import app
from drunet.datasets import write_image
from tests.bioimageio.conftest import make_run


@pytest.fixture(autouse=True)
def state_dict_only(monkeypatch: pytest.MonkeyPatch) -> None:
    def quick(model, in_channels, formats, opset):  # type: ignore[no-untyped-def]
        return convert(model, in_channels, ["pytorch_state_dict"], opset)

    monkeypatch.setattr(package_module, "convert", quick)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def export(runner: CliRunner, run: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["export", str(run), "--format", "bioimageio", *args])


def test_the_cli_writes_the_package_and_reports_it_as_json(runner, tmp_path: Path) -> None:
    run = make_run(tmp_path)
    out = tmp_path / "zoo" / "cells"
    result = export(runner, run, "--out", str(out), "--author", "A", "--author", "B", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["folder"] == str(out) and info["zip"] == str(tmp_path / "zoo" / "cells.zip")
    assert info["weights"] == ["pytorch_state_dict"] and info["format"] == "bioimageio"
    rdf = yaml.safe_load((out / "rdf.yaml").read_text())
    assert rdf["authors"] == [{"name": "A"}, {"name": "B"}] and rdf["license"] == "CC-BY-4.0"
    assert list(rdf["weights"]) == ["pytorch_state_dict"]
    assert (tmp_path / "zoo" / "cells.zip").is_file()


def test_the_cli_says_what_it_wrote(runner, tmp_path: Path) -> None:
    run = make_run(tmp_path)
    result = export(runner, run, "--format", "BioImageIO")  # any case, as the other formats
    assert result.exit_code == 0, result.output
    assert f"wrote {run / 'bioimageio'} (BioImage Model Zoo package, folder" in result.output
    assert "test tensors from the run's first validation image" in result.output


def test_a_file_drunet_did_not_write_is_refused_unless_overwrite(runner, tmp_path: Path) -> None:
    run = make_run(tmp_path)
    mine = run / "bioimageio" / "README.md"
    mine.parent.mkdir()
    mine.write_text("my notes")
    result = export(runner, run)
    assert result.exit_code == 2
    assert "drunet did not write it" in result.output and "README.md" in result.output
    assert mine.read_text() == "my notes" and not (run / "bioimageio" / "rdf.yaml").exists()
    assert export(runner, run, "--overwrite").exit_code == 0
    assert mine.read_text().startswith("# drunet tiny\n")
    assert export(runner, run).exit_code == 0  # drunet's own files are replaced


def test_the_run_folder_itself_is_not_a_package_folder(runner, tmp_path: Path) -> None:
    run = make_run(tmp_path)
    result = export(runner, run, "--out", str(run))
    assert result.exit_code == 2 and "is the run folder" in result.output


def test_without_the_data_a_synthetic_sample_of_the_training_type(runner, tmp_path) -> None:
    run = make_run(tmp_path)
    shutil.rmtree(tmp_path / "data")
    result = export(runner, run, "--json")
    assert result.exit_code == 0, result.output
    assert "synthetic uint8 image" in json.loads(result.stdout)["sample"]
    test_input = np.load(run / "bioimageio" / "test_input.npy")
    assert test_input.shape == (1, 1, 256, 256) and test_input.dtype == np.uint8


def test_a_2_5d_run_is_refused(runner, tmp_path: Path) -> None:
    run = make_run(tmp_path, model={"in_channels": 3}, data={"context_slices": 1})
    result = export(runner, run)
    assert result.exit_code == 2
    assert "context_slices" in result.output and "--format onnx" in result.output
    assert not (run / "bioimageio").exists()


def test_a_missing_extra_is_one_line_naming_it(runner, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "bioimageio.spec", None)  # import raises ImportError
    result = export(runner, make_run(tmp_path))
    assert result.exit_code == 2
    assert 'pip install "drunet[bioimageio]"' in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_sample_unlike_the_training_images_is_refused(runner, tmp_path: Path) -> None:
    run = make_run(tmp_path)
    rgb = tmp_path / "rgb.png"
    write_image(rgb, np.zeros((64, 64, 3), np.uint8))
    result = export(runner, run, "--sample", str(rgb))
    assert result.exit_code == 2
    assert "has 3 channel(s) but the model takes 1" in result.output and "--sample" in result.output
