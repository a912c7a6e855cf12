"""Prediction: the :class:`Predictor`, file/folder prediction and overlays."""

from drunet.inference.files import PredictionReport, collect_inputs, predict_files
from drunet.inference.overlay import colorize, overlay
from drunet.inference.predictor import Predictor

__all__ = [
    "PredictionReport",
    "Predictor",
    "collect_inputs",
    "colorize",
    "overlay",
    "predict_files",
]
