"""Prediction: the :class:`Predictor` (whole images or sliding window, test-time augmentation,
post-processing), file/folder prediction (:func:`predict_files`), overlays, and everything
``drunet predict`` does as a :class:`PredictJob` run by :func:`run_predict`."""

from drunet.inference.files import (
    OutputOptions,
    PredictionReport,
    collect_inputs,
    output_files,
)
from drunet.inference.job import PredictJob, PredictReport
from drunet.inference.loop import predict_files
from drunet.inference.options import PredictOptions
from drunet.inference.overlay import colorize, overlay
from drunet.inference.postprocess import PostprocessOptions, Prediction, postprocess
from drunet.inference.predictor import Predictor
from drunet.inference.run import PredictHooks, run_predict
from drunet.inference.tta import with_tta
from drunet.sliding import sliding_window, tile_grid

__all__ = [
    "OutputOptions",
    "PostprocessOptions",
    "PredictHooks",
    "PredictJob",
    "PredictOptions",
    "Prediction",
    "PredictReport",
    "PredictionReport",
    "Predictor",
    "collect_inputs",
    "colorize",
    "output_files",
    "overlay",
    "postprocess",
    "predict_files",
    "run_predict",
    "sliding_window",
    "tile_grid",
    "with_tta",
]
