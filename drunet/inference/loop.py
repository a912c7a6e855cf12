"""The prediction loop: files and folders → masks, overlays and more (:func:`predict_files`).

TIFF stacks (:mod:`~drunet.inference.stack_files`) and, for a 2.5D context model, series of
numbered slices (:mod:`~drunet.inference.slice_files`) go first; every other input goes through
:func:`predict_images`, one loop whatever the prefetch. ``workers`` threads read, decode and
normalise up to ``prefetch`` batches ahead (a bounded window of futures, consumed in input
order), the main thread runs the network on one batch at a time (in pinned memory on CUDA, so
the copy to the GPU does not block), and one writer thread post-processes and writes behind it
(a bounded queue). With ``prefetch=0`` it is the same loop with no threads: each input is read
when the loop reaches it and each batch written before the next is read.

Either way: the same files, the same report in input order and the same ``on_done`` order. The
batches are consecutive inputs of one size (:func:`~drunet.inference.predictor.batches`), every
file is written atomically after its name is claimed in the manifest, a failed input fails alone,
and a folder that refuses writes (full disk, read-only) stops the run. On any error or Ctrl-C the
writer finishes the file it is writing and drops the rest, so only whole files are left;
``--continue`` predicts the others.

Memory with prefetch: besides the current batch, up to ``prefetch`` batches of images and their
normalised copies (a batch of large images is one image), and up to one batch of results waiting
for the writer.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from drunet.atomic import remove_stale_temporaries
from drunet.datasets import read_image
from drunet.errors import DataError, DrunetError
from drunet.inference.channel_files import read_case
from drunet.inference.files import (
    OutputOptions,
    PredictionReport,
    Tally,
    check_no_clobber,
    check_out_dir,
    outputs_exist,
)
from drunet.inference.predictor import Predictor, batches
from drunet.inference.slice_files import predict_series, split_series
from drunet.inference.stack_files import predict_stacks, split_stacks
from drunet.inference.writer import Item, Writer
from drunet.outputs import Manifest

Channels = Mapping[Path, tuple[Path, ...]] | None  # an nnU-Net case's further channel files


def predict_files(
    predictor: Predictor,
    inputs: Iterable[Path],
    out_dir: str | Path,
    on_done: Callable[[Path], None] | None = None,
    outputs: OutputOptions | None = None,
    skip_existing: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    protected: Iterable[Path] = (),
    prefetch: int = 2,
    workers: int = 2,
    extra_channels: Channels = None,
    every_input: Sequence[Path] | None = None,
) -> PredictionReport:
    """Predict each input into ``out_dir``; a bad file is recorded in the report, the rest go on.

    No output may replace an input, the predictor's weights or a file in ``protected``, see
    :func:`~drunet.inference.files.check_no_clobber`; nor, when ``inputs`` is one shard of
    ``every_input``, collide with another shard's. ``prefetch`` and ``workers``: see the
    module docstring (0: no threads; the outputs are the same). ``on_done`` is called once per
    input, in input order (from the writer thread with prefetch); ``on_progress(tiles done,
    tiles)`` while a large image goes through the sliding window.
    """
    inputs, out_dir = list(inputs), Path(out_dir)
    outputs = outputs or OutputOptions()
    check_out_dir(out_dir)
    manifest = Manifest(out_dir)
    weights = [*predictor.weights, *protected]
    weights += [path for paths in (extra_channels or {}).values() for path in paths]
    checked = list(every_input) if every_input is not None else inputs
    check_no_clobber(checked, out_dir, outputs, protected=weights, manifest=manifest)
    remove_stale_temporaries(out_dir)  # half-written files of a killed run
    tally = Tally(on_done=on_done, on_tiles=on_progress)
    context = bool(predictor.context_slices)
    stacks, inputs = split_stacks(inputs, context=context)
    predict_stacks(predictor, stacks, manifest, skip_existing, tally)
    if context:
        series, inputs = split_series(inputs, predictor.config.data.layout.stack)
        predict_series(predictor, series, manifest, outputs, tally, skip_existing)
    predict_images(
        predictor,
        inputs,
        manifest,
        outputs,
        tally,
        skip_existing,
        prefetch,
        workers,
        extra_channels,
    )
    return tally.report


def predict_images(
    predictor: Predictor,
    inputs: Sequence[Path],
    manifest: Manifest,
    outputs: OutputOptions,
    tally: Tally,
    skip_existing: bool = False,
    prefetch: int = 2,
    workers: int = 2,
    extra_channels: Channels = None,
) -> None:
    """Read ahead, predict, write behind (see the module docstring); ``tally.report.timings``
    gets the seconds spent in each stage."""
    start = time.perf_counter()
    timings = {"read": 0.0, "normalize": 0.0, "compute": 0.0, "write": 0.0}
    depth = max(2, predictor.options.batch_size)
    writer = Writer(predictor, manifest, outputs, tally, depth, threaded=prefetch > 0)
    pool: Executor = (
        ThreadPoolExecutor(max(1, workers), thread_name_prefix="drunet-read")
        if prefetch > 0
        else _Inline()
    )

    def load(path: Path) -> Item:
        return _load(predictor, path, skip_existing, manifest.folder, outputs, extra_channels)

    try:
        items = _checked(_read_ahead(predictor, inputs, pool, load, prefetch), writer, timings)
        for group in batches(predictor, items, _size):
            if group[0].image is not None:  # else skipped or failed: in order, alone
                begin = time.perf_counter()
                group = _compute(predictor, group, tally.on_tiles)
                timings["compute"] += time.perf_counter() - begin
            for item in group:
                writer.put(item)
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # reads in flight end soon; none write
        timings["write"] = writer.seconds
        timings["wall"] = time.perf_counter() - start
        tally.report.timings = timings


def _read_ahead(
    predictor: Predictor,
    inputs: Sequence[Path],
    pool: Executor,
    load: Callable[[Path], Item],
    prefetch: int,
) -> Iterator[Item]:
    """The inputs loaded by ``pool``, in input order, up to ``prefetch`` batches ahead (at
    least one input: with no prefetch each is loaded when it is reached)."""
    window: deque[Future[Item]] = deque()
    remaining = iter(inputs)
    largest = (0, 0)  # the largest image read so far decides how many images a batch holds

    def refill() -> None:
        per_batch = predictor.images_per_batch(*largest) if largest[0] else 1
        while len(window) < max(1, prefetch * per_batch):
            if (path := next(remaining, None)) is None:
                return
            window.append(pool.submit(load, path))

    refill()
    while window:
        item = window.popleft().result()
        if item.image is not None:
            height, width = item.image.shape[:2]
            if height * width > largest[0] * largest[1]:
                largest = (height, width)
        refill()
        yield item


def _checked(items: Iterator[Item], writer: Writer, timings: dict[str, float]) -> Iterator[Item]:
    """``items``, raising what the writer met (a full disk) before the next one is predicted;
    their read and normalise times added to ``timings``."""
    for item in items:
        writer.check()
        timings["read"] += item.read_seconds
        timings["normalize"] += item.normalize_seconds
        yield item


def _size(item: Item) -> tuple[int, ...] | None:
    """What an item is batched by: its image's shape; ``None`` for one that is not predicted."""
    return None if item.image is None else item.image.shape


class _Inline(Executor):
    """No threads: each task runs when it is submitted (``prefetch=0``)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


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
        extras = extra_channels.get(path) if extra_channels else None
        image = read_case(path, extras) if extras else read_image(path)
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


def _compute(
    predictor: Predictor, group: list[Item], on_tiles: Callable[[int, int], None] | None
) -> list[Item]:
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
        scores = predictor.scores(batch, on_tiles)
    except DrunetError as err:
        if len(group) > 1:
            return [out for item in group for out in _compute(predictor, [item], on_tiles)]
        return [Item(group[0].path, error=err)]
    for item, score in zip(group, scores, strict=True):
        item.scores, item.tensor = score, None  # the normalised copy is no longer needed
    return group
