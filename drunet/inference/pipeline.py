"""The loops behind :func:`~drunet.inference.files.predict_files`.

:func:`predict_sequential` reads a batch of same-sized images, predicts it and writes its outputs
before it reads the next one, so the device idles while files are decoded and encoded.
:func:`predict_pipelined` keeps it busy: ``workers`` threads read, decode and normalise up to
``prefetch`` batches ahead (a bounded window of futures, consumed in input order), the main
thread runs the network on one batch at a time (in pinned memory on CUDA, so the copy to the GPU
does not block), and one writer thread post-processes and writes behind it (a bounded queue).

Both give the same files, the same report in input order and the same ``on_done`` order: the
batches are grouped alike (consecutive inputs of one size, up to ``images_per_batch``), every
file is written atomically after its name is claimed in the manifest, a failed input fails
alone, and a folder that refuses writes (full disk, read-only) stops the run. On any error or
Ctrl-C the writer finishes the file it is writing and drops the rest, so only whole files are
left; ``--continue`` predicts the others.

Memory with prefetch: besides the current batch, up to ``prefetch`` batches of images and their
normalised copies (a batch of large images is one image), and up to one batch of results waiting
for the writer.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from drunet.datasets import read_image
from drunet.errors import DataError, DrunetError
from drunet.inference.channel_files import read_case
from drunet.inference.files import (
    OutputOptions,
    PredictionReport,
    fail,
    outputs_exist,
    save_prediction,
)
from drunet.inference.predictor import Predictor
from drunet.inference.writer import Item, Writer
from drunet.outputs import Manifest

Done = Callable[[Path], None] | None
Progress = Callable[[int, int], None] | None
Channels = Mapping[Path, tuple[Path, ...]] | None  # an nnU-Net case's further channel files


def predict_sequential(
    predictor: Predictor,
    inputs: Sequence[Path],
    manifest: Manifest,
    outputs: OutputOptions,
    report: PredictionReport,
    on_done: Done = None,
    on_progress: Progress = None,
    skip_existing: bool = False,
    extra_channels: Channels = None,
    **_: int,
) -> None:
    """Read, predict and write one batch at a time (see the module docstring)."""
    pending: list[tuple[Path, np.ndarray]] = []

    def done(path: Path) -> None:
        if on_done is not None:
            on_done(path)

    def flush() -> None:
        if pending:
            _predict_group(predictor, list(pending), manifest, outputs, report, done, on_progress)
            pending.clear()

    for path in inputs:
        if skip_existing and outputs_exist(path, manifest.folder, outputs):
            flush()
            report.skipped.append(path)
            done(path)
            continue
        try:
            image = _read(path, extra_channels)
        except DataError as err:
            flush()
            fail(report, path, err)
            done(path)
            continue
        if pending and (
            pending[0][1].shape != image.shape
            or len(pending) >= predictor.images_per_batch(*image.shape[:2])
        ):
            flush()
        pending.append((path, image))
        if not predictor.fits_whole(*image.shape[:2]):
            flush()
    flush()


def _read(path: Path, extra_channels: Channels) -> np.ndarray:
    """An input's image: its file, or an nnU-Net case's channel files stacked."""
    extras = extra_channels.get(path) if extra_channels else None
    return read_case(path, extras) if extras else read_image(path)


def _predict_group(
    predictor: Predictor,
    group: list[tuple[Path, np.ndarray]],
    manifest: Manifest,
    outputs: OutputOptions,
    report: PredictionReport,
    done: Callable[[Path], None],
    on_progress: Progress,
) -> None:
    try:
        predictions = predictor.predict_batch(
            [image for _, image in group],
            sources=[str(path) for path, _ in group],
            return_probabilities=outputs.probabilities,
            on_progress=on_progress,
        )
    except DrunetError as err:
        if len(group) > 1:  # find the bad input; predict the others one by one
            for item in group:
                _predict_group(predictor, [item], manifest, outputs, report, done, on_progress)
            return
        fail(report, group[0][0], err)
        done(group[0][0])
        return
    for (path, image), prediction in zip(group, predictions, strict=True):
        save_prediction(path, image, prediction, manifest, outputs, predictor.num_classes, report)
        done(path)


def _load(
    predictor: Predictor,
    path: Path,
    skip_existing: bool,
    folder: Path,
    outputs: OutputOptions,
    extra_channels: Channels = None,
) -> Item:
    """In a worker thread: the input, decoded and normalised (or why not)."""
    if skip_existing and outputs_exist(path, folder, outputs):
        return Item(path, skipped=True)
    start = time.perf_counter()
    try:
        image = _read(path, extra_channels)
    except DataError as err:
        return Item(path, error=err)
    read = time.perf_counter()
    try:
        tensor = predictor.preprocess(image, str(path))
    except DrunetError as err:
        return Item(path, error=err)
    return Item(
        path, image, tensor, read_seconds=read - start, normalize_seconds=time.perf_counter() - read
    )


def predict_pipelined(
    predictor: Predictor,
    inputs: Sequence[Path],
    manifest: Manifest,
    outputs: OutputOptions,
    report: PredictionReport,
    on_done: Done = None,
    on_progress: Progress = None,
    skip_existing: bool = False,
    prefetch: int = 2,
    workers: int = 2,
    extra_channels: Channels = None,
) -> None:
    """Read ahead in ``workers`` threads, predict, write behind (see the module docstring);
    ``report.timings`` gets the seconds spent in each stage."""
    start = time.perf_counter()
    timings = {"read": 0.0, "normalize": 0.0, "compute": 0.0, "write": 0.0}
    writer = Writer(
        predictor, manifest, outputs, report, on_done, depth=max(2, predictor.options.batch_size)
    )
    pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="drunet-read")
    window: deque[Future[Item]] = deque()
    remaining = iter(inputs)
    largest = (0, 0)  # the largest image read so far decides how many images a batch holds
    group: list[Item] = []

    def refill() -> None:
        per_batch = predictor.images_per_batch(*largest) if largest[0] else 1
        while len(window) < prefetch * per_batch and (path := next(remaining, None)) is not None:
            window.append(
                pool.submit(
                    _load, predictor, path, skip_existing, manifest.folder, outputs, extra_channels
                )
            )

    def flush() -> None:
        if group:
            begin = time.perf_counter()
            predicted = _compute(predictor, list(group), on_progress)
            timings["compute"] += time.perf_counter() - begin
            for item in predicted:
                writer.put(item)
            group.clear()

    try:
        refill()
        while window:
            item = window.popleft().result()
            writer.check()
            timings["read"] += item.read_seconds
            timings["normalize"] += item.normalize_seconds
            if item.image is None:  # skipped or failed: in order, after the batch before it
                flush()
                writer.put(item)
                refill()
                continue
            height, width = item.image.shape[:2]
            if height * width > largest[0] * largest[1]:
                largest = (height, width)
            refill()
            if group and (
                group[0].image.shape != item.image.shape  # type: ignore[union-attr]
                or len(group) >= predictor.images_per_batch(height, width)
            ):
                flush()
            group.append(item)
            if not predictor.fits_whole(height, width):
                flush()
        flush()
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # reads in flight end soon; none write
        timings["write"] = writer.seconds
        timings["wall"] = time.perf_counter() - start
        report.timings = timings


def _compute(predictor: Predictor, group: list[Item], on_progress: Progress) -> list[Item]:
    """Probabilities for a group of same-sized inputs, in one pass when it fits whole; a group
    the network refuses is retried one input at a time, so only the bad one fails."""
    tensors = [item.tensor for item in group if item.tensor is not None]
    try:
        if len(tensors) == 1:
            batch = tensors[0]
        elif predictor.device.type == "cuda":  # pinned: the copy to the GPU does not block
            shape = (len(tensors), *tensors[0].shape[1:])
            batch = torch.cat(tensors, out=torch.empty(shape, pin_memory=True))
        else:
            batch = torch.cat(tensors)
        scores = predictor.scores(batch, on_progress)
    except DrunetError as err:
        if len(group) > 1:
            return [out for item in group for out in _compute(predictor, [item], on_progress)]
        return [Item(group[0].path, error=err)]
    for item, score in zip(group, scores, strict=True):
        item.scores, item.tensor = score, None  # the normalised copy is no longer needed
    return group
