"""The package's weights as bytes: a PyTorch state dict, a TorchScript trace and ONNX.

The state dict is the reference (the zoo calls the other two its children); the TorchScript
and ONNX graphs are compared with the PyTorch model on inputs of two sizes before anything is
written (:func:`drunet.conversion.parity`), as ``drunet export`` does.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from drunet.conversion import TOLERANCE, Parity, Runner, parity, runner, to_onnx
from drunet.errors import DrunetError

FORMATS: tuple[str, ...] = ("pytorch_state_dict", "torchscript", "onnx")


def state_dict_bytes(model: nn.Module) -> bytes:
    """``torch.save`` of the CPU tensors alone (what ``torch.load(weights_only=True)`` reads)."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def torchscript_bytes(model: nn.Module, in_channels: int) -> bytes:
    """A traced TorchScript module taking any batch, height and width: drunet models pad and
    crop without a size-dependent branch (:mod:`drunet.models.padding`)."""
    example = torch.randn(2, in_channels, 67, 93)  # odd sizes: nothing specialised to 1
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.jit's deprecation and tracer notices
        traced = torch.jit.trace(model.cpu().eval(), example)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
    return buffer.getvalue()


def _torchscript_runner(data: bytes) -> Runner:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.load(io.BytesIO(data))

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(x)).numpy()

    return run


def convert(
    model: nn.Module, in_channels: int, formats: Sequence[str], opset: int
) -> tuple[dict[str, bytes], dict[str, Parity]]:
    """``{format: bytes}`` for ``formats`` and the parity check of each graph format; a graph
    farther from PyTorch than ``TOLERANCE`` (relative to the logits) is an error."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or "pytorch_state_dict" not in formats:
        raise DrunetError(
            f"weights formats {list(formats)}: choose among {', '.join(FORMATS)}, "
            "pytorch_state_dict always included"
        )
    model = model.cpu().eval()
    data = {"pytorch_state_dict": state_dict_bytes(model)}
    checks: dict[str, Parity] = {}
    for format in formats:
        if format == "torchscript":
            data[format] = torchscript_bytes(model, in_channels)
            run = _torchscript_runner(data[format])
        elif format == "onnx":
            data[format] = _onnx_bytes(model, in_channels, opset)
            run = runner(data[format], "onnx")
        else:
            continue
        checks[format] = parity(model, run, in_channels)
        if checks[format].relative > TOLERANCE:
            raise DrunetError(
                f"the {format} weights differ from PyTorch by {checks[format].worst:.3g} "
                f"(logits up to {checks[format].scale:.3g}); nothing was written — leave "
                f"{format} out of the weights formats, or report this model's configuration"
            )
    return data, checks


def _onnx_bytes(model: nn.Module, in_channels: int, opset: int) -> bytes:
    try:
        import onnxruntime  # noqa: F401  (the parity check runs the graph)
        import onnxscript  # noqa: F401  (torch.onnx.export(dynamo=True) needs it)
    except ImportError as err:
        raise DrunetError(
            f"the ONNX weights need onnx, onnxscript and onnxruntime ({err.msg}); install "
            'them with: pip install "drunet[bioimageio]"'
        ) from None
    return to_onnx(model, in_channels, opset)
