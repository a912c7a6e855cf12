"""``drunet export RUN --format bioimageio``: a run as a BioImage Model Zoo model package.

The package is a folder (``<run>/bioimageio/`` unless ``out`` says otherwise) and the same files
zipped beside it (``<folder>.zip``, what the zoo, ilastik, deepImageJ, QuPath and napari load):
``rdf.yaml`` (a bioimageio.spec 0.5 model description), the weights as a PyTorch state dict,
TorchScript and ONNX, test input and output tensors made by drunet's :class:`Predictor` from a
sample image (:mod:`drunet.bioimageio.sample`), a cover image and a markdown model card. The
run's normalisation becomes the input's preprocessing (:mod:`drunet.bioimageio.processing`), the
sigmoid or softmax its postprocessing.

Nothing is written until the graphs match PyTorch; the description is validated by
bioimageio.spec before ``rdf.yaml`` and the zip are written. Output names follow the rule of
:mod:`drunet.outputs`: one manifest in the folder's parent names the folder's files and the zip.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import tifffile
import yaml

from drunet.atomic import atomic_write_bytes, atomic_write_text, file_in_the_way, same_file
from drunet.bioimageio.card import cover_png, model_card
from drunet.bioimageio.processing import postprocessing, preprocessing
from drunet.bioimageio.rdf import Card, Files, describe, package_name
from drunet.bioimageio.sample import pick_sample
from drunet.bioimageio.spec import require, validate
from drunet.bioimageio.weights import FORMATS, convert
from drunet.checkpoint import load_model, resolve_weights
from drunet.config import ExperimentConfig
from drunet.conversion import DEFAULT_OPSET, Parity
from drunet.datasets.context import context_slices_of
from drunet.errors import DrunetError
from drunet.export_checks import check_opset
from drunet.inference.options import PredictOptions
from drunet.inference.predictor import Predictor
from drunet.outputs import check_outputs, claim_outputs

RDF = "rdf.yaml"
DEFAULT_LICENSE = "CC-BY-4.0"  # the zoo's usual licence for models; the user chooses


@dataclass
class PackageResult:
    """What :func:`export_bioimageio` wrote and checked."""

    folder: Path
    zip: Path | None
    formats: list[str]
    sample: str  # where the test image came from
    parity: dict[str, Parity] = field(default_factory=dict)


def export_bioimageio(
    run_or_weights: str | Path | None,
    out: str | Path | None = None,
    *,
    runs_dir: str | Path = "runs",
    sample: str | Path | None = None,
    authors: Sequence[str] = (),
    license: str = DEFAULT_LICENSE,
    name: str | None = None,
    description: str | None = None,
    formats: Sequence[str] = FORMATS,
    opset: int = DEFAULT_OPSET,
    zip: bool = True,
    overwrite: bool = False,
) -> PackageResult:
    """Write the BioImage Model Zoo package of a run folder's best weights (or a weights file,
    or the latest run) into the folder ``out`` and, with ``zip``, ``<out>.zip``.

    ``sample``: the image the test tensors are made from (default: the run's first validation
    image); ``authors``, ``license`` (an SPDX id), ``name`` and ``description`` go into the
    description; ``formats``: the weights formats (the PyTorch state dict always). A file drunet
    did not write at one of the names is refused unless ``overwrite``.
    """
    require("bioimageio.spec")
    weights = resolve_weights(run_or_weights, runs_dir)
    run_dir = weights.parent
    folder = Path(out) if out is not None else run_dir / "bioimageio"
    files = Files()
    names = _names(folder, files, formats, zip)
    _check_folder(folder, run_dir)
    check_outputs(folder.parent, names, overwrite=overwrite)
    if "onnx" in formats:
        check_opset(opset)
    model, config = load_model(weights)
    _check_2d(config)
    spec = config.model.spec()
    multiple = int(getattr(model, "multiple", 1))
    found = pick_sample(config, run_dir, sample, multiple)
    dtype = found.image.dtype.name
    pre = preprocessing(config.data.normalization, dtype, spec.in_channels)
    # float32 on the CPU, whole: the reference the zoo's runtimes reproduce
    predictor = Predictor(model, config, "cpu", PredictOptions(precision="fp32"))
    scores = predictor.scores(predictor.preprocess(found.image, found.source))  # (1, K', H, W)
    mask = predictor.finish(scores[0]).mask
    test_input = found.image.transpose(2, 0, 1)[None]  # (1, C, H, W) raw pixels
    test_output = scores.numpy().astype(np.float32)  # (1, K', H, W) probabilities
    data, checks = convert(model, spec.in_channels, formats, opset)
    card = Card(
        name=name or package_name(config.name or run_dir.name),
        description=description or f"drunet {spec.name} segmentation of {run_dir.name}",
        authors=list(authors),
        license=license,
    )
    payload = {
        files.documentation: model_card(
            config, run_dir, card.name, pre, dtype, multiple, found.source
        ).encode(),
        files.cover: cover_png(found.image, mask, spec.num_classes),
        files.test_input: _npy(test_input),
        files.test_output: _npy(test_output),
        files.sample_input: _tiff(test_input[0]),
        files.sample_output: _tiff(test_output[0]),
        files.state_dict: data["pytorch_state_dict"],
        **({files.torchscript: data["torchscript"]} if "torchscript" in data else {}),
        **({files.onnx: data["onnx"]} if "onnx" in data else {}),
    }
    hashes = {n: hashlib.sha256(content).hexdigest() for n, content in payload.items()}
    rdf = describe(
        config,
        card,
        files,
        hashes,
        pre,
        postprocessing(spec.out_channels),
        dtype,
        multiple,
        opset if "onnx" in data else None,
        "torchscript" in data,
    )
    claim_outputs(folder.parent, names, overwrite=overwrite)
    for file_name, content in payload.items():
        atomic_write_bytes(folder / file_name, content)
    validate(rdf, folder)
    text = yaml.dump(rdf, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True)
    atomic_write_text(folder / RDF, text)
    archive = folder.parent / f"{folder.name}.zip" if zip else None
    if archive is not None:
        atomic_write_bytes(archive, _zipped({RDF: text.encode(), **payload}))
    return PackageResult(folder, archive, list(data), found.source, checks)


class _PlainDumper(yaml.SafeDumper):
    """YAML without anchors and aliases (equal sizes are written out twice)."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _names(folder: Path, files: Files, formats: Sequence[str], zip: bool) -> list[str]:
    """The output names, relative to ``folder``'s parent (whose manifest records them)."""
    skipped = {"torchscript", "onnx"} - set(formats)
    inside = [RDF] + [getattr(files, f.name) for f in fields(files) if f.name not in skipped]
    return [f"{folder.name}/{n}" for n in inside] + ([f"{folder.name}.zip"] if zip else [])


def _check_2d(config: ExperimentConfig) -> None:
    if k := context_slices_of(config.data):
        raise DrunetError(
            f"the run takes each slice with {k} neighbour(s) on each side "
            "(data.context_slices); a BioImage Model Zoo package takes one 2D image — export it "
            "with --format onnx instead"
        )


def _check_folder(folder: Path, run_dir: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise DrunetError(f"--out {folder} is a file; the package is a folder: choose another")
    blocker = file_in_the_way(folder.parent)
    if blocker is not None:
        raise DrunetError(f"--out {folder} is inside {blocker}, a file; choose another --out")
    if same_file(folder, run_dir) or folder.resolve() == run_dir.resolve():
        raise DrunetError(
            f"--out {folder} is the run folder; the package needs a folder of its own "
            f"(default {run_dir / 'bioimageio'})"
        )


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _tiff(array: np.ndarray) -> bytes:
    """``(C, H, W)`` as a TIFF (what imageio reads for the spec's sample tensors)."""
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.ascontiguousarray(array))
    return buffer.getvalue()


def _zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, content in members.items():
            archive.writestr(member, content)
    return buffer.getvalue()
