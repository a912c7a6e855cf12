"""``PredictOptions``: how the :class:`~drunet.inference.Predictor` runs the network."""

from __future__ import annotations

from dataclasses import dataclass, field

from drunet.bounds import check_prediction
from drunet.device import PRECISIONS
from drunet.errors import OptionError
from drunet.inference.postprocess import PostprocessOptions
from drunet.inference.tta import symmetries
from drunet.sliding import DEFAULT_MAX_PIXELS, Blend, check_overlap


@dataclass(frozen=True)
class PredictOptions:
    """Prediction settings; the defaults need no tuning.

    * ``tile_size``: sliding-window tile side; ``None`` → the training patch size stored in the
      weights' config (``data.augmentation.patch_size``), the context the model learnt from.
    * ``overlap``: share of a tile side its neighbours share (0.5, as nnU-Net: every pixel is at
      least a quarter tile from the border of the tile that weighs most for it).
    * ``max_pixels``: an image with at most this many pixels goes through the network whole, as
      in validation; larger ones are tiled. ``0`` tiles every image larger than one tile.
    * ``batch_size``: tiles — or same-sized small images — per forward pass (their total pixels
      are also kept within ``max_pixels``).
    * ``tta_flips`` / ``tta_rot90``: average the probabilities of flipped / rotated copies
      (4 or 8 forward passes per tile instead of 1).
    * ``blend``: ``"gaussian"`` (default) or ``"constant"`` tile weights.
    * ``postprocess``: threshold and mask clean-ups, see :mod:`drunet.inference.postprocess`.
    * ``precision``: ``auto`` (float16 autocast on CUDA GPUs, bfloat16 on GPUs and CPUs that
      run it natively, else float32), ``fp32``, ``fp16`` or ``bf16``; see :mod:`drunet.device`.
    * ``compile``: run the network through ``torch.compile``. On the 2-core reference CPU a
      256² tile batch ran 1.13× (float32) to 1.47× (bfloat16) faster after a 15–25 s compile
      (1–2 s when inductor's disk cache already holds the kernels), so it pays from about
      1.5–3 minutes of tiles or same-sized images (``benchmarks/bench_compile.py``). Batches
      of tiles are padded to ``batch_size`` so the last one compiles nothing new; a new
      whole-image size, or a smaller last batch of whole images, compiles again (once with
      dynamic sizes, after which no size does).
    """

    tile_size: int | None = None
    overlap: float = 0.5
    max_pixels: int = DEFAULT_MAX_PIXELS
    batch_size: int = 4
    tta_flips: bool = False
    tta_rot90: bool = False
    blend: Blend = "gaussian"
    postprocess: PostprocessOptions = field(default_factory=PostprocessOptions)
    precision: str = "auto"
    compile: bool = False

    def __post_init__(self) -> None:
        if self.tile_size is not None and self.tile_size < 8:
            raise OptionError(f"tile_size must be at least 8 pixels, got {self.tile_size}")
        check_overlap(self.overlap)
        if self.max_pixels < 0:
            raise OptionError(f"max_pixels must be >= 0, got {self.max_pixels}")
        if self.batch_size < 1:
            raise OptionError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.precision not in PRECISIONS:
            raise OptionError(f"precision must be one of {', '.join(PRECISIONS)}")
        if self.blend not in ("gaussian", "constant"):
            raise OptionError(f"blend must be 'gaussian' or 'constant', got {self.blend!r}")
        passes = len(symmetries(self.tta_flips, self.tta_rot90))  # drunet.bounds: work, memory
        check_prediction(self.tile_size, self.overlap, self.batch_size, self.max_pixels, passes)


@dataclass(frozen=True, kw_only=True)
class PredictSettings:
    """The prediction flags ``drunet predict`` and ``drunet evaluate`` share, one field per flag
    (:class:`~drunet.inference.job.PredictJob` and :class:`~drunet.evaluation.EvaluateJob`
    extend it): the tiling, test-time augmentation, threshold and clean-ups (``None``: the
    run's own, chosen on validation when it was trained), ``device`` (``None``:
    ``$DRUNET_DEVICE``, else auto), ``precision`` and ``compile``; see :class:`PredictOptions`.
    """

    tile_size: int | None = None
    overlap: float = 0.5
    batch_size: int = 4
    max_pixels: int = DEFAULT_MAX_PIXELS
    tta: bool = False
    tta_rot90: bool = False
    threshold: float = 0.5
    min_size: int | None = None
    fill_holes: bool | None = None
    largest: bool | None = None
    empty_below: int | None = None
    device: str | None = None
    precision: str = "auto"
    compile: bool = False

    def predict_options(self) -> PredictOptions:
        """How the predictor runs the network; a bad value is an ``OptionError`` naming it."""
        return PredictOptions(
            tile_size=self.tile_size,
            overlap=self.overlap,
            batch_size=self.batch_size,
            max_pixels=self.max_pixels,
            tta_flips=self.tta,
            tta_rot90=self.tta_rot90,
            postprocess=PostprocessOptions(
                self.threshold, self.min_size, self.fill_holes, self.largest, self.empty_below
            ),
            precision=self.precision,
            compile=self.compile,
        )
