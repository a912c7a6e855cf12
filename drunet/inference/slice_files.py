"""Folders of numbered 2D slices in ``drunet predict`` with a 2.5D context model.

A run trained with ``data.context_slices: k > 0`` takes each slice with its ``k`` neighbours on
each side. Among the inputs, the files of one folder whose stems are one prefix followed by a
number (``00.png … 29.png``, ``z1.png … z40.png``, ``scan_007.tif``) form a series, in natural
numeric order of that number (``z2`` before ``z10``). Each series of two or more files goes
through :meth:`Predictor.predict_slices` in that order, so every slice gets the neighbours it
had in training (edges replicated), and gets ``<stem>_mask.png`` and, as for plain images,
``<stem>_overlay.png`` and ``<stem>_color.png``; no ``<stem>_probs.tif`` (the series is
predicted to masks). A file in no series is predicted alone (and a context model refuses it: it
has no neighbours).

A run trained with ``data.layout.stack`` (e.g. ``"{name}_z{index}"``) groups by that pattern
instead, as in training: the files of one folder naming the same stack are a series in index
order, and files off the pattern are predicted alone.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from drunet.datasets.stack_names import match_slice
from drunet.errors import DrunetError
from drunet.inference.files import OutputOptions, Tally, outputs_exist, save_prediction
from drunet.inference.postprocess import Prediction
from drunet.inference.predictor import Predictor
from drunet.outputs import Manifest

_NUMBERED = re.compile(r"(?P<prefix>.*?)(?P<index>\d+)")


def split_series(
    inputs: list[Path], pattern: str | None = None
) -> tuple[list[list[Path]], list[Path]]:
    """``(series, others)``: the inputs grouped by folder and stem prefix (or, with a
    ``data.layout.stack`` ``pattern``, by the stack the stem names) into series of two or more
    numbered slices, each in numeric order of its number, and the remaining inputs."""
    groups: dict[tuple[Path, str], list[tuple[int, str, Path]]] = {}
    for path in inputs:
        found = _series_key(path.stem, pattern)
        if found is not None:
            key, index = (path.parent, found[0]), found[1]
            groups.setdefault(key, []).append((index, path.name, path))
    series = [[path for _, _, path in sorted(group)] for group in groups.values() if len(group) > 1]
    chosen = {path for files in series for path in files}
    return series, [path for path in inputs if path not in chosen]


def _series_key(stem: str, pattern: str | None) -> tuple[str, int] | None:
    """``(series name, slice number)`` of a file stem, or None when it is in no series."""
    if pattern is not None:
        numbered = match_slice(stem, pattern)
        return None if numbered is None else (numbered.stack, numbered.index)
    match = _NUMBERED.fullmatch(stem)
    if match is None or not match["index"].isascii():
        return None
    return match["prefix"], int(match["index"])


def predict_series(
    predictor: Predictor,
    series: list[list[Path]],
    manifest: Manifest,
    outputs: OutputOptions,
    tally: Tally,
    skip_existing: bool = False,
) -> None:
    """Predict each series slice by slice with its context into ``manifest.folder``, writing
    each slice's outputs as soon as it is predicted (memory holds ``2k+1`` slices, and each file
    is read once). A slice that cannot be read or predicted fails with the rest of its series
    (the slices before it are written); the other series go on. With ``skip_existing``, a
    series whose slices all have their outputs is skipped."""
    outputs = dataclasses.replace(outputs, probabilities=False)
    for files in series:
        if skip_existing and all(outputs_exist(p, manifest.folder, outputs) for p in files):
            for path in files:
                tally.skipped(path)
            continue
        slices = predictor.iter_slices(files)
        for position, path in enumerate(files):
            try:  # reading or predicting; writing errors (a full disk) stop the run as elsewhere
                _, image, mask = next(slices)
            except (DrunetError, ValueError, OSError) as err:
                for rest in files[position:]:  # the slices before are written already
                    tally.failed(rest, err)
                break
            prediction = Prediction(mask, None)
            save_prediction(
                path, image, prediction, manifest, outputs, predictor.num_classes, tally
            )
