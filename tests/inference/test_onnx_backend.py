"""The onnxruntime backend: graph cached beside the weights by hash, reused, rebuilt when the
weights change or the cache is bad, memory-only where it cannot be written, parity-checked."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest
import torch

import drunet.inference.onnx_backend as backend
from drunet.checkpoint import build_model, save_weights
from drunet.config import ExperimentConfig, config_from_dict
from drunet.conversion import TOLERANCE
from drunet.errors import DrunetError
from drunet.inference.onnx_backend import OnnxModel, cache_dir, onnx_model
from tests.conftest import randomise_batch_norms


def tiny_weights(path: Path, seed: int = 1) -> tuple[torch.nn.Module, ExperimentConfig]:
    torch.manual_seed(seed)
    config = config_from_dict(
        {
            "model": {
                "in_channels": 1,
                "num_classes": 2,
                "params": {"init_features": 4, "depth": 2},
            },
            "data": {"normalization": {"mean": [0.5], "std": [0.25], "clip_percentiles": None}},
        }
    )
    model = randomise_batch_norms(build_model(config).eval(), seed=seed)
    save_weights(path, model, config)
    return model, config


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module, OnnxModel]:
    weights = tmp_path_factory.mktemp("run") / "best.safetensors"
    model, _ = tiny_weights(weights)
    return weights, model, onnx_model(weights.parent)  # a run folder stands for its weights


@pytest.fixture
def to_onnx_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = backend.to_onnx

    def counting(*args, **kwargs) -> bytes:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(backend, "to_onnx", counting)
    return calls


def test_graph_is_cached_beside_the_weights_under_their_hash(built) -> None:
    weights, _, onnx = built
    cached = cache_dir(weights) / f"{sha256(weights)}.onnx"
    assert cache_dir(weights) == weights.parent / "best.safetensors.onnx-cache"
    assert onnx.graph.path == cached and cached.is_file() and onnx.graph.built
    assert cached.read_bytes() == onnx.graph.data
    assert [p.name for p in cached.parent.iterdir()] == [cached.name]  # no temporary left


def test_second_call_reuses_the_cache(built, to_onnx_calls: list[int]) -> None:
    weights, _, first = built
    assert first.graph.path is not None
    mtime = first.graph.path.stat().st_mtime_ns
    again = onnx_model(weights)
    assert to_onnx_calls == [] and not again.graph.built
    assert again.graph.path == first.graph.path and first.graph.path.stat().st_mtime_ns == mtime


@pytest.mark.parametrize(("batch", "height", "width"), [(1, 64, 64), (2, 45, 70)])
def test_outputs_equal_pytorch(built, batch: int, height: int, width: int) -> None:
    _, model, onnx = built
    x = torch.randn(batch, 1, height, width, generator=torch.Generator().manual_seed(height))
    with torch.no_grad():
        expected = model(x)
    got = onnx(x)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    assert got.shape == expected.shape == (batch, 1, height, width)
    scale = max(1.0, float(expected.abs().max()))
    assert float((got - expected).abs().max()) / scale <= TOLERANCE


def test_is_a_module_the_predictor_can_hold(built) -> None:
    _, _, onnx = built
    assert isinstance(onnx, torch.nn.Module) and not list(onnx.parameters())
    assert onnx.to("cpu").eval() is onnx and onnx.config.model.spec().in_channels == 1
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        onnx(torch.zeros(1, 3, 8, 8))


def test_changed_weights_are_rebuilt_and_the_stale_graph_removed(
    tmp_path: Path, to_onnx_calls: list[int]
) -> None:
    weights = tmp_path / "model.safetensors"
    tiny_weights(weights, seed=1)
    old = onnx_model(weights).graph.path
    model, _ = tiny_weights(weights, seed=2)  # retrained: same name, new content
    new = onnx_model(weights)
    assert to_onnx_calls == [1, 1] and new.graph.built
    assert new.graph.path == cache_dir(weights) / f"{sha256(weights)}.onnx" != old
    assert old is not None and not old.exists()
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(new(x), model(x), atol=TOLERANCE)


def _copy_weights(built, tmp_path: Path) -> Path:
    weights = tmp_path / "best.safetensors"
    weights.write_bytes(built[0].read_bytes())
    return weights


def _fake_to_onnx(monkeypatch: pytest.MonkeyPatch, data: bytes) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(backend, "to_onnx", lambda *a, **k: calls.append(1) or data)
    return calls


def test_unwritable_cache_falls_back_to_memory(
    built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    weights = _copy_weights(built, tmp_path)
    calls = _fake_to_onnx(monkeypatch, built[2].graph.data)
    cache_dir(weights).write_text("a file where the cache folder would go")
    with caplog.at_level(logging.WARNING, logger=backend.__name__):
        onnx = onnx_model(weights)
    assert calls == [1] and onnx.graph.path is None and onnx.graph.built
    assert "cannot cache the ONNX graph" in caplog.text and "kept in memory" in caplog.text
    assert onnx(torch.zeros(1, 1, 16, 16)).shape == (1, 1, 16, 16)


def test_damaged_cache_is_rebuilt(built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = _copy_weights(built, tmp_path)
    cached = cache_dir(weights) / f"{sha256(weights)}.onnx"
    cached.parent.mkdir()
    cached.write_bytes(b"not an onnx graph")
    calls = _fake_to_onnx(monkeypatch, built[2].graph.data)
    onnx = onnx_model(weights)
    assert calls == [1] and onnx.graph.built and cached.read_bytes() == built[2].graph.data


def test_a_graph_that_differs_from_pytorch_is_refused(
    built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = tmp_path / "other.safetensors"
    tiny_weights(weights, seed=3)  # other weights: the fixture's graph does not match them
    _fake_to_onnx(monkeypatch, built[2].graph.data)
    with pytest.raises(DrunetError, match="differs from PyTorch"):
        onnx_model(weights)
