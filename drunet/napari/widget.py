"""The *Segment* dock widget: a drunet model segments the selected image layer into Labels.

The model is a run folder (its best weights), a ``save_pretrained`` folder or a ``.safetensors``
file; it is loaded, and the layer segmented (:func:`drunet.napari.volume.segment`), in a worker
thread (``napari.qt.threading``), so the viewer never waits. Progress counts a stack's slices, or
a large image's sliding-window tiles. The result is the Labels layer ``<image> labels`` (replaced
when segmented again), on the image's scale and position. A user mistake — a folder without
weights, an image of the wrong channel count, a lone slice for a 2.5D model — is shown in the
widget, never raised into the viewer.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drunet.checkpoint import weights_path
from drunet.errors import DrunetError
from drunet.inference import Predictor
from drunet.napari.volume import LayerVolume, layer_volume, segment

try:
    from napari.layers import Image, Labels
    from napari.qt.threading import FunctionWorker, create_worker
    from qtpy.QtCore import Signal
    from qtpy.QtWidgets import (
        QComboBox,
        QFileDialog,
        QFormLayout,
        QHBoxLayout,
        QLabel,
        QLineEdit,
        QProgressBar,
        QPushButton,
        QWidget,
    )
except ImportError as err:  # also qtpy's error when no Qt binding is installed
    raise DrunetError(
        f'the napari plugin needs napari and a Qt binding ({err}): pip install "drunet[napari]"'
    ) from None

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """The widget was closed while it segmented: the worker stops at the next slice or tile."""


@dataclass(frozen=True)
class Target:
    """Where the Labels go: the image layer's name and placement, taken when the run starts."""

    name: str
    scale: tuple[float, ...]
    translate: tuple[float, ...]

    @property
    def labels_name(self) -> str:
        return f"{self.name} labels"


class SegmentWidget(QWidget):
    """Model folder, image layer, *Segment* button, progress bar and a status line."""

    # (done, total) from the worker thread; Qt queues it to the widget's (main) thread.
    progressed = Signal(int, int)

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("run folder, save_pretrained folder or .safetensors")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.model_edit)
        row.addWidget(browse)
        self.layer_box = QComboBox()
        self.run_button = QPushButton("Segment")
        self.run_button.clicked.connect(self.segment)
        self.progress = QProgressBar()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        form = QFormLayout(self)
        form.addRow("Model", row)
        form.addRow("Image", self.layer_box)
        form.addRow(self.run_button)
        form.addRow(self.progress)
        form.addRow(self.status)
        self.progressed.connect(self._show_progress)
        self.worker: FunctionWorker | None = None
        self._cancel = threading.Event()
        self._predictor: Predictor | None = None
        self._predictor_key: tuple[Path, int] | None = None
        self._started = 0.0
        for event in ("inserted", "removed", "reordered"):
            getattr(self.viewer.layers.events, event).connect(self._refresh_layers)
        self._refresh_layers()

    # ------------------------------------------------------------------ the controls

    def image_layers(self) -> list[Image]:
        return [layer for layer in self.viewer.layers if isinstance(layer, Image)]

    def _refresh_layers(self, event: object = None) -> None:
        for layer in self.image_layers():  # a renamed layer keeps its place in the list
            layer.events.name.connect(self._refresh_layers)  # (napari connects a callback once)
        names = [layer.name for layer in self.image_layers()]
        current = self.layer_box.currentText()
        active = self.viewer.layers.selection.active
        self.layer_box.clear()
        self.layer_box.addItems(names)
        if current in names:
            self.layer_box.setCurrentText(current)
        elif isinstance(active, Image):
            self.layer_box.setCurrentText(active.name)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A drunet run or save_pretrained folder")
        if folder:
            self.model_edit.setText(folder)

    def _show_progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(total)
        self.progress.setValue(done)

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setStyleSheet("color: #e06c5c;" if error else "")
        self.status.setText(text)

    # ------------------------------------------------------------------ segmenting

    def segment(self) -> FunctionWorker | None:
        """Start segmenting the chosen layer; the worker (``None`` when nothing started: the
        reason is in the status line). Waiting for it is the caller's choice (tests do)."""
        if self.worker is not None and self.worker.is_running:
            return self.worker
        try:
            volume, target = self._chosen()
        except DrunetError as err:
            self._say(str(err), error=True)
            return None
        self._cancel.clear()
        self._started = time.perf_counter()
        self.run_button.setEnabled(False)
        self.progress.setMaximum(volume.count)
        self.progress.setValue(0)
        self._say(f"segmenting {volume.name!r}…")
        self.worker = create_worker(
            self._work,
            self.model_edit.text().strip(),
            volume,
            _connect={
                "returned": lambda result: self._done(target, result),
                "errored": self._failed,
                "finished": lambda: self.run_button.setEnabled(True),
            },
        )
        return self.worker

    def _chosen(self) -> tuple[LayerVolume, Target]:
        if not self.model_edit.text().strip():
            raise DrunetError("choose a model: a run folder, a save_pretrained folder or weights")
        name = self.layer_box.currentText()
        if not name or name not in self.viewer.layers:
            raise DrunetError("no image layer to segment: open an image first")
        layer = self.viewer.layers[name]
        if layer.multiscale:
            raise DrunetError(
                f"layer {name!r} is multiscale; segment the file with `drunet predict` "
                "(it tiles large images) and open the mask here"
            )
        target = Target(name, tuple(layer.scale), tuple(layer.translate))
        return layer_volume(name, layer.data, layer.rgb), target

    def _work(self, model: str, volume: LayerVolume) -> np.ndarray | DrunetError | None:
        """In the worker thread: the mask, the user's mistake (shown), or ``None`` (closed)."""
        try:
            return segment(self._load(model), volume, self._report)
        except DrunetError as err:
            return err
        except Cancelled:
            return None

    def _load(self, model: str) -> Predictor:
        """The predictor of ``model``, loaded once (again when its weights file changes)."""
        path = weights_path(Path(model).expanduser())
        key = (path.resolve(), path.stat().st_mtime_ns)
        if self._predictor is None or self._predictor_key != key:
            self._predictor = Predictor.from_run(path, device=None)  # None: $DRUNET_DEVICE
            self._predictor_key = key
        return self._predictor

    def _report(self, done: int, total: int) -> None:
        if self._cancel.is_set():
            raise Cancelled
        try:
            self.progressed.emit(done, total)
        except RuntimeError:  # Qt deleted the widget (the viewer closed): stop
            raise Cancelled from None

    def _done(self, target: Target, result: np.ndarray | DrunetError | None) -> None:
        if result is None:  # stopped: the widget was closed
            self._say("stopped")
            return
        if isinstance(result, DrunetError):
            log.warning("drunet: %s", result)
            self._say(str(result), error=True)
            return
        layers = self.viewer.layers
        name = target.labels_name
        if name in layers and isinstance(layers[name], Labels):
            layers[name].data = result
        else:
            self.viewer.add_labels(
                result, name=name, scale=target.scale, translate=target.translate
            )
        seconds = time.perf_counter() - self._started
        slices = f"{len(result)} slices" if result.ndim == 3 else "1 image"
        self._say(f"{name}: {slices} segmented in {seconds:.1f} s")

    def _failed(self, err: Exception) -> None:
        """A bug, not a user mistake: napari shows its traceback; the widget says so too."""
        self._say(f"segmentation failed ({type(err).__name__}: {err})", error=True)

    def closeEvent(self, event: Any) -> None:  # Qt names its handlers in camelCase
        self._cancel.set()
        super().closeEvent(event)
