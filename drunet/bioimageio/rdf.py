"""The package's ``rdf.yaml`` content: a bioimageio.spec 0.5 model description, as plain data.

One input ``raw`` ``(batch, channel, y, x)`` in the sample's pixel type, one output
``probabilities`` ``(batch, channel, y, x)`` float32 of the same height and width. Height and
width are multiples of the model's stride ``m`` (``m + n·m``: drunet pads any other size to a
multiple of ``m`` itself, but a tiler that keeps to the multiples never pays for it).

The output declares no halo: a halo makes the zoo's runtimes pad every image by it on all sides
before the network sees it, which drunet never does (it replicates the bottom and right border up
to the stride), so whole images would no longer give drunet's probabilities.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch

from drunet import __version__
from drunet.bioimageio.processing import Step
from drunet.config import ExperimentConfig

FORMAT_VERSION = "0.5.12"  # the spec version these fields follow (bioimageio.spec 0.5.x)
INPUT_ID, OUTPUT_ID = "raw", "probabilities"
# The zoo's own test compares the package's outputs with the test output within these.
TOLERANCE = {"relative_tolerance": 1e-4, "absolute_tolerance": 1e-4}


# The architectures drunet's networks build on (DOIs only: a URL would be fetched when checked).
CITE = [
    {
        "text": "Ronneberger, Fischer, Brox. U-Net: Convolutional Networks for Biomedical Image "
        "Segmentation. MICCAI 2015",
        "doi": "10.1007/978-3-319-24574-4_28",
    },
    {
        "text": "He, Zhang, Ren, Sun. Deep Residual Learning for Image Recognition. CVPR 2016",
        "doi": "10.1109/CVPR.2016.90",
    },
]


@dataclass
class Files:
    """The package's file names (all in the package folder)."""

    documentation: str = "README.md"
    cover: str = "cover.png"
    test_input: str = "test_input.npy"
    test_output: str = "test_output.npy"
    sample_input: str = "sample_input.tif"  # the same tensors for people and viewers
    sample_output: str = "sample_output.tif"
    state_dict: str = "weights.pt"
    torchscript: str = "weights_torchscript.pt"
    onnx: str = "weights.onnx"


@dataclass
class Card:
    """What the user says about the model (the rest comes from the run)."""

    name: str
    description: str
    authors: list[str]
    license: str


def package_name(run_name: str) -> str:
    """A name the spec accepts (letters, digits, ``_+- ()``; 5 to 128 characters)."""
    name = re.sub(r"[^A-Za-z0-9_+\- ()]+", "-", run_name).strip("- ") or "model"
    return f"drunet {name}"[:128] if len(name) < 5 else name[:128]


def describe(
    config: ExperimentConfig,
    card: Card,
    files: Files,
    hashes: dict[str, str],
    pre: list[Step],
    post: list[Step],
    input_dtype: str,
    multiple: int,
    onnx_opset: int | None,
    torchscript: bool,
) -> dict[str, Any]:
    """The rdf content. ``hashes``: SHA-256 of each file by name; a weights format whose file
    is not in it is left out."""
    spec = config.model.spec()

    def file(name: str) -> dict[str, str]:
        return {"source": name, "sha256": hashes[name]}

    size = {"min": multiple, "step": multiple}
    reference = {"tensor_id": INPUT_ID}
    return {
        "type": "model",
        "format_version": FORMAT_VERSION,
        "name": card.name,
        "description": card.description,
        "authors": [{"name": author} for author in card.authors],
        "license": card.license,
        "tags": ["segmentation", "2d", "unet", "drunet", "pytorch"],
        "cite": CITE,
        "documentation": file(files.documentation),
        "covers": [file(files.cover)],
        "inputs": [
            {
                "id": INPUT_ID,
                "description": "raw image, pixels as read from the file",
                "axes": [
                    {"type": "batch"},
                    {"type": "channel", "channel_names": _channel_names(spec.in_channels)},
                    {"type": "space", "id": "y", "size": size},
                    {"type": "space", "id": "x", "size": size},
                ],
                "data": {"type": input_dtype},
                "test_tensor": file(files.test_input),
                "sample_tensor": file(files.sample_input),
                "preprocessing": pre,
            }
        ],
        "outputs": [
            {
                "id": OUTPUT_ID,
                "description": _output_meaning(spec.out_channels),
                "axes": [
                    {"type": "batch"},
                    {"type": "channel", "channel_names": _class_names(config, spec.num_classes)},
                    {"type": "space", "id": "y", "size": {**reference, "axis_id": "y"}},
                    {"type": "space", "id": "x", "size": {**reference, "axis_id": "x"}},
                ],
                "data": {"type": "float32", "range": [0.0, 1.0]},
                "test_tensor": file(files.test_output),
                "sample_tensor": file(files.sample_output),
                "postprocessing": post,
            }
        ],
        "weights": _weights(config, files, hashes, onnx_opset, torchscript),
        "config": {
            "bioimageio": {"reproducibility_tolerance": [TOLERANCE]},
            "drunet": {"version": __version__, "model": spec.name, "params": _plain(spec.kwargs)},
        },
    }


def _weights(
    config: ExperimentConfig,
    files: Files,
    hashes: dict[str, str],
    onnx_opset: int | None,
    torchscript: bool,
) -> dict[str, Any]:
    spec = config.model.spec()
    torch_version = torch.__version__.split("+")[0]
    weights: dict[str, Any] = {
        "pytorch_state_dict": {
            "source": files.state_dict,
            "sha256": hashes[files.state_dict],
            "architecture": {
                "callable": "create_model",
                "import_from": "drunet.models.registry",
                "kwargs": {
                    "name": spec.name,
                    "in_channels": spec.in_channels,
                    "out_channels": spec.out_channels,
                    **_plain(spec.kwargs),
                },
            },
            "pytorch_version": torch_version,
            "comment": f"needs drunet (pip install drunet=={__version__})",
        }
    }
    if torchscript:
        weights["torchscript"] = {
            "source": files.torchscript,
            "sha256": hashes[files.torchscript],
            "pytorch_version": torch_version,
            "parent": "pytorch_state_dict",
        }
    if onnx_opset is not None:
        weights["onnx"] = {
            "source": files.onnx,
            "sha256": hashes[files.onnx],
            "opset_version": onnx_opset,
            "parent": "pytorch_state_dict",
        }
    return weights


def _channel_names(channels: int) -> list[str]:
    if channels == 3:
        return ["red", "green", "blue"]
    return ["intensity"] if channels == 1 else [f"channel{c}" for c in range(channels)]


def _class_names(config: ExperimentConfig, num_classes: int) -> list[str]:
    names = config.data.masks.class_names or [f"class {k}" for k in range(num_classes)]
    return [str(names[1])] if num_classes == 2 else [str(name) for name in names]


def _output_meaning(out_channels: int) -> str:
    if out_channels == 1:
        return "foreground probability (sigmoid); foreground where > 0.5"
    return "class probabilities (softmax); the mask is their argmax"


def _plain(value: Any) -> Any:
    """Tuples as lists, for YAML that any reader loads."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
