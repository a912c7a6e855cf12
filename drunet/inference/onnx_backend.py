"""Run a trained model's ONNX graph in onnxruntime, in place of the PyTorch model.

:func:`onnx_model` turns weights (a run folder, a ``save_pretrained`` folder or a
``.safetensors`` file) into an :class:`OnnxModel`: an ``nn.Module`` without parameters whose
forward takes a float32 ``(N, C, H, W)`` tensor and returns the logits as a tensor, as the
PyTorch model does — so the :class:`~drunet.inference.Predictor` can hold it where it holds its
(fused) model.

The ONNX bytes are made once per weights file (:func:`drunet.conversion.to_onnx`, which takes
tens of seconds) and kept beside the weights as ``<weights>.onnx-cache/<sha256>.onnx`` (the hash
of the weights), written atomically; changed weights have another hash, so their graph is rebuilt
(and the old one removed). Where that folder cannot be written the graph is kept in memory only,
with a warning. Before first use the graph is compared with PyTorch as ``drunet export`` does
(:func:`drunet.conversion.parity`); a difference above the tolerance is a :class:`DrunetError`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from drunet.atomic import atomic_write_bytes
from drunet.checkpoint import load_model, weights_path
from drunet.config import ExperimentConfig
from drunet.conversion import DEFAULT_OPSET, TOLERANCE, Runner, parity, runner, to_onnx
from drunet.errors import DrunetError

log = logging.getLogger(__name__)

CACHE_SUFFIX = ".onnx-cache"
_CACHED_NAME = re.compile(r"[0-9a-f]{64}\.onnx")


def cache_dir(weights: Path) -> Path:
    """``<weights>.onnx-cache``: where the graphs of ``weights`` are kept."""
    return weights.parent / f"{weights.name}{CACHE_SUFFIX}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class OnnxGraph:
    """ONNX bytes of one weights file and where they came from."""

    data: bytes
    path: Path | None  # the cache file, None when kept in memory only
    built: bool  # made now (False: read from the cache)


class OnnxModel(nn.Module):
    """The ONNX graph of a drunet model, run by onnxruntime on the CPU.

    ``forward(x)``: float32 ``(N, C, H, W)`` tensor → logits ``(N, K, H, W)`` float32 tensor on
    ``x``'s device (the graph itself always runs on the CPU, outside autocast and autograd).
    """

    def __init__(
        self, run: Runner, config: ExperimentConfig, weights: Path, graph: OnnxGraph
    ) -> None:
        super().__init__()
        self.run = run
        self.config = config
        self.weights = weights
        self.graph = graph
        self.in_channels = config.model.spec().in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected a (N, {self.in_channels}, H, W) batch, got shape {tuple(x.shape)}"
            )
        array = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        logits = torch.from_numpy(np.asarray(self.run(array)))
        return logits.to(x.device)


def onnx_graph(
    weights: Path, model: nn.Module, in_channels: int, opset: int = DEFAULT_OPSET
) -> OnnxGraph:
    """The cached ONNX bytes of ``weights`` (the file), made from ``model`` if not cached yet."""
    folder = cache_dir(weights)
    cached = folder / f"{file_sha256(weights)}.onnx"
    try:
        return OnnxGraph(cached.read_bytes(), cached, built=False)
    except FileNotFoundError:
        pass
    except OSError as err:
        log.warning("cannot read the cached ONNX graph %s (%s); rebuilding it", cached, err)
    return _build(cached, model, in_channels, opset)


def _build(cached: Path, model: nn.Module, in_channels: int, opset: int) -> OnnxGraph:
    log.info("building the ONNX graph of %s (once per weights file)", cached.parent)
    data = to_onnx(model, in_channels, opset)
    try:
        atomic_write_bytes(cached, data)
    except OSError as err:
        log.warning(
            "cannot cache the ONNX graph in %s (%s); it is kept in memory and rebuilt next time",
            cached.parent,
            err.strerror or err,
        )
        return OnnxGraph(data, None, built=True)
    for stale in cached.parent.iterdir():  # graphs of earlier weights under this name
        if stale != cached and _CACHED_NAME.fullmatch(stale.name):
            stale.unlink(missing_ok=True)
    return OnnxGraph(data, cached, built=True)


def onnx_model(
    weights: str | Path, tolerance: float = TOLERANCE, opset: int = DEFAULT_OPSET
) -> OnnxModel:
    """An :class:`OnnxModel` of the weights at ``weights`` (any form
    :func:`drunet.checkpoint.weights_path` accepts), parity-checked against PyTorch.

    A cached graph that fails the check (or does not load) is rebuilt once; if the fresh graph
    fails too, :class:`DrunetError` says by how much.
    """
    path = weights_path(weights)
    model, config = load_model(path)
    in_channels = config.model.spec().in_channels
    graph = onnx_graph(path, model, in_channels, opset)
    while True:
        problem, run = _check(graph, model, in_channels, tolerance)
        if problem is None and run is not None:
            return OnnxModel(run, config, path, graph)
        if graph.built:
            raise DrunetError(
                f"the ONNX graph of {path} differs from PyTorch: {problem}; use the torch "
                "backend, or report this model's configuration"
            )
        log.warning(
            "the cached ONNX graph %s is not usable (%s); rebuilding it", graph.path, problem
        )
        assert graph.path is not None
        graph = _build(graph.path, model, in_channels, opset)


def _check(
    graph: OnnxGraph, model: nn.Module, in_channels: int, tolerance: float
) -> tuple[str | None, Runner | None]:
    """``(None, runner)`` when the graph loads and agrees with ``model``, else ``(why, None)``."""
    try:
        # As many threads as PyTorch uses, so torch.set_num_threads governs both backends.
        run = runner(graph.data, "onnx", threads=torch.get_num_threads())
    except Exception as err:  # onnxruntime raises its own exception types for a bad graph
        return f"onnxruntime cannot load it ({type(err).__name__}: {err})", None
    result = parity(model, run, in_channels)
    if result.relative > tolerance:
        return (
            f"largest logit difference {result.worst:.3g} (logits up to {result.scale:.3g}; "
            f"relative tolerance {tolerance:g}) on {result.max_abs_diff}"
        ), None
    return None, run
