"""Export a trained run for deployment: ONNX, or a ``torch.export`` program (``.pt2``).

Both formats take a normalised ``(N, C, H, W)`` float32 batch of any batch size, height and
width and return logits ``(N, K, H, W)`` — one channel for binary models (apply a sigmoid,
foreground where the logit is > 0), else one per class (softmax / argmax). Next to the file,
``<file>.json`` states the format, the ONNX opset, the input and output, the class names and the
normalisation to apply first, so the model can be used without drunet.

The bytes come from :mod:`drunet.conversion`. Before anything is written, the export is run on
random inputs of several sizes and compared with PyTorch (:func:`~drunet.conversion.parity`); a
difference above ``tolerance`` is an error.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from drunet import __version__
from drunet.atomic import atomic_write_bytes, atomic_write_text
from drunet.checkpoint import load_model, resolve_weights
from drunet.config import ExperimentConfig, config_to_dict
from drunet.conversion import (
    DEFAULT_OPSET,
    INPUT_NAME,
    OUTPUT_NAME,
    TOLERANCE,
    Format,
    Parity,
    device_of,
    parity,
    runner,
    to_onnx,
    to_pt2,
)
from drunet.device import resolve_device
from drunet.errors import DrunetError
from drunet.export_checks import FORMATS, check_opset, check_target, claim_target
from drunet.hub.fetch import parse_hub_name


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
    overwrite: bool = False,
) -> ExportResult:
    """Export ``model`` to ``path`` and write ``<path>.json``; both atomically, after the check.

    The graph is made from a CPU copy; ``device`` (``auto``, ``cuda``, …, ``None`` for
    ``$DRUNET_DEVICE``) is where the PyTorch side of the parity check runs. A file at either
    name that drunet did not write is refused before the export unless ``overwrite``.
    """
    if format not in FORMATS:
        raise DrunetError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    path = Path(path)
    if format == "onnx":
        check_opset(opset)
    check_target(path, format, weights, overwrite)
    in_channels = config.model.spec().in_channels
    model = model.eval()
    data = to_onnx(model, in_channels, opset) if format == "onnx" else to_pt2(model, in_channels)
    result = ExportResult(
        path, Path(f"{path}.json"), format, opset if format == "onnx" else None, None
    )
    info = describe(config, format, result.opset, weights)
    if check:
        where = resolve_device(device)
        reference = model if device_of(model) == where else copy.deepcopy(model).to(where)
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
    claim_target(path, overwrite)  # checked again: the export took a while
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
    overwrite: bool = False,
) -> ExportResult:
    """Export a run folder's best weights (or a weights file, a save_pretrained folder or
    ``hf:org/name``, or the latest run).

    ``out`` defaults to ``model.onnx`` / ``model.pt2`` next to the weights (an ``hf:`` model
    needs it: its weights are in the Hugging Face cache); ``device`` is where
    the PyTorch reference of the parity check runs; ``overwrite`` replaces a file drunet did not
    write (see :func:`export_model`).
    """
    if out is None and isinstance(run_or_weights, str) and parse_hub_name(run_or_weights):
        raise DrunetError(
            f"{run_or_weights} lives in the Hugging Face cache: name the exported file with --out"
        )
    weights = resolve_weights(run_or_weights, runs_dir)
    model, config = load_model(weights)
    path = Path(out) if out is not None else weights.parent / f"model.{format}"
    return export_model(
        model,
        config,
        path,
        format,
        opset,
        check,
        weights=weights,
        device=device,
        overwrite=overwrite,
    )
