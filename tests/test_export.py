"""Export: ONNX (onnxruntime parity at two sizes, opset, sidecar) and torch.export programs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import drunet.export as export_module
from drunet.checkpoint import build_model
from drunet.config import config_from_dict
from drunet.conversion import DEFAULT_OPSET, logits_to_mask
from drunet.errors import DrunetError
from drunet.export import export_model
from drunet.export_checks import check_opset, check_target, opset_range
from tests.conftest import randomise_batch_norms


def tiny(in_channels: int, num_classes: int, **params: object):
    torch.manual_seed(0)
    config = config_from_dict(
        {
            "model": {
                "in_channels": in_channels,
                "num_classes": num_classes,
                "params": {"init_features": 4, "depth": 2, **params},
            },
            "data": {
                "normalization": {
                    "mean": [0.4] * in_channels,
                    "std": [0.2] * in_channels,
                    "clip_percentiles": None,
                },
                "masks": {"class_names": [f"c{i}" for i in range(num_classes)]},
            },
        }
    )
    model = randomise_batch_norms(build_model(config).eval())
    return model, config


@pytest.fixture(scope="module")
def onnx_export(tmp_path_factory: pytest.TempPathFactory):
    # Multi-class RGB with SE attention and depth 3 (binary grayscale: tests/cli/test_export.py).
    model, config = tiny(3, 4, se_reduction=2, depth=3)
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    return model, config, export_model(model, config, path, "onnx")


def _run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": x})[0]


def test_onnx_file_is_valid_with_the_stated_opset_and_dynamic_axes(onnx_export) -> None:
    _, _, result = onnx_export
    proto = onnx.load(str(result.path))
    onnx.checker.check_model(proto)
    opsets = {o.domain: o.version for o in proto.opset_import}
    assert opsets[""] == DEFAULT_OPSET == result.opset == 18
    (graph_input,) = proto.graph.input
    dims = graph_input.type.tensor_type.shape.dim
    assert graph_input.name == "image" and len(dims) == 4
    assert dims[1].dim_value == 3  # channels fixed …
    assert all(d.dim_param and not d.dim_value for d in (dims[0], dims[2], dims[3]))  # … rest free
    assert not list(result.path.parent.glob("*.data"))  # weights inside the one file


@pytest.mark.parametrize(("batch", "height", "width"), [(1, 64, 64), (2, 97, 131), (3, 33, 47)])
def test_onnxruntime_matches_pytorch(onnx_export, batch: int, height: int, width: int) -> None:
    model, _, result = onnx_export
    x = torch.randn(batch, 3, height, width, generator=torch.Generator().manual_seed(height))
    with torch.no_grad():
        expected = model(x).numpy()
    got = _run_onnx(result.path, x.numpy())
    assert got.shape == expected.shape == (batch, 4, height, width)
    assert np.abs(got - expected).max() <= 1e-4
    np.testing.assert_array_equal(logits_to_mask(got), logits_to_mask(expected))


def test_export_reports_its_own_parity_check(onnx_export) -> None:
    _, _, result = onnx_export
    assert set(result.parity.max_abs_diff) == {"64x64", "97x131"}
    assert result.parity.worst <= 1e-4 and result.parity.mask_mismatches == 0


def test_sidecar_says_how_to_preprocess_and_read_the_output(onnx_export) -> None:
    _, config, result = onnx_export
    assert result.sidecar == result.path.with_name("model.onnx.json")
    info = json.loads(result.sidecar.read_text())
    assert info["format"] == "onnx" and info["opset"] == 18
    assert info["input"]["shape"] == ["batch", 3, "height", "width"]
    assert info["input"]["normalization"]["mean"] == [0.4] * 3
    assert info["input"]["normalization"]["std"] == [0.2] * 3
    assert info["output"]["shape"] == ["batch", 4, "height", "width"]
    assert "argmax" in info["output"]["meaning"]
    assert info["num_classes"] == 4 and info["class_names"] == ["c0", "c1", "c2", "c3"]
    assert info["parity"]["relative_tolerance"] == 1e-3
    assert info["parity"]["max_abs_logit"] > 0


@pytest.mark.filterwarnings("ignore:No complete tensor found")
def test_torch_export_program_matches_pytorch(tmp_path: Path) -> None:
    model, config = tiny(1, 2)
    result = export_model(model, config, tmp_path / "m.pt2", "pt2")
    assert result.opset is None and result.parity.worst <= 1e-4
    program = torch.export.load(str(result.path)).module()
    for shape in [(1, 1, 64, 64), (2, 1, 97, 131)]:
        x = torch.randn(*shape)
        with torch.no_grad():
            torch.testing.assert_close(program(x), model(x), atol=1e-5, rtol=0)


def test_a_failed_parity_check_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    model, config = tiny(1, 2)
    monkeypatch.setattr(export_module, "to_pt2", lambda model, channels: b"program")
    monkeypatch.setattr(export_module, "runner", lambda data, fmt: None)
    far_off = export_module.Parity({"64x64": 2e-2, "97x131": 2e-5}, scale=10.0)  # 2e-3 relative
    monkeypatch.setattr(export_module, "parity", lambda *args: far_off)
    with pytest.raises(DrunetError, match=r"differs from PyTorch by 0\.02.*nothing was written"):
        export_model(model, config, tmp_path / "m.pt2", "pt2")
    assert list(tmp_path.iterdir()) == []


def test_unknown_format_is_named(tmp_path: Path) -> None:
    model, config = tiny(1, 2)
    with pytest.raises(DrunetError, match="unknown export format 'tflite'.*onnx, pt2"):
        export_model(model, config, tmp_path / "m.tflite", "tflite")  # type: ignore[arg-type]


# ---------------------------------------------------------------- where an export may write


@pytest.fixture
def run(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("best.safetensors", "last.safetensors", "config.yaml", "metrics.csv"):
        (folder / name).write_bytes(b"run file")
    return folder


@pytest.mark.parametrize(
    "out",
    [
        "run/best.safetensors",  # the weights read
        "run/../run/last.safetensors",  # another run file, spelt differently
        "run/state.pt",  # a run file's name, even before it exists
        "run/config",  # its sidecar would be run/config.json (a save_pretrained file)
        "link.onnx",  # a link into the run
    ],
)
def test_check_target_refuses_the_run_being_exported(run: Path, out: str) -> None:
    (run.parent / "link.onnx").symlink_to(run / "metrics.csv")
    with pytest.raises(DrunetError, match="being exported; choose another --out"):
        check_target(run.parent / out, "onnx", run / "best.safetensors")


def test_check_target_replaces_only_its_own_export_of_the_format(run: Path) -> None:
    out = run.parent / "model.onnx"
    check_target(out, "onnx", run / "best.safetensors")  # a new file: fine
    out.write_bytes(b"model")
    with pytest.raises(DrunetError, match=r"model\.onnx exists and drunet did not write it"):
        check_target(out, "onnx")
    Path(f"{out}.json").write_text(json.dumps({"format": "onnx", "drunet": "0.1"}))
    check_target(out, "onnx")  # drunet's earlier export
    with pytest.raises(DrunetError, match="not a pt2 file drunet exported"):
        check_target(out, "pt2")
    check_target(out, "pt2", overwrite=True)


@pytest.mark.parametrize(("opset", "ok"), [(0, False), (17, False), (18, True), (99, False)])
def test_check_opset_takes_the_exporters_range(opset: int, ok: bool) -> None:
    assert opset_range()[0] == 18
    if ok:
        check_opset(opset)
    else:
        with pytest.raises(DrunetError, match=f"--opset {opset} is not supported"):
            check_opset(opset)


@pytest.mark.parametrize(
    ("normalization", "expected"),
    [
        (
            {"window": [-1000, 400], "mean": [0.3], "std": [0.2]},
            "clip to the window [-1000.0, 400.0]",
        ),
        ({"mode": "zscore"}, "(x - mean(x)) / std(x) per image"),
        (
            {"mean": [0.5], "std": [0.25], "clip_low": [0.1], "clip_high": [0.9]},
            "[clip_low, clip_high]",
        ),
    ],
)
def test_sidecar_describes_the_run_s_own_normalisation(normalization: dict, expected: str) -> None:
    config = config_from_dict(
        {"model": {"in_channels": 1, "num_classes": 2}, "data": {"normalization": normalization}}
    )
    assert expected in export_module.describe(config, "onnx", 18, None)["input"]["preprocessing"]
