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
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

from drunet.datasets import read_image
from drunet.errors import DrunetError
from drunet.inference.files import (
    OutputOptions,
    PredictionReport,
    fail,
    outputs_exist,
    save_prediction,
)
from drunet.inference.manifest import Manifest
from drunet.inference.predictor import Prediction, Predictor

_NUMBERED = re.compile(r"(?P<prefix>.*?)(?P<index>\d+)")


def split_series(inputs: list[Path]) -> tuple[list[list[Path]], list[Path]]:
    """``(series, others)``: the inputs grouped by folder and stem prefix into series of two or
    more numbered slices, each in numeric order of its number, and the remaining inputs."""
    groups: dict[tuple[Path, str], list[tuple[int, str, Path]]] = {}
    for path in inputs:
        match = _NUMBERED.fullmatch(path.stem)
        if match is not None and match["index"].isascii():
            key = (path.parent, match["prefix"])
            groups.setdefault(key, []).append((int(match["index"]), path.name, path))
    series = [[path for _, _, path in sorted(group)] for group in groups.values() if len(group) > 1]
    chosen = {path for files in series for path in files}
    return series, [path for path in inputs if path not in chosen]


def predict_series(
    predictor: Predictor,
    series: list[list[Path]],
    manifest: Manifest,
    outputs: OutputOptions,
    report: PredictionReport,
    skip_existing: bool = False,
    on_done: Callable[[Path], None] | None = None,
) -> None:
    """Predict each series slice by slice with its context into ``manifest.folder``; a series
    that fails fails each of its files, and the other series go on. With ``skip_existing``, a
    series whose slices all have their outputs is skipped."""
    outputs = dataclasses.replace(outputs, probabilities=False)
    for files in series:
        if skip_existing and all(outputs_exist(p, manifest.folder, outputs) for p in files):
            report.skipped.extend(files)
            for path in files:
                if on_done is not None:
                    on_done(path)
            continue
        try:
            masks = predictor.predict_slices(files)
        except (DrunetError, ValueError, OSError) as err:
            for path in files:
                fail(report, path, err)
                if on_done is not None:
                    on_done(path)
            continue
        for path, mask in zip(files, masks, strict=True):
            image = read_image(path) if outputs.overlay else mask  # the overlay's background
            prediction = Prediction(mask, None)
            save_prediction(
                path, image, prediction, manifest, outputs, predictor.num_classes, report
            )
            if on_done is not None:
                on_done(path)


def prediction_units(files: list[Path], context: bool) -> list[list[Path]]:
    """The inputs as the units ``--shard`` keeps together: for a 2.5D context model a series of
    numbered slices is one unit (its slices need each other), else every file is its own."""
    if not context:
        return [[path] for path in files]
    from drunet.inference.stack_files import split_stacks

    stacks, rest = split_stacks(files, context=True)
    series, others = split_series(rest)
    return [[path] for path in stacks] + series + [[path] for path in others]
