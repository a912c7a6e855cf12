"""A trained network as bytes that run without drunet: ONNX or a ``torch.export`` program.

Both take a normalised ``(N, C, H, W)`` float32 batch of any batch size, height and width and
return logits ``(N, K, H, W)``. :func:`runner` runs such bytes on a numpy batch and
:func:`parity` compares a runner with the PyTorch model on random inputs of several sizes.
``drunet export`` (:mod:`drunet.export`) writes them to files; the onnxruntime prediction backend
(:mod:`drunet.inference.onnx_backend`) runs them in place of the PyTorch model.
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

# ONNX goes through ``torch.onnx.export(dynamo=True)`` (the ``torch.export``-based exporter; the
# TorchScript one is deprecated). The graph takes any height and width with no wrapper: drunet
# models pad to their stride and crop back unconditionally (a zero pad when the size fits, a
# negative pad as the crop; drunet.models.padding), so it holds no size-dependent branch.
Format = Literal["onnx", "pt2"]
DEFAULT_OPSET = 18
PARITY_SIZES: tuple[tuple[int, int], ...] = ((64, 64), (97, 131))
# Largest logit difference allowed, relative to the largest logit magnitude (at least 1): deep
# encoders amplify float32 rounding, and PyTorch itself is ~1e-4 from float64 on a ResNet-34.
TOLERANCE = 1e-3
INPUT_NAME, OUTPUT_NAME = "image", "logits"
Runner = Callable[[np.ndarray], np.ndarray]  # (N, C, H, W) float32 → logits


def _cpu_copy(model: nn.Module) -> nn.Module:
    """What is exported: an eval-mode CPU copy (the model itself may live on a GPU)."""
    return copy.deepcopy(model).cpu().eval()


def _example(in_channels: int) -> tuple[torch.Tensor, ...]:
    # Batch 2 and odd sizes: export specialises dimensions of size 0 or 1.
    return (torch.randn(2, in_channels, 67, 93),)


def _dynamic() -> tuple[dict[int, Any], ...]:
    dim = torch.export.Dim.DYNAMIC
    return ({0: dim, 2: dim, 3: dim},)


def to_onnx(model: nn.Module, in_channels: int, opset: int = DEFAULT_OPSET) -> bytes:
    """The model as ONNX bytes (dynamic batch, height and width)."""
    program = torch.onnx.export(
        _cpu_copy(model),
        _example(in_channels),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes=_dynamic(),
        opset_version=opset,
        dynamo=True,
        external_data=False,
        verbose=False,
    )
    if program is None:  # only the TorchScript exporter (dynamo=False) returns nothing
        raise RuntimeError("torch.onnx.export(dynamo=True) returned no ONNX program")
    return program.model_proto.SerializeToString()


def to_pt2(model: nn.Module, in_channels: int) -> bytes:
    """The model as a saved ``torch.export`` program (load with ``torch.export.load``)."""
    program = torch.export.export(
        _cpu_copy(model), _example(in_channels), dynamic_shapes=_dynamic()
    )
    buffer = io.BytesIO()
    with _quiet_pt2():
        torch.export.save(program, buffer)
    return buffer.getvalue()


@contextlib.contextmanager
def _quiet_pt2() -> Iterator[None]:
    # The pt2 archive code warns about weight placement that only matters for GPU programs.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No complete tensor found")
        yield


def runner(data: bytes, format: Format, threads: int | None = None) -> Runner:
    """A function running exported bytes on a numpy batch (onnxruntime for ONNX, on the CPU
    with ``threads`` threads; ``None``: onnxruntime's choice)."""
    if format == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        return lambda x: session.run(None, {INPUT_NAME: x})[0]
    with _quiet_pt2():
        module = torch.export.load(io.BytesIO(data)).module()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(x)).numpy()

    return run


def logits_to_mask(logits: np.ndarray) -> np.ndarray:
    """``(N, K, H, W)`` logits → ``(N, H, W)`` class indices (binary: logit > 0)."""
    return (logits[:, 0] > 0).astype(np.int64) if logits.shape[1] == 1 else logits.argmax(1)


@dataclass
class Parity:
    """Largest absolute logit difference per ``"HxW"`` size, the largest logit magnitude, and
    pixels whose mask differs."""

    max_abs_diff: dict[str, float] = field(default_factory=dict)
    mask_mismatches: int = 0
    scale: float = 0.0  # max |logit| of PyTorch's outputs

    @property
    def worst(self) -> float:
        return max(self.max_abs_diff.values(), default=0.0)

    @property
    def relative(self) -> float:
        """``worst`` relative to the logits' magnitude (at least 1)."""
        return self.worst / max(1.0, self.scale)


def parity(
    model: nn.Module,
    run: Runner,
    in_channels: int,
    sizes: Sequence[tuple[int, int]] = PARITY_SIZES,
    seed: int = 0,
) -> Parity:
    """Compare ``run`` with ``model`` on seeded standard-normal inputs (batch 2) of ``sizes``;
    ``model`` runs on the device its parameters are on (in float32, TF32 off)."""
    result = Parity()
    generator = torch.Generator().manual_seed(seed)
    where = device_of(model)
    for height, width in sizes:
        x = torch.randn(2, in_channels, height, width, generator=generator)
        with torch.no_grad(), _full_float32():
            expected = model.eval()(x.to(where)).float().cpu().numpy()
        got = run(x.numpy())
        result.max_abs_diff[f"{height}x{width}"] = float(np.abs(got - expected).max())
        result.scale = max(result.scale, float(np.abs(expected).max()))
        result.mask_mismatches += int((logits_to_mask(got) != logits_to_mask(expected)).sum())
    return result


@contextlib.contextmanager
def _full_float32() -> Iterator[None]:
    """TF32 off on CUDA while the reference runs: the export is compared with float32."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def device_of(model: nn.Module) -> torch.device:
    """Where ``model``'s parameters are (the CPU for a model without any)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))
