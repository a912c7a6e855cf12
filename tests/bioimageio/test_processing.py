"""The rdf's preprocessing, run by bioimageio.core, reproduces drunet's normalisation: known
arrays with hand-computed values, and drunet's own ``normalize`` on the same pixels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from drunet.bioimageio.processing import postprocessing, preprocessing
from drunet.datasets import NormalizationOptions, normalize
from drunet.errors import DrunetError


def run_preprocessing(folder: Path, steps: list[dict[str, Any]], raw: np.ndarray) -> np.ndarray:
    """``steps`` applied by bioimageio.core's own pipeline set-up to ``raw`` ``(1, C, H, W)``:
    the package's description with its input's preprocessing, type, channels and sizes
    replaced (sample statistics measured as the runtime measures them, before the steps)."""
    from bioimageio.core.digest_spec import create_sample_for_model
    from bioimageio.core.proc_setup import get_pre_and_postprocessing
    from bioimageio.spec import ValidationContext, build_description
    from bioimageio.spec.model.v0_5 import ModelDescr

    rdf = yaml.safe_load((folder / "rdf.yaml").read_text())
    tensor = rdf["inputs"][0]
    tensor.update(preprocessing=steps, data={"type": raw.dtype.name})
    tensor["axes"][1]["channel_names"] = [f"c{i}" for i in range(raw.shape[1])]
    for axis in tensor["axes"][2:]:
        axis["size"] = {"min": 1, "step": 1}  # the known arrays are a few pixels
    del tensor["test_tensor"], rdf["outputs"][0]["test_tensor"]
    context = ValidationContext(root=folder, perform_io_checks=False)
    descr = build_description(rdf, context=context)
    assert isinstance(descr, ModelDescr), descr.validation_summary.format()
    pre, _ = get_pre_and_postprocessing(descr, dataset_for_initial_statistics=[])
    sample = create_sample_for_model(descr, inputs={"raw": raw})
    pre(sample)
    return sample.members["raw"].data.to_numpy()


def drunet_normalize(raw: np.ndarray, norm: NormalizationOptions) -> np.ndarray:
    """drunet's ``normalize`` on ``(1, C, H, W)`` pixels, back in that layout."""
    return normalize(raw[0].transpose(1, 2, 0), norm).transpose(2, 0, 1)[None]


def check(folder: Path, norm: NormalizationOptions, raw: np.ndarray, expected: list) -> None:
    steps = preprocessing(norm, raw.dtype.name, raw.shape[1])
    got = run_preprocessing(folder, steps, raw)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.asarray(expected, np.float32), atol=1e-5)
    np.testing.assert_allclose(got, drunet_normalize(raw, norm), atol=1e-5)


def test_uint16_percentile_window_then_dataset_statistics(package) -> None:
    # u = raw / 65535 = 0, 0.4, 1; clipped per channel to the stored window and stretched,
    # then standardised: channel 0 [0.1, 0.5] → 0, .75, 1 → (v - .5) / .25 = -2, 1, 2;
    # channel 1 [0.2, 0.6] → 0, .5, 1 → (v - .25) / .5 = -.5, .5, 1.5.
    norm = NormalizationOptions(
        clip_percentiles=(1.0, 99.0),
        clip_low=[0.1, 0.2],
        clip_high=[0.5, 0.6],
        mean=[0.5, 0.25],
        std=[0.25, 0.5],
    )
    raw = np.array([[0, 26214, 65535]] * 2, np.uint16).reshape(1, 2, 1, 3)
    check(package.folder, norm, raw, [[[[-2, 1, 2]], [[-0.5, 0.5, 1.5]]]])


def test_int16_window_in_raw_values(package) -> None:
    # CT-like: window [-1000, 400] → 0, 0, .5, 1, 1 → (v - .5) / .25.
    norm = NormalizationOptions(window=(-1000, 400), clip_percentiles=None, mean=[0.5], std=[0.25])
    raw = np.array([-2000, -1000, -300, 400, 1000], np.int16).reshape(1, 1, 1, 5)
    check(package.folder, norm, raw, [[[[-2, -2, 0, 2, 2]]]])


def test_uint8_without_standardisation(package) -> None:
    norm = NormalizationOptions(mode="none", clip_percentiles="auto")  # auto: 8-bit not clipped
    raw = np.array([0, 51, 255], np.uint8).reshape(1, 1, 1, 3)
    check(package.folder, norm, raw, [[[[0, 0.2, 1]]]])


def test_imagenet_statistics_of_an_rgb_pixel(package) -> None:
    norm = NormalizationOptions(mode="imagenet", clip_percentiles=None)
    raw = np.array([255, 0, 102], np.uint8).reshape(1, 3, 1, 1)  # u = 1, 0, 0.4
    expected = [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (0.4 - 0.406) / 0.225]
    check(package.folder, norm, raw, np.reshape(expected, (1, 3, 1, 1)).tolist())


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_zscore_per_image(package, dtype: str) -> None:
    norm = NormalizationOptions(mode="zscore", clip_percentiles=None)
    raw = np.array([10, 20, 30, 40], dtype).reshape(1, 1, 2, 2)
    std = np.sqrt(125.0)  # mean 25, population variance (225 + 25 + 25 + 225) / 4
    steps = preprocessing(norm, dtype, 1)
    assert [s["id"] for s in steps] == ["ensure_dtype", "zero_mean_unit_variance", "ensure_dtype"]
    check(package.folder, norm, raw, (np.array([[[[-15, -5], [5, 15]]]]) / std).tolist())


def test_what_cannot_be_described_is_refused() -> None:
    measured_later = NormalizationOptions(clip_percentiles=(0.5, 99.5), mean=[0.5], std=[0.2])
    with pytest.raises(DrunetError, match="stores no clip window"):
        preprocessing(measured_later, "uint16", 1)
    with pytest.raises(DrunetError, match="1 or 3 channels, not 2"):
        preprocessing(NormalizationOptions(mode="imagenet", clip_percentiles=None), "uint8", 2)
    windowed_zscore = NormalizationOptions(mode="zscore", window=(0, 100), clip_percentiles=None)
    with pytest.raises(DrunetError, match="mode zscore"):
        preprocessing(windowed_zscore, "int16", 1)
    with pytest.raises(DrunetError, match="not uint32"):
        preprocessing(NormalizationOptions(mode="none", clip_percentiles=None), "uint32", 1)


def test_postprocessing_is_a_sigmoid_for_binary_and_a_softmax_else() -> None:
    assert postprocessing(1)[0] == {"id": "sigmoid"}
    assert postprocessing(3)[0] == {"id": "softmax", "kwargs": {"axis": "channel"}}
