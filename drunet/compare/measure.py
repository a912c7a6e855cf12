"""What a comparison measures besides training: held-out scores, cost and speed."""

from __future__ import annotations

import time

import numpy as np
import torch
from scipy import ndimage
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from drunet.datasets import Pair, read_pair
from drunet.inference import Predictor
from drunet.metrics import StatsMeter


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
    """Dataset-level scores on ``pairs``, inference images/s and the predicted masks."""
    config = predictor.config
    meter = StatsMeter(predictor.num_classes, ignore_index=config.data.masks.ignore_index)
    predictions, rand_errors, seconds = [], [], 0.0
    for pair in pairs:
        image, truth = read_pair(pair, config.data.masks)
        started = time.perf_counter()
        pred = predictor.predict(image)
        seconds += time.perf_counter() - started
        meter.update(torch.from_numpy(pred.astype(np.int64))[None], torch.from_numpy(truth)[None])
        predictions.append(pred)
        if with_rand:
            rand_errors.append(adapted_rand_error(truth, pred))
    scores = meter.compute("macro").as_dict()
    if rand_errors:
        scores["adapted_rand_error"] = float(np.mean(rand_errors))
    return scores, len(pairs) / max(seconds, 1e-9), predictions
