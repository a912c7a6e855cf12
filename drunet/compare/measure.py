"""What a comparison measures besides training: held-out scores, cost and speed."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from drunet.datasets import Pair
from drunet.errors import DataError
from drunet.evaluation.model import evaluate
from drunet.inference import Predictor


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def forward_gflops(model: nn.Module, in_channels: int, size: int) -> float:
    """Forward GFLOPs for one ``(1, in_channels, size, size)`` image (multiply-add = 2)."""
    model = model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, in_channels, size, size))
    return counter.get_total_flops() / 1e9


def adapted_rand_error(truth: np.ndarray, pred: np.ndarray) -> float:
    """ISBI 2012's adapted Rand error of the cell segmentations (membrane = class 1).

    Cells are the connected components of the non-membrane pixels of each mask; the score is
    scikit-image's ``adapted_rand_error`` (0 is perfect).
    """
    from skimage.metrics import adapted_rand_error as skimage_are

    cells_true, _ = ndimage.label(truth == 0)
    cells_pred, _ = ndimage.label(pred == 0)
    return float(skimage_are(cells_true, cells_pred)[0])


def evaluate_held_out(
    predictor: Predictor, pairs: list[Pair], with_rand: bool
) -> tuple[dict[str, float], float, list[np.ndarray]]:
    """Dataset-level scores on ``pairs``, inference images/s and the predicted masks.

    Scored by ``drunet evaluate``'s own loop; ``with_rand`` adds the mean adapted Rand error.
    Every held-out pair passed the checks before training, so one that fails now is an error.
    """
    predictions: list[np.ndarray] = []
    rand_errors: list[float] = []

    def keep(pair: Pair, prediction: np.ndarray, reference: np.ndarray) -> None:
        predictions.append(prediction)
        if with_rand:
            rand_errors.append(adapted_rand_error(reference, prediction))

    evaluation = evaluate(predictor, pairs, on_scored=keep)
    if evaluation.failed:
        path, reason = next(iter(evaluation.failed.items()))
        raise DataError(f"held-out pair {path} could not be scored: {reason}")
    assert evaluation.meter is not None
    scores = evaluation.meter.compute("macro").as_dict()
    if rand_errors:
        scores["adapted_rand_error"] = float(np.mean(rand_errors))
    return scores, len(pairs) / max(evaluation.predict_seconds, 1e-9), predictions
