"""Export a trained run for deployment: ONNX, or a ``torch.export`` program (``.pt2``).

Both formats take a normalised ``(N, C, H, W)`` float32 batch of any batch size, height and
width and return logits ``(N, K, H, W)`` — one channel for binary models (apply a sigmoid,
foreground where the logit is > 0), else one per class (softmax / argmax). Next to the file,
``<file>.json`` states the format, the ONNX opset, the input and output, the class names and the
normalisation to apply first, so the model can be used without drunet.

ONNX goes through ``torch.onnx.export(dynamo=True)`` (the ``torch.export``-based exporter; the
TorchScript one is deprecated). The graph takes any height and width with no wrapper: drunet
models pad to their stride and crop back unconditionally (a zero pad when the size fits, a
negative pad as the crop; :mod:`drunet.models.padding`), so it holds no size-dependent branch.

Before anything is written, the export is run on random inputs of several sizes and compared
with PyTorch (:func:`parity`); a difference above ``tolerance`` is an error.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from drunet import __version__
from drunet.atomic import atomic_write_bytes, atomic_write_text
from drunet.checkpoint import load_model, resolve_weights
from drunet.config import ExperimentConfig, config_to_dict
from drunet.device import resolve_device
from drunet.errors import DrunetError
from drunet.export_checks import FORMATS, check_opset, check_target

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


def runner(data: bytes, format: Format) -> Runner:
    """A function running exported bytes on a numpy batch (onnxruntime for ONNX)."""
    if format == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
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
    where = _device_of(model)
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


@dataclass
class ExportResult:
    path: Path
    sidecar: Path
    format: str
    opset: int | None
    parity: Parity | None


def describe(
    config: ExperimentConfig, format: Format, opset: int | None, weights: Path | None
) -> dict[str, Any]:
    """The sidecar JSON: how to feed the exported model and read its output."""
    spec = config.model.spec()
    num_classes, out_channels = spec.num_classes, spec.out_channels
    names = config.data.masks.class_names
    return {
        "format": format,
        "opset": opset,
        "input": {
            "name": INPUT_NAME,
            "shape": ["batch", spec.in_channels, "height", "width"],
            "dtype": "float32",
            "preprocessing": _preprocessing(config),
            "normalization": config_to_dict(config)["data"]["normalization"],
            "context_slices": config.data.context_slices,
        },
        "output": {
            "name": OUTPUT_NAME,
            "shape": ["batch", out_channels, "height", "width"],
            "meaning": (
                "foreground logit: sigmoid for the probability, foreground where > 0"
                if out_channels == 1
                else "class logits: softmax for probabilities, argmax for the mask"
            ),
        },
        "num_classes": num_classes,
        "class_names": names,
        "patch_size": config.data.augmentation.patch_size,
        "model": {"name": spec.name, "params": spec.kwargs},
        "weights": str(weights) if weights is not None else None,
        "drunet": __version__,
        "torch": torch.__version__,
    }


def _preprocessing(config: ExperimentConfig) -> str:
    """How to turn a file's pixels into the model's input, in words (the numbers follow)."""
    norm = config.data.normalization
    steps = [
        "RGB channel order; uint8 / 255 and uint16 / 65535 (signed and float pixels keep "
        "their values)"
    ]
    if norm.window is not None:
        steps.append(f"clip to the window {list(norm.window)} (file values) and stretch to [0, 1]")
    elif norm.clip_low is not None:
        steps.append("clip per channel to [clip_low, clip_high] and stretch to [0, 1]")
    steps.append(
        {
            "dataset": "then (x - mean) / std per channel",
            "zscore": "then (x - mean(x)) / std(x) per image and channel",
            "imagenet": "then (x - mean) / std with ImageNet's statistics",
            "none": "no further scaling",
        }[norm.mode]
    )
    return "; ".join(steps)


def export_model(
    model: nn.Module,
    config: ExperimentConfig,
    path: str | Path,
    format: Format = "onnx",
    opset: int = DEFAULT_OPSET,
    check: bool = True,
    tolerance: float = TOLERANCE,
    weights: Path | None = None,
    device: str | torch.device | None = "cpu",
) -> ExportResult:
    """Export ``model`` to ``path`` and write ``<path>.json``; both atomically, after the check.

    The graph is made from a CPU copy; ``device`` (``auto``, ``cuda``, …, ``None`` for
    ``$DRUNET_DEVICE``) is where the PyTorch side of the parity check runs.
    """
    if format not in FORMATS:
        raise DrunetError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    path = Path(path)
    if format == "onnx":
        check_opset(opset)
    check_target(path, format, weights)
    in_channels = config.model.spec().in_channels
    model = model.eval()
    data = to_onnx(model, in_channels, opset) if format == "onnx" else to_pt2(model, in_channels)
    result = ExportResult(
        path, Path(f"{path}.json"), format, opset if format == "onnx" else None, None
    )
    info = describe(config, format, result.opset, weights)
    if check:
        where = resolve_device(device)
        reference = model if _device_of(model) == where else copy.deepcopy(model).to(where)
        result.parity = parity(reference, runner(data, format), in_channels)
        info["parity"] = {
            "max_abs_diff": result.parity.max_abs_diff,
            "mask_mismatches": result.parity.mask_mismatches,
            "max_abs_logit": result.parity.scale,
            "relative_tolerance": tolerance,
        }
        if result.parity.relative > tolerance:
            raise DrunetError(
                f"the {format} export differs from PyTorch by {result.parity.worst:.3g} "
                f"(logits up to {result.parity.scale:.3g}; relative tolerance {tolerance:g}) on "
                f"{result.parity.max_abs_diff}; nothing was written "
                "— try another --opset, or report this model's configuration"
            )
    # The sidecar first: it is the record that the model file at ``path`` is drunet's export.
    atomic_write_text(result.sidecar, json.dumps(info, indent=2) + "\n")
    atomic_write_bytes(path, data)
    return result


def export_run(
    run_or_weights: str | Path | None,
    out: str | Path | None = None,
    format: Format = "onnx",
    opset: int = DEFAULT_OPSET,
    check: bool = True,
    runs_dir: str | Path = "runs",
    device: str | torch.device | None = "cpu",
) -> ExportResult:
    """Export a run folder's best weights (or a weights file, or the latest run).

    ``out`` defaults to ``model.onnx`` / ``model.pt2`` next to the weights; ``device`` is where
    the PyTorch reference of the parity check runs (see :func:`export_model`).
    """
    weights = resolve_weights(run_or_weights, runs_dir)
    model, config = load_model(weights)
    path = Path(out) if out is not None else weights.parent / f"model.{format}"
    return export_model(model, config, path, format, opset, check, weights=weights, device=device)


def _device_of(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))
