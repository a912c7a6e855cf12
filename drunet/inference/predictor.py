"""``Predictor``: a trained run → class-index masks, with the run's own preprocessing.

Images up to ``PredictOptions.max_pixels`` go through the network whole (same-sized ones in
batches); larger ones through the sliding window (:mod:`drunet.inference.sliding`) with tiles of
the training patch size. Test-time augmentation (:mod:`drunet.inference.tta`) averages
probabilities; the mask is then thresholded and cleaned up (:mod:`drunet.inference.postprocess`).

Memory for an ``H × W`` image with ``C`` channels and ``K`` classes (binary counts 1, as only the
foreground probability is kept): the image as read, its normalised copy ``4·C·H·W`` bytes, and in
the sliding window ``4·(K + 1)·H·W`` bytes of sums — about 1.3 GB for a 10 000 × 10 000
grayscale binary image, plus about 1.2 GB more while it is normalised. Asking for probabilities
adds ``4·K·H·W`` bytes (binary: 2 rows).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, overload

import numpy as np
import torch
from torch import nn

from drunet.checkpoint import load_model, resolve_weights
from drunet.config import ExperimentConfig
from drunet.datasets import Pair, normalize, read_image, read_pair_image
from drunet.datasets.context import (
    context_pairs,
    context_slices_of,
    expand_normalization,
    iter_with_context,
    read_context,
    series_files,
)
from drunet.datasets.stacks import frame_count, page_count
from drunet.device import Precision, resolve_device, select_precision
from drunet.errors import DrunetError
from drunet.heap import keep_freed_memory
from drunet.inference.options import PredictOptions
from drunet.inference.postprocess import postprocess, to_mask
from drunet.inference.sliding import sliding_window
from drunet.inference.tta import with_tta
from drunet.models import fuse_conv_bn

ImageInput = np.ndarray | str | Path
Progress = Callable[[int, int], None]


@dataclass
class Prediction:
    """A class-index mask ``(H, W)`` and, when asked for, the probabilities ``(K, H, W)``."""

    mask: np.ndarray
    probabilities: np.ndarray | None = None


class Predictor:
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
        # BatchNorm folded into the preceding convs: one pass less over each feature map
        # (≈ 1.25× faster DRUNet inference on CPU, benchmarks/bench_models.py). Same outputs to
        # float rounding; ``self.models`` stay the trained modules.
        self.fused_models = [_fused(m) for m in self.models]
        # bfloat16 on the CPU: a bfloat16 copy of a network without norm layers (all folded)
        # runs 1.4× (1.0–2.1) as fast as autocast, which casts every weight again on every call
        # (bench_inference.py --parts backends). Other networks keep autocast.
        self.cast_dtype = _cast_dtype(self.precision, self.fused_models)
        if self.cast_dtype is not None:
            self.fused_models = [copy.deepcopy(m).to(self.cast_dtype) for m in self.fused_models]
        if self.options.compile:
            self.fused_models = [_compiled(m) for m in self.fused_models]
        self.config = config
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
        self.weights_path: Path | None = None

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
        weights = resolve_weights(run_or_weights, runs_dir)
        model: nn.Module
        if backend == "onnxruntime" and options is not None and options.compile:
            raise DrunetError("--compile compiles the torch network; drop it for onnxruntime")
        if backend == "onnxruntime":
            from drunet.inference.onnx_backend import onnx_model

            onnx = onnx_model(weights)
            model, config, device = onnx, onnx.config, "cpu"
            options = dataclasses.replace(options or PredictOptions(), precision="fp32")
        elif backend == "torch":
            model, config = load_model(weights)
        else:
            raise DrunetError(f"unknown backend {backend!r}; choose torch or onnxruntime")
        predictor = cls(model, config, device, options)
        predictor.weights_path = weights
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
        if not runs:
            raise DrunetError("an ensemble needs at least one --model")
        loaded = [(resolve_weights(run), *load_model(resolve_weights(run))) for run in runs]
        first_path, _, first = loaded[0]
        for path, _, config in loaded[1:]:
            if (why := _disagreement(first, config)) is not None:
                raise DrunetError(
                    f"cannot ensemble {first_path} and {path}: {why}; ensemble runs trained on "
                    "the same kind of images (e.g. the folds of one cross-validation)"
                )
        predictor = cls([model for _, model, _ in loaded], first, device, options)
        predictor.weights_path = first_path
        return predictor

    def with_options(self, **changes: Any) -> Predictor:
        """A predictor sharing this one's model, with some :class:`PredictOptions` changed."""
        options = dataclasses.replace(self.options, **changes)
        clone = Predictor(self.models, self.config, self.device, options)
        clone.weights_path = self.weights_path
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
        The network runs in the chosen precision; the probabilities are float32 whatever it is,
        so the sliding-window blend accumulates in float32."""
        x = self._to_device(x)
        n = len(x)
        tile = self.tile_size
        if self.options.compile and n < self.options.batch_size and x.shape[2:] == (tile, tile):
            # The last batch of tiles is padded to the full batch: one compiled shape for all.
            # Eval-mode samples do not see each other, so the padding changes no output.
            x = torch.cat([x, x.new_zeros((self.options.batch_size - n, *x.shape[1:]))])
        total: torch.Tensor | None = None
        scope = self.precision.autocast if self.cast_dtype is None else contextlib.nullcontext
        if self.cast_dtype is not None:
            x = x.to(self.cast_dtype)
        for model in self.fused_models:
            with scope(), _compile_errors(self.options.compile):
                logits = model(x)[:n]
            logits = logits.float()
            probs = torch.sigmoid(logits) if logits.shape[1] == 1 else torch.softmax(logits, 1)
            total = probs if total is None else total + probs
        assert total is not None
        return total / len(self.fused_models) if len(self.fused_models) > 1 else total

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        # Pinned host memory + non_blocking lets the copy overlap the GPU's work; a CPU
        # "copy" to the CPU is a no-op either way.
        if self.device.type == "cuda" and x.device.type == "cpu":
            return x.pin_memory().to(self.device, non_blocking=True)
        return x.to(self.device)

    def scores(self, x: torch.Tensor, on_progress: Progress | None = None) -> torch.Tensor:
        """Probabilities ``(N, K', H, W)`` (CPU) of a preprocessed batch ``(N, C, H, W)``,
        whole or tiled by size, with test-time augmentation when it is on."""
        opts = self.options
        tta = with_tta(self.network, opts.tta_flips, opts.tta_rot90)

        def forward(batch: torch.Tensor) -> torch.Tensor:
            # On the device first: the TTA flips then happen there, not as one copy per variant.
            return tta(self._to_device(batch))

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

    def _finish(self, scores: torch.Tensor, probabilities: bool) -> Prediction:
        """``(K', H, W)`` probabilities → mask (thresholded, cleaned up) and full probabilities."""
        post = self.options.postprocess
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
        arrays = [self._read_one(i) if isinstance(i, str | Path) else i for i in images]
        inputs = [self.preprocess(a, s) for a, s in zip(arrays, names, strict=True)]
        results: list[Prediction | None] = [None] * len(inputs)
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, x in enumerate(inputs):
            key = tuple(x.shape[2:]) if self.fits_whole(*x.shape[2:]) else (-1, index)
            groups.setdefault(key, []).append(index)
        for indices in groups.values():
            batch = torch.cat([inputs[i] for i in indices])
            for i, scores in zip(indices, self.scores(batch, on_progress), strict=True):
                results[i] = self._finish(scores, return_probabilities)
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

    def predict_stack(self, path: str | Path, on_progress: Progress | None = None) -> np.ndarray:
        """Masks ``(Z, H, W)`` of a multi-page TIFF stack, one 2D slice at a time (each page is
        read on its own, so memory holds one slice). ``on_progress(done, total)`` per slice.

        With 2.5D context (``data.context_slices = k``) each page is fed with pages
        ``page ± 1 … k`` (edges replicated, as in training); memory holds ``2k+1`` pages."""
        path = Path(path)
        frames, read = _stack_reader(path)
        series = self._iter_series(frames, read, lambda page: f"{path} page {page}", on_progress)
        return np.stack([mask for _, mask in series])

    def predict_slices(
        self, slices: str | Path | Sequence[str | Path], on_progress: Progress | None = None
    ) -> np.ndarray:
        """Masks ``(Z, H, W)`` of a volume stored as 2D files: a folder of numbered slices
        (every image file's stem an integer, ``00.png … 29.png``, taken in numeric order) or a
        list of files in slice order. With 2.5D context each slice is fed with its neighbours
        in that order (edges replicated), as in training; without it each file on its own."""
        return np.stack([mask for _, _, mask in self.iter_slices(slices, on_progress)])

    def iter_slices(
        self, slices: str | Path | Sequence[str | Path], on_progress: Progress | None = None
    ) -> Iterator[tuple[Path, np.ndarray, np.ndarray]]:
        """``(file, image, mask)`` of each slice of :meth:`predict_slices`, in slice order, as
        soon as it is predicted: ``image`` is the file as read ``(H, W, C)`` (for an overlay),
        ``mask`` its ``(H, W)`` mask. Memory holds ``2k+1`` slices, not the volume."""
        files = series_files(slices)
        series = self._iter_series(
            len(files), lambda i: read_image(files[i]), lambda i: str(files[i]), on_progress
        )
        k, channels = self.context_slices, self.slice_channels
        for path, (image, mask) in zip(files, series, strict=True):
            yield path, image[:, :, k * channels : (k + 1) * channels], mask

    def _read_one(self, path: str | Path) -> np.ndarray:
        """An image file, refused when a context model would read a stack as one image."""
        if self.context_slices and (pages := page_count(Path(path))) > 1:
            raise DrunetError(
                f"{path} is a stack of {pages} pages; predict it with predict_stack (one mask "
                "per page, each with its neighbours), not as one image"
            )
        return read_image(path)

    def _iter_series(
        self,
        count: int,
        read: Callable[[int], np.ndarray],
        name: Callable[[int], str],
        on_progress: Progress | None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(input with context, mask)`` of slice ``0 … count-1`` in order."""
        images = iter_with_context(count, read, self.context_slices, name)
        for index, image in enumerate(images):  # (H, W, (2k+1)·C) file dtype
            (result,) = self.predict_batch([image], sources=[name(index)])
            if on_progress is not None:
                on_progress(index + 1, count)
            yield image, result.mask

    def with_context(self, pair: Pair, image: np.ndarray | None = None) -> np.ndarray:
        """The network's input image for a dataset pair: its image (``image`` when read
        already), with its neighbours' images stacked along channels under 2.5D context
        (neighbours as in training, :mod:`drunet.datasets.context`)."""
        if image is None:
            image = read_pair_image(pair)
        if not self.context_slices:
            return image
        (neighbours,) = context_pairs([pair], self.context_slices)
        return read_context(neighbours, centre=image)

    def predict_probabilities(self, image: ImageInput) -> np.ndarray:
        """Class probabilities ``(K, H, W)`` float32 (K = number of classes, binary → 2)."""
        return self.predict(image, return_probabilities=True)[1]


@contextlib.contextmanager
def _compile_errors(compiling: bool) -> Iterator[None]:
    """A failing ``torch.compile`` (no C++ compiler, an unsupported op…) is one line naming
    the way out, not a compiler traceback."""
    try:
        yield
    except torch._dynamo.exc.TorchDynamoException as err:
        if not compiling:
            raise
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise DrunetError(
            f"torch.compile failed ({first}); predict without --compile (compile=False)"
        ) from err


def _compiled(model: nn.Module) -> nn.Module:
    """``torch.compile`` of ``model``; the first call compiles (seconds to a minute)."""
    return cast(nn.Module, torch.compile(model))


def _fused(model: nn.Module) -> nn.Module:
    has_bn = any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    return fuse_conv_bn(model) if has_bn else model


_NORMS = (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm)


def _cast_dtype(precision: Precision, models: list[nn.Module]) -> torch.dtype | None:
    """bfloat16 when the networks may run cast to it (CPU bfloat16, no norm layer left after
    folding: a norm's statistics stay float32 under autocast); else ``None`` (autocast)."""
    if precision.device.type != "cpu" or precision.autocast_dtype != torch.bfloat16:
        return None
    if any(isinstance(m, _NORMS) for model in models for m in model.modules()):
        return None
    return torch.bfloat16


def _disagreement(a: ExperimentConfig, b: ExperimentConfig) -> str | None:
    """Why two runs cannot share one preprocessing and one output, or ``None``."""
    sa, sb = a.model.spec(), b.model.spec()
    if sa.in_channels != sb.in_channels:
        return f"{sa.in_channels} vs {sb.in_channels} input channels"
    if sa.num_classes != sb.num_classes:
        return f"{sa.num_classes} vs {sb.num_classes} classes"
    if a.data.normalization != b.data.normalization:
        return "their normalisation differs (data.normalization)"
    if (ka := context_slices_of(a.data)) != (kb := context_slices_of(b.data)):
        return f"data.context_slices {ka} vs {kb} (neighbour slices per side)"
    return None


def _stack_reader(path: Path) -> tuple[int, Callable[[int], np.ndarray]]:
    """``(pages, read)`` of a TIFF stack: each frame read on its own, or, for a file of one
    frame whose pages are declared channels, the file read once and split per page."""
    frames = frame_count(path)
    if frames > 1:
        return frames, lambda page: read_image(path, page=page)
    pages = page_count(path)
    image = read_image(path)  # (H, W, pages × samples): one channel block per page
    if image.shape[2] % pages:
        raise DrunetError(
            f"{path} has {pages} pages but {image.shape[2]} channels; save it as a stack of "
            "same-sized pages (tifffile.imwrite(path, volume, photometric='minisblack'))"
        )
    step = image.shape[2] // pages
    return pages, lambda page: image[:, :, page * step : (page + 1) * step]
