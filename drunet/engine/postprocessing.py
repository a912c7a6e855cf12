"""The end of a run: the best weights predict the validation split, the mask clean-ups are
chosen on it (:mod:`drunet.plan.postprocess`: each kept only when it raises the per-image
score), and the run folder records them — ``config.yaml`` and the configuration stored in
``best.safetensors`` and ``last.safetensors`` (so ``drunet predict`` and ``Predictor.from_run``
apply them) and ``postprocess.json`` (every candidate's score, one reason per step).

Nothing happens when ``postprocess.select`` is false. Under DDP every rank predicts its share of
the validation images, rank 0 gathers them, chooses and writes, and every rank returns the same
configuration. Memory: one label map and one mask per validation image.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import cast

import numpy as np

from drunet import checkpoint as runs
from drunet.atomic import atomic_write_text
from drunet.checkpoint import build_model, read_weights, save_config_and_weights, unwrap
from drunet.config import ExperimentConfig, updated
from drunet.engine.trainer import Trainer
from drunet.plan.postprocess import POSTPROCESS_FILE, Selection, select_postprocessing

log = logging.getLogger(__name__)


def choose_postprocessing(
    trainer: Trainer, run_dir: Path, config: ExperimentConfig
) -> tuple[ExperimentConfig, Selection | None]:
    """Choose the clean-ups for the run in ``run_dir`` (see the module docstring); return the
    configuration holding them and the selection (``None``: not chosen)."""
    context = trainer.options.dist
    if not config.postprocess.select:
        return config, None
    context.barrier()  # rank 0 has written the best weights
    model = build_model(config)
    model.load_state_dict(read_weights(run_dir / runs.BEST)[0])
    model = model.to(trainer.device)
    classes = config.model.spec().num_classes
    kind = np.uint8 if classes <= 256 else np.int32
    pairs = [
        (labels.numpy().astype(kind), mask.numpy().astype(np.int32))
        for labels, mask in trainer.validation_predictions(model)
    ]
    gathered = cast(
        "list[list[tuple[np.ndarray, np.ndarray]]] | None", context.gather_object(pairs)
    )
    selection = None
    if gathered is not None:
        every = [pair for share in gathered for pair in share]
        selection = _select(every, config, trainer.options.ignore_index)
    shared = context.broadcast_object(None if selection is None else selection.to_json())
    if shared is None:
        return config, None
    selection = Selection.model_validate(shared)
    chosen = updated(config, selection.values)
    if context.is_main:
        save_config_and_weights(run_dir, runs.BEST, model, chosen)
        runs.save_weights(run_dir / runs.LAST, unwrap(trainer.model), chosen)
        text = json.dumps(selection.to_json(), indent=2, ensure_ascii=False) + "\n"
        atomic_write_text(run_dir / POSTPROCESS_FILE, text)
    return chosen, selection


def _select(
    pairs: list[tuple[np.ndarray, np.ndarray]], config: ExperimentConfig, ignore: int | None
) -> Selection | None:
    if not pairs:
        log.warning("no validation image: the post-processing stays as configured")
        return None
    metric = "iou" if config.train.monitor.endswith("iou") else "dice"
    predictions, truths = [p for p, _ in pairs], [m for _, m in pairs]
    classes = config.model.spec().num_classes
    return select_postprocessing(predictions, truths, classes, ignore, metric)
