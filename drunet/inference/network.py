"""Network preparation for prediction: trained modules → what runs on each batch.

:func:`load_networks` reads the weights (one run, an ensemble of runs, or the onnxruntime graph
of one run); :class:`Network` prepares them once and runs them:

* BatchNorm folded into the preceding convs: one pass less over each feature map (≈ 1.25×
  faster DRUNet inference on CPU, benchmarks/bench_models.py). Same outputs to float rounding;
  the trained modules stay untouched.
* bfloat16 on the CPU: a bfloat16 copy of a network without norm layers (all folded) runs
  1.4× (1.0–2.1) as fast as autocast, which casts every weight again on every call
  (bench_inference.py --parts backends). Other networks keep autocast.
* ``torch.compile`` when asked for, with a failing compile turned into one line.
* Several networks (an ensemble, e.g. the folds of a cross-validation) average their
  probabilities.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import cast

import torch
from torch import nn

from drunet.checkpoint import load_model, resolve_weights
from drunet.config import ExperimentConfig
from drunet.datasets.context import context_slices_of
from drunet.device import Precision
from drunet.errors import DrunetError
from drunet.models import fuse_conv_bn

BACKENDS = ("torch", "onnxruntime")


class Network:
    """The prepared networks of a predictor: ``network(x)`` → averaged probabilities."""

    def __init__(self, models: Sequence[nn.Module], precision: Precision, compile: bool) -> None:
        self.precision = precision
        self.compile = compile
        self.fused = [_fused(m) for m in models]
        self.cast_dtype = _cast_dtype(precision, self.fused)
        if self.cast_dtype is not None:
            self.fused = [copy.deepcopy(m).to(self.cast_dtype) for m in self.fused]
        if compile:
            self.fused = [_compiled(m) for m in self.fused]

    def __call__(self, x: torch.Tensor, pad_to: int | None = None) -> torch.Tensor:
        """``(N, C, H, W)`` on the device → probabilities ``(N, K', H, W)`` float32: the
        foreground probability for binary models (``K' = 1``), else one row per class. The
        networks run in the chosen precision; the probabilities are float32 whatever it is, so
        the sliding-window blend accumulates in float32. ``pad_to``: a batch smaller than this
        is padded with zeros to it (one compiled shape for every batch of tiles; eval-mode
        samples do not see each other, so the padding changes no output)."""
        n = len(x)
        if pad_to is not None and n < pad_to:
            x = torch.cat([x, x.new_zeros((pad_to - n, *x.shape[1:]))])
        total: torch.Tensor | None = None
        scope = self.precision.autocast if self.cast_dtype is None else contextlib.nullcontext
        if self.cast_dtype is not None:
            x = x.to(self.cast_dtype)
        for model in self.fused:
            with scope(), _compile_errors(self.compile):
                logits = model(x)[:n]
            logits = logits.float()
            probs = torch.sigmoid(logits) if logits.shape[1] == 1 else torch.softmax(logits, 1)
            total = probs if total is None else total + probs
        assert total is not None
        return total / len(self.fused) if len(self.fused) > 1 else total


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``x`` on ``device``; from pinned host memory without blocking on CUDA, so the copy
    overlaps the GPU's work (a CPU "copy" to the CPU is a no-op either way)."""
    if device.type == "cuda" and x.device.type == "cpu":
        return x.pin_memory().to(device, non_blocking=True)
    return x.to(device)


def load_networks(
    runs: Sequence[str | Path | None], runs_dir: str | Path = "runs", backend: str = "torch"
) -> tuple[list[nn.Module], ExperimentConfig, list[Path]]:
    """``(modules, config, weights files)`` of one run (``None``: the latest in ``runs_dir``)
    or an ensemble of several, any weights form each. The runs of an ensemble must agree on
    what they read and write — channels, classes and normalisation; a mismatch is a
    :class:`DrunetError` naming the two runs. ``backend="onnxruntime"`` runs the exported graph
    of one run (:mod:`drunet.inference.onnx_backend`)."""
    if backend not in BACKENDS:
        raise DrunetError(f"unknown backend {backend!r}; choose torch or onnxruntime")
    if not runs:
        raise DrunetError("an ensemble needs at least one --model")
    if len(runs) > 1 and backend != "torch":
        raise DrunetError("--backend onnxruntime runs one model; drop it for an ensemble")
    weights = [resolve_weights(run, runs_dir) for run in runs]
    if backend == "onnxruntime":
        from drunet.inference.onnx_backend import onnx_model

        onnx = onnx_model(weights[0])
        return [onnx], onnx.config, weights
    loaded = [load_model(path) for path in weights]
    first = loaded[0][1]
    for path, (_, config) in zip(weights[1:], loaded[1:], strict=True):
        if (why := disagreement(first, config)) is not None:
            raise DrunetError(
                f"cannot ensemble {weights[0]} and {path}: {why}; ensemble runs trained on "
                "the same kind of images (e.g. the folds of one cross-validation)"
            )
    return [model for model, _ in loaded], first, weights


def disagreement(a: ExperimentConfig, b: ExperimentConfig) -> str | None:
    """Why two runs cannot share one preprocessing and one output, or ``None``."""
    sa, sb = a.model.spec(), b.model.spec()
    if sa.in_channels != sb.in_channels:
        return f"{sa.in_channels} vs {sb.in_channels} input channels"
    if sa.num_classes != sb.num_classes:
        return f"{sa.num_classes} vs {sb.num_classes} classes"
    if a.data.normalization != b.data.normalization:
        return "their normalisation differs (data.normalization)"
    if (ka := context_slices_of(a.data)) != (kb := context_slices_of(b.data)):
        return f"data.context_slices {ka} vs {kb} (neighbour slices per side)"
    return None


@contextlib.contextmanager
def _compile_errors(compiling: bool) -> Iterator[None]:
    """A failing ``torch.compile`` (no C++ compiler, an unsupported op…) is one line naming
    the way out, not a compiler traceback."""
    try:
        yield
    except torch._dynamo.exc.TorchDynamoException as err:
        if not compiling:
            raise
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise DrunetError(
            f"torch.compile failed ({first}); predict without --compile (compile=False)"
        ) from err


def _compiled(model: nn.Module) -> nn.Module:
    """``torch.compile`` of ``model``; the first call compiles (seconds to a minute)."""
    return cast(nn.Module, torch.compile(model))


def _fused(model: nn.Module) -> nn.Module:
    has_bn = any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    return fuse_conv_bn(model) if has_bn else model


_NORMS = (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm)


def _cast_dtype(precision: Precision, models: list[nn.Module]) -> torch.dtype | None:
    """bfloat16 when the networks may run cast to it (CPU bfloat16, no norm layer left after
    folding: a norm's statistics stay float32 under autocast); else ``None`` (autocast)."""
    if precision.device.type != "cpu" or precision.autocast_dtype != torch.bfloat16:
        return None
    if any(isinstance(m, _NORMS) for model in models for m in model.modules()):
        return None
    return torch.bfloat16
