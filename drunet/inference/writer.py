"""The writer of :func:`~drunet.inference.loop.predict_images`: post-processing and writing
behind the network, in input order — in a thread of its own with errors handed to the main
thread, or (``threaded=False``, no prefetch) in the caller's thread as each item is put."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from drunet.errors import DrunetError
from drunet.inference.files import OutputOptions, Tally, save_prediction
from drunet.inference.predictor import Predictor
from drunet.outputs import Manifest


@dataclass
class Item:
    """One input on its way: read and normalised, skipped, failed, or predicted (``scores``)."""

    path: Path
    image: np.ndarray | None = None
    tensor: torch.Tensor | None = None  # (1, C, H, W), normalised
    error: Exception | None = None
    skipped: bool = False
    scores: torch.Tensor | None = None  # (K', H, W) probabilities, before post-processing
    read_seconds: float = 0.0
    normalize_seconds: float = 0.0


class Writer:
    """Post-processes and writes predicted inputs in the order they are put."""

    def __init__(
        self,
        predictor: Predictor,
        manifest: Manifest,
        outputs: OutputOptions,
        tally: Tally,
        depth: int,
        threaded: bool = True,
    ) -> None:
        self.predictor, self.manifest, self.outputs, self.tally = (
            predictor,
            manifest,
            outputs,
            tally,
        )
        self.seconds = 0.0
        self.error: BaseException | None = None
        self._queue: queue.Queue[Item | None] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name="drunet-writer", daemon=True)
            self._thread.start()

    def put(self, item: Item | None) -> None:
        """Queue ``item`` (``None``: no more), waiting while the queue is full; raise what the
        writer met (e.g. a full disk) instead of queueing more. Without a thread: write it now."""
        if self._thread is None:
            if item is not None:
                self._write(item)
            return
        while True:
            self.check()
            try:
                self._queue.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def finish(self) -> None:
        """Write everything queued, then raise what the writer met, if anything."""
        self.put(None)
        if self._thread is not None:
            self._thread.join()
        self.check()

    def abort(self) -> None:
        """Finish the file being written, drop the rest (an error or Ctrl-C elsewhere)."""
        if self._thread is None:
            return
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)  # wake a writer waiting for work
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._queue.get()
            if item is None or self._stop.is_set():
                return
            try:
                self._write(item)
            except BaseException as err:  # handed to the main thread, which raises it
                self.error = err
                return

    def _write(self, item: Item) -> None:
        start = time.perf_counter()
        if item.skipped:
            self.tally.skipped(item.path)
        elif item.error is not None:
            self.tally.failed(item.path, item.error)
        else:
            assert item.image is not None and item.scores is not None
            try:  # threshold and clean-ups, as predict_batch does
                prediction = self.predictor.finish(item.scores, self.outputs.probabilities)
            except DrunetError as err:
                self.tally.failed(item.path, err)
            else:
                save_prediction(
                    item.path,
                    item.image,
                    prediction,
                    self.manifest,
                    self.outputs,
                    self.predictor.num_classes,
                    self.tally,
                )
        self.seconds += time.perf_counter() - start
