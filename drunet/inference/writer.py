"""The writer thread of :func:`~drunet.inference.pipeline.predict_pipelined`: post-processing
and writing behind the network, in input order, with errors handed to the main thread."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from drunet.errors import DrunetError
from drunet.inference.files import OutputOptions, PredictionReport, fail, save_prediction
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
    """One thread post-processing and writing predicted inputs in the order they are put."""

    def __init__(
        self,
        predictor: Predictor,
        manifest: Manifest,
        outputs: OutputOptions,
        report: PredictionReport,
        on_done: Callable[[Path], None] | None,
        depth: int,
    ) -> None:
        self.predictor, self.manifest, self.outputs, self.report = (
            predictor,
            manifest,
            outputs,
            report,
        )
        self.on_done = on_done
        self.seconds = 0.0
        self.error: BaseException | None = None
        self._queue: queue.Queue[Item | None] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drunet-writer", daemon=True)
        self._thread.start()

    def put(self, item: Item | None) -> None:
        """Queue ``item`` (``None``: no more), waiting while the queue is full; raise what the
        writer met (e.g. a full disk) instead of queueing more."""
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
        self._thread.join()
        self.check()

    def abort(self) -> None:
        """Finish the file being written, drop the rest (an error or Ctrl-C elsewhere)."""
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
            self.report.skipped.append(item.path)
        elif item.error is not None:
            fail(self.report, item.path, item.error)
        else:
            assert item.image is not None and item.scores is not None
            try:
                # Predictor._finish: threshold and clean-ups, as predict_batch does.
                prediction = self.predictor._finish(item.scores, self.outputs.probabilities)
            except DrunetError as err:
                fail(self.report, item.path, err)
            else:
                save_prediction(
                    item.path,
                    item.image,
                    prediction,
                    self.manifest,
                    self.outputs,
                    self.predictor.num_classes,
                    self.report,
                )
        self.seconds += time.perf_counter() - start
        if self.on_done is not None:
            self.on_done(item.path)
