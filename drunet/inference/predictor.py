"""``Predictor``: a trained run → class-index masks, with the run's own preprocessing.

Images up to ``PredictOptions.max_pixels`` go through the network whole (same-sized ones in
batches); larger ones through the sliding window (:mod:`drunet.sliding`) with tiles of
the training patch size. Test-time augmentation (:mod:`drunet.inference.tta`) averages
probabilities; the mask is then thresholded and cleaned up (:mod:`drunet.inference.postprocess`).

The three steps are public, so a caller with its own loop (the folder loop of
:mod:`drunet.inference.loop`, evaluation) runs them itself: :meth:`Predictor.preprocess` (an array
→ its normalised ``(1, C, H, W)`` tensor), :meth:`Predictor.scores` (a batch → probabilities) and
:meth:`Predictor.finish` (probabilities → the mask and, when asked, the class probabilities).
The networks are prepared in :mod:`drunet.inference.network`; reading files, stacks and numbered
slices is :mod:`drunet.inference.volumes`' part.

Memory for an ``H × W`` image with ``C`` channels and ``K`` classes (binary counts 1, as only the
foreground probability is kept): the image as read, its normalised copy ``4·C·H·W`` bytes, and in
the sliding window ``4·(K + 1)·H·W`` bytes of sums — about 1.3 GB for a 10 000 × 10 000
grayscale binary image, plus about 1.2 GB more while it is normalised. Asking for probabilities
adds ``4·K·H·W`` bytes (binary: 2 rows).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

import numpy as np
import torch
from torch import nn

from drunet.config import ExperimentConfig
from drunet.datasets import normalize
from drunet.datasets.context import (
    context_slices_of,
    expand_normalization,
)
from drunet.device import resolve_device, select_precision
from drunet.errors import DrunetError
from drunet.heap import keep_freed_memory
from drunet.inference.network import Network, load_networks, to_device
from drunet.inference.options import PredictOptions
from drunet.inference.postprocess import Prediction, postprocess, to_mask
from drunet.inference.tta import with_tta
from drunet.inference.volumes import FileInputs, ImageInput, Progress
from drunet.sliding import sliding_window

T = TypeVar("T")


class Predictor(FileInputs):
    """Predicts masks with a trained model.

    Normalisation, channel count, number of classes and the tile size come from the
    configuration stored in the weights, so ``Predictor.from_run("runs/my-run").predict(
    "image.png")`` is all it takes. ``options`` (:class:`PredictOptions`) sets tiling, test-time
    augmentation and post-processing.
    """

    def __init__(
        self,
        model: nn.Module | Sequence[nn.Module],
        config: ExperimentConfig,
        device: str | torch.device | None = "auto",
        options: PredictOptions | None = None,
    ) -> None:
        norm = config.data.normalization
        if norm.mode == "dataset" and (norm.mean is None or norm.std is None):
            raise DrunetError(
                "the weights' configuration holds no normalisation (data.normalization.mean/std)"
            )
        self.options = options or PredictOptions()
        self.device = resolve_device(device)
        self.precision = select_precision(self.device, self.options.precision)
        if self.device.type == "cpu":
            keep_freed_memory()  # tile buffers reused: a 2048² image 1.3× faster (heap.py)
        # Several models (an ensemble, e.g. the folds of a cross-validation) average their
        # probabilities; they share this configuration's preprocessing (see from_runs).
        models = [model] if isinstance(model, nn.Module) else list(model)
        self.models = [m.to(self.device).eval() for m in models]
        self.model = self.models[0]
        self.net = Network(self.models, self.precision, self.options.compile)
        self.config = config
        # Clean-ups the options leave unset (None) are the ones stored with the weights: chosen
        # on validation at the end of training (an ensemble: the first run's).
        self.postprocess = self.options.postprocess.resolved(config.postprocess.cleanup())
        spec = config.model.spec()
        self.in_channels = spec.in_channels
        self.num_classes = spec.num_classes
        self.normalization = norm
        # 2.5D context (data.context_slices = k): the network takes a slice with k neighbours on
        # each side, (2k+1)·C channels; the stored one-slice normalisation is tiled over them.
        self.context_slices = context_slices_of(config.data)
        blocks = 2 * self.context_slices + 1
        if self.in_channels % blocks:
            raise DrunetError(
                f"the weights take {self.in_channels} input channels, not a multiple of the "
                f"{blocks} slices of data.context_slices={self.context_slices}"
            )
        self.slice_channels = self.in_channels // blocks
        self.input_normalization = expand_normalization(norm, blocks, self.slice_channels)
        # The weights files read (every run of an ensemble): predict never writes over them.
        self.weights: list[Path] = []

    @property
    def weights_path(self) -> Path | None:
        """The weights file read (an ensemble's first), or ``None`` when built from modules."""
        return self.weights[0] if self.weights else None

    @classmethod
    def from_run(
        cls,
        run_or_weights: str | Path | None = None,
        runs_dir: str | Path = "runs",
        device: str | torch.device | None = "auto",
        options: PredictOptions | None = None,
        backend: str = "torch",
    ) -> Predictor:
        """Load a run folder (its best weights), a ``save_pretrained`` folder, a ``.safetensors``
        file, or (``None``) the latest run. ``device``: ``auto`` (CUDA, then MPS, then CPU),
        ``cpu``, ``cuda``, ``cuda:N``, ``mps``, or ``None`` for ``$DRUNET_DEVICE``.
        ``backend="onnxruntime"`` runs the exported graph (built once, cached beside the weights
        and parity-checked, see :mod:`drunet.inference.onnx_backend`) in float32 on the CPU."""
        if backend == "onnxruntime" and options is not None and options.compile:
            raise DrunetError("--compile compiles the torch network; drop it for onnxruntime")
        models, config, weights = load_networks([run_or_weights], runs_dir, backend)
        if backend == "onnxruntime":  # the graph runs in float32 on the CPU
            device = "cpu"
            options = dataclasses.replace(options or PredictOptions(), precision="fp32")
        predictor = cls(models, config, device, options)
        predictor.weights = weights
        return predictor

    @classmethod
    def from_runs(
        cls,
        runs: Sequence[str | Path],
        device: str | torch.device | None = "auto",
        options: PredictOptions | None = None,
    ) -> Predictor:
        """An ensemble averaging the probabilities of several runs (any weights form each).

        The runs must agree on what they read and write — channels, classes and
        normalisation; a mismatch is a :class:`DrunetError` naming the two runs.
        """
        models, config, weights = load_networks(list(runs))
        predictor = cls(models, config, device, options)
        predictor.weights = weights
        return predictor

    def with_options(self, **changes: Any) -> Predictor:
        """A predictor sharing this one's model, with some :class:`PredictOptions` changed."""
        options = dataclasses.replace(self.options, **changes)
        clone = Predictor(self.models, self.config, self.device, options)
        clone.weights = self.weights
        return clone

    # ------------------------------------------------------------------ preprocessing

    @property
    def tile_size(self) -> int:
        """Sliding-window tile side: the option, else the training patch size."""
        return self.options.tile_size or self.config.data.augmentation.patch_size

    def preprocess(self, image: np.ndarray, source: str = "image") -> torch.Tensor:
        """``(H, W)`` or ``(H, W, C)`` array → normalised ``(1, C, H, W)`` float tensor.

        The tensor may be a strided view (no copy is made of a large image).
        """
        if image.ndim == 2:
            image = image[:, :, None]
        if self.context_slices and image.ndim == 3 and image.shape[2] == self.slice_channels:
            k = self.context_slices
            raise DrunetError(
                f"{source} is one slice, but the model (data.context_slices={k}) takes each "
                f"slice with its {k} neighbour(s) on each side: predict a TIFF stack with "
                "predict_stack, a folder of numbered slices with predict_slices, or pass the "
                f"{2 * k + 1} slices stacked along channels ({self.in_channels} channels)"
            )
        if image.ndim != 3 or image.shape[2] != self.in_channels:
            channels = image.shape[2] if image.ndim == 3 else image.ndim
            raise DrunetError(
                f"{source} has {channels} channel(s) but the model was trained on "
                f"{self.in_channels}; convert the image or use a model trained on such images"
            )
        finite = np.count_nonzero(np.isfinite(image)) if image.dtype.kind == "f" else image.size
        if bad := image.size - finite:
            raise DrunetError(
                f"{source} holds {bad} NaN or infinite value(s); replace them (e.g. with "
                "numpy.nan_to_num) before predicting"
            )
        try:
            x = normalize(image, self.input_normalization, source=source)  # (H, W, C) float32
        except ValueError as err:  # e.g. a 16-bit image for a run that stored no clip window
            raise DrunetError(
                f"{source} cannot be normalised like the training images: {err}"
            ) from None
        return torch.from_numpy(x.transpose(2, 0, 1))[None]

    def fits_whole(self, height: int, width: int) -> bool:
        """Whether an image of this size goes through the network in one piece."""
        tile = self.tile_size
        return height * width <= self.options.max_pixels or (height <= tile and width <= tile)

    def images_per_batch(self, height: int, width: int) -> int:
        """How many whole images of this size share one forward pass."""
        return max(1, min(self.options.batch_size, self.options.max_pixels // (height * width)))

    # ------------------------------------------------------------------ the network

    @torch.inference_mode()
    def network(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` → probabilities ``(N, K', H, W)`` float32 on the model's device:
        the foreground probability for binary models (``K' = 1``), else one row per class.
        See :class:`~drunet.inference.network.Network`."""
        tile, batch = self.tile_size, self.options.batch_size
        # Compiled: a last, smaller batch of tiles is padded to the full batch.
        pad = self.options.compile and x.shape[2:] == (tile, tile)
        return self.net(to_device(x, self.device), batch if pad else None)

    def scores(self, x: torch.Tensor, on_progress: Progress | None = None) -> torch.Tensor:
        """Probabilities ``(N, K', H, W)`` (CPU) of a preprocessed batch ``(N, C, H, W)``,
        whole or tiled by size, with test-time augmentation when it is on."""
        opts = self.options
        tta = with_tta(self.network, opts.tta_flips, opts.tta_rot90)

        def forward(batch: torch.Tensor) -> torch.Tensor:
            # On the device first: the TTA flips then happen there, not as one copy per variant.
            return tta(to_device(batch, self.device))

        height, width = x.shape[2:]
        if self.fits_whole(height, width):
            step = self.images_per_batch(height, width)
            parts = [forward(x[i : i + step].contiguous()).cpu() for i in range(0, len(x), step)]
            return torch.cat(parts)
        tiled = [
            sliding_window(
                image,
                forward,
                self.tile_size,
                opts.overlap,
                opts.batch_size,
                opts.blend,
                on_progress=on_progress,
            )
            for image in x
        ]
        return torch.stack(tiled)

    # ------------------------------------------------------------------ public API

    def finish(self, scores: torch.Tensor, probabilities: bool = False) -> Prediction:
        """``(K', H, W)`` probabilities → mask (thresholded, cleaned up) and full probabilities."""
        post = self.postprocess
        try:
            mask = to_mask(scores, self.num_classes, post.threshold)
        except ValueError as err:
            raise DrunetError(str(err)) from None
        mask = postprocess(mask, post) if post.changes_mask else mask
        probs: np.ndarray | None = None
        if probabilities:
            full = torch.cat([1 - scores, scores]) if scores.shape[0] == 1 else scores
            probs = full.numpy()
        return Prediction(mask, probs)

    def predict_batch(
        self,
        images: Sequence[ImageInput],
        *,
        sources: Sequence[str] | None = None,
        return_probabilities: bool = False,
        on_progress: Progress | None = None,
    ) -> list[Prediction]:
        """Predict several images; those of the same size that fit whole share forward passes.

        Every image is read and checked before any is predicted, so a bad one raises
        ``DrunetError`` naming it (a path, else its entry in ``sources``) without wasting the
        others' work.
        """
        if sources is not None and len(sources) != len(images):
            raise ValueError(f"got {len(images)} images but {len(sources)} sources")
        names = sources or [str(i) if isinstance(i, str | Path) else "image" for i in images]
        arrays = [self.read_input(i) if isinstance(i, str | Path) else i for i in images]
        inputs = [self.preprocess(a, s) for a, s in zip(arrays, names, strict=True)]
        results: list[Prediction | None] = [None] * len(inputs)
        first_of: dict[tuple[int, ...], int] = {}  # same sizes together, in order of appearance
        for index, x in enumerate(inputs):
            first_of.setdefault(tuple(x.shape[2:]), index)
        order = sorted(range(len(inputs)), key=lambda i: first_of[tuple(inputs[i].shape[2:])])
        for indices in batches(self, order, lambda i: tuple(inputs[i].shape[2:])):
            batch = torch.cat([inputs[i] for i in indices])
            for i, scores in zip(indices, self.scores(batch, on_progress), strict=True):
                results[i] = self.finish(scores, return_probabilities)
        return [r for r in results if r is not None]

    @overload
    def predict(
        self,
        image: ImageInput,
        *,
        return_probabilities: Literal[False] = False,
        on_progress: Progress | None = None,
    ) -> np.ndarray: ...

    @overload
    def predict(
        self,
        image: ImageInput,
        *,
        return_probabilities: Literal[True],
        on_progress: Progress | None = None,
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def predict(
        self,
        image: ImageInput,
        *,
        return_probabilities: bool = False,
        on_progress: Progress | None = None,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Class-index mask ``(H, W)`` uint8 (uint16 beyond 256 classes) of an array or a file;
        with ``return_probabilities``, also the probabilities ``(K, H, W)`` float32."""
        (result,) = self.predict_batch(
            [image], return_probabilities=return_probabilities, on_progress=on_progress
        )
        if return_probabilities:
            assert result.probabilities is not None
            return result.mask, result.probabilities
        return result.mask

    def predict_probabilities(self, image: ImageInput) -> np.ndarray:
        """Class probabilities ``(K, H, W)`` float32 (K = number of classes, binary → 2)."""
        return self.predict(image, return_probabilities=True)[1]


def batches(
    predictor: Predictor, items: Iterable[T], shape: Callable[[T], tuple[int, ...] | None]
) -> Iterator[list[T]]:
    """The one batching rule: consecutive items of one ``shape`` (``(H, W, …)``) that fit whole,
    up to ``predictor.images_per_batch``, share a forward pass; an image predicted in tiles,
    or an item without a shape (``None``: nothing to predict), is a group of its own. Groups
    come in item order, each as soon as it is complete."""
    group: list[T] = []
    group_shape: tuple[int, ...] | None = None
    for item in items:
        size = shape(item)
        full = size is not None and len(group) >= predictor.images_per_batch(size[0], size[1])
        if group and (size is None or size != group_shape or full):
            yield group
            group = []
        if size is None:
            yield [item]
            continue
        group.append(item)
        group_shape = size
        if not predictor.fits_whole(size[0], size[1]):
            yield group
            group = []
    if group:
        yield group
