"""The BioImage Model Zoo package of a run: the spec validates it, bioimageio.core's own model
test passes on it offline, and what it computes is drunet's Predictor's output."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml

from drunet.datasets import read_image
from drunet.inference import Predictor
from tests.bioimageio.conftest import make_run

FILES = {
    "rdf.yaml",
    "README.md",
    "cover.png",
    "test_input.npy",
    "test_output.npy",
    "sample_input.tif",
    "sample_output.tif",
    "weights.pt",
    "weights_torchscript.pt",
    "weights.onnx",
}


def test_the_package_holds_its_files_and_the_zip_the_same(package, tiny_run: Path) -> None:
    assert package.folder == tiny_run / "bioimageio"
    assert package.zip == tiny_run / "bioimageio.zip"
    assert {p.name for p in package.folder.iterdir()} == FILES
    with zipfile.ZipFile(package.zip) as archive:
        assert set(archive.namelist()) == FILES
        assert archive.read("weights.pt") == (package.folder / "weights.pt").read_bytes()
    assert package.formats == ["pytorch_state_dict", "torchscript", "onnx"]
    # Checked against PyTorch at 64×64 and 97×131 before writing: float32 rounding at most.
    assert set(package.parity) == {"torchscript", "onnx"}
    for check in package.parity.values():
        assert set(check.max_abs_diff) == {"64x64", "97x131"} and check.worst < 1e-4
        assert check.mask_mismatches == 0
    assert "first validation image" in package.sample
    manifest = (tiny_run / ".drunet-manifest").read_text()
    assert '"bioimageio/rdf.yaml"' in manifest and '"bioimageio.zip"' in manifest


def test_rdf_describes_the_run(package) -> None:
    rdf = yaml.safe_load((package.folder / "rdf.yaml").read_text())
    assert rdf["type"] == "model" and rdf["format_version"].startswith("0.5.")
    assert rdf["authors"] == [{"name": "A. Tester"}] and rdf["license"] == "MIT"
    (inputs,) = rdf["inputs"]
    assert [a["type"] for a in inputs["axes"]] == ["batch", "channel", "space", "space"]
    # DRUNet depth 2, stem stride 2 (the tiny recipe): sizes are multiples of 8.
    assert inputs["axes"][2]["size"] == {"min": 8, "step": 8}
    assert inputs["data"] == {"type": "uint8"}
    (outputs,) = rdf["outputs"]
    assert outputs["axes"][1]["channel_names"] == ["cell"]
    assert outputs["axes"][2] == {
        "type": "space",
        "id": "y",
        "size": {"tensor_id": "raw", "axis_id": "y"},
    }
    assert outputs["postprocessing"][0] == {"id": "sigmoid"}
    assert set(rdf["weights"]) == {"pytorch_state_dict", "torchscript", "onnx"}
    architecture = rdf["weights"]["pytorch_state_dict"]["architecture"]
    assert architecture["import_from"] == "drunet.models.registry"
    assert architecture["kwargs"]["depth"] == 2 and architecture["kwargs"]["out_channels"] == 1


def test_the_test_tensors_are_the_validation_image_and_the_predictors_output(
    package, tiny_run: Path
) -> None:
    image = read_image(package.sample.split()[-1])  # the validation image, 48 × 64
    test_input = np.load(package.folder / "test_input.npy")
    # Centre crop to multiples of the stride 8: all of it.
    assert test_input.shape == (1, 1, 48, 64) and test_input.dtype == np.uint8
    np.testing.assert_array_equal(test_input[0, 0], image[:, :, 0] if image.ndim == 3 else image)
    expected = Predictor.from_run(tiny_run, device="cpu").predict_probabilities(image)[1]
    test_output = np.load(package.folder / "test_output.npy")
    assert test_output.shape == (1, 1, 48, 64) and test_output.dtype == np.float32
    np.testing.assert_allclose(test_output[0, 0], expected, atol=1e-6)
    sample_output = tifffile.imread(package.folder / "sample_output.tif")  # (C, H, W)
    np.testing.assert_array_equal(sample_output, test_output[0])
    # Not a constant map, so the comparison at 1e-6 means something: the values span over a
    # thousand times that tolerance (a 2-epoch tiny run's probabilities vary by ~0.02; their
    # spread depends on the threads that trained it, so no tighter bound holds everywhere).
    assert float(np.ptp(test_output)) > 1e-3


def test_model_card_states_the_data_and_the_best_epochs_scores(package) -> None:
    card = (package.folder / "README.md").read_text()
    assert "## Training" in card and "/data`" in card
    assert "Best epoch 2 of 2 by dice" in card
    assert "| dice | 0.6250 |" in card and "| iou | 0.5000 |" in card
    assert "scale_linear" in card and "fixed_zero_mean_unit_variance" in card


def test_bioimageio_spec_validates_the_zip_offline(package, offline) -> None:
    from bioimageio.spec import load_description
    from bioimageio.spec.model.v0_5 import ModelDescr

    descr = load_description(package.zip, perform_io_checks=True)
    assert isinstance(descr, ModelDescr), descr.validation_summary.format()
    assert descr.validation_summary.status in ("valid-format", "passed")
    warned = [w.msg for d in descr.validation_summary.details for w in d.warnings]
    # FAIR: authors, licence, citations and sample tensors are given; a GitHub user name is not
    # (the spec would look it up on GitHub), and the zoo asks for one at upload.
    assert len(warned) == 1 and "github_user" in warned[0], warned
    assert offline == []  # nothing was fetched


def test_bioimageio_core_model_test_passes_offline(package, offline, bioimageio_cache) -> None:
    from bioimageio.core import test_model

    summary = test_model(package.zip, devices=["cpu"])
    failed = [d.name for d in summary.details if d.status == "failed"]
    assert summary.status == "passed", failed
    reproduced = {d.name for d in summary.details if d.name.startswith("Reproduce test outputs")}
    assert reproduced == {
        f"Reproduce test outputs from test inputs ({w})"
        for w in ("pytorch_state_dict", "torchscript", "onnx")
    }
    assert offline == [] and list(bioimageio_cache.iterdir()) == []


@pytest.mark.parametrize("weight_format", ["pytorch_state_dict", "torchscript", "onnx"])
def test_the_package_predicts_what_drunet_predicts(
    package, tiny_run: Path, offline, weight_format: str
) -> None:
    from bioimageio.core import create_prediction_pipeline, load_description, predict

    image = np.load(package.folder / "test_input.npy")[0].transpose(1, 2, 0)  # (H, W, 1) uint8
    image = np.ascontiguousarray(image[5:45, 3:59])  # 40 × 56: another size
    descr = load_description(package.folder / "rdf.yaml", perform_io_checks=False)
    pipeline = create_prediction_pipeline(descr, weight_format=weight_format, devices=["cpu"])
    raw = image.transpose(2, 0, 1)[None]  # (1, 1, H, W)
    got = predict(model=pipeline, inputs={"raw": raw}).members["probabilities"]  # unloads it
    expected = Predictor.from_run(tiny_run, device="cpu").predict_probabilities(image)[1]
    # float32 through the same network: ONNX Runtime's kernels round differently (≈1e-7).
    np.testing.assert_allclose(got.data.to_numpy()[0, 0], expected, atol=1e-5)


def test_a_multiclass_rgb_package_passes_the_zoo_test(tmp_path: Path, offline) -> None:
    """Softmax, per-channel statistics and RGB input (the state dict alone: a quick export)."""
    from bioimageio.core import test_model

    from drunet.bioimageio import export_bioimageio

    run = make_run(tmp_path, channels=3, classes=3)
    result = export_bioimageio(run, formats=["pytorch_state_dict"])
    rdf = yaml.safe_load((result.folder / "rdf.yaml").read_text())
    (inputs,), (outputs,) = rdf["inputs"], rdf["outputs"]
    assert inputs["axes"][1]["channel_names"] == ["red", "green", "blue"]
    assert inputs["preprocessing"][2] == {
        "id": "fixed_zero_mean_unit_variance",
        "kwargs": {"mean": [0.45] * 3, "std": [0.125] * 3, "axis": "channel"},
    }
    assert outputs["axes"][1]["channel_names"] == ["background", "cell", "nucleus"]
    test_output = np.load(result.folder / "test_output.npy")
    assert test_output.shape == (1, 3, 48, 64)
    np.testing.assert_allclose(test_output.sum(axis=1), 1.0, atol=1e-5)  # a softmax
    summary = test_model(result.zip, devices=["cpu"])
    assert summary.status == "passed", [d.name for d in summary.details if d.status == "failed"]
    assert offline == []
