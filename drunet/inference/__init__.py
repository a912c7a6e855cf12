"""Prediction: the :class:`Predictor` (whole images or sliding window, test-time augmentation,
post-processing), file/folder prediction, overlays and evaluation against reference masks."""

from drunet.inference.files import (
    OutputOptions,
    PredictionReport,
    collect_inputs,
    output_files,
    predict_files,
)
from drunet.inference.options import PredictOptions
from drunet.inference.overlay import colorize, overlay
from drunet.inference.postprocess import PostprocessOptions, postprocess
from drunet.inference.predictor import Prediction, Predictor
from drunet.inference.sliding import sliding_window, tile_grid
from drunet.inference.tta import with_tta

__all__ = [
    "OutputOptions",
    "PostprocessOptions",
    "PredictOptions",
    "Prediction",
    "PredictionReport",
    "Predictor",
    "collect_inputs",
    "colorize",
    "output_files",
    "overlay",
    "postprocess",
    "predict_files",
    "sliding_window",
    "tile_grid",
    "with_tta",
]
