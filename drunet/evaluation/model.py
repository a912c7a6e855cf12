"""Score a trained model on a folder of images and reference masks.

Each image is predicted with the run's own preprocessing (the :class:`Predictor`'s public
``predict`` on the image array, with its 2.5D neighbours when the run has context slices) and
compared with its mask, read with the run's mask options (0/255 masks, colour maps,
``ignore_index``). The class set is the run's. Scores: :mod:`drunet.evaluation.result`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from drunet.config import ExperimentConfig
from drunet.datasets import LayoutOptions, Pair, discover, read_pair
from drunet.datasets.context import context_pairs, read_context
from drunet.errors import DataError, DrunetError
from drunet.evaluation.distance import Spacing
from drunet.evaluation.result import Evaluation, ScoredCase, new_evaluation, score_case
from drunet.evaluation.stacks import stack_slice
from drunet.inference import Predictor

Split = Literal["all", "train", "val", "test"]
SPLITS: tuple[str, ...] = ("all", "train", "val", "test")


def evaluation_pairs(
    data: str | Path | None, config: ExperimentConfig, split: Split | str = "all"
) -> tuple[list[Pair], str]:
    """The pairs to score and a description of where they came from.

    ``data`` defaults to the run's own data folder. ``"all"`` takes every pair of the folder
    (any layout drunet reads; files named as the run's ``data.layout.stack`` says, when it
    has one); ``"train"`` / ``"val"`` / ``"test"`` repeat the run's split (its layout options:
    seed, validation share, split file, fold) on that folder.
    """
    if split not in SPLITS:
        raise DrunetError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    root = Path(data) if data is not None else config.data.root
    if root is None:
        raise DrunetError("no data folder: pass --data DIR (the run's configuration names none)")
    if split == "all":  # the run's file naming (numbered stacks), not its split
        layout = discover(root, LayoutOptions(stack=config.data.layout.stack))
        pairs = sorted(layout.pairs, key=lambda p: (p.name, str(p.image)))
        return pairs, f"all {len(pairs)} pairs of {root} ({layout.source})"
    layout = discover(root, config.data.layout)
    pairs = getattr(layout, split)
    if not pairs:
        raise DrunetError(
            f"{root} has no {split} pairs with the run's split ({layout.split}); "
            "use --split all to score every pair"
        )
    return pairs, f"{split} split of {root} ({layout.split}): {len(pairs)} pairs"


def evaluate(
    predictor: Predictor,
    pairs: Sequence[Pair],
    hd95: bool = False,
    on_done: Callable[[Pair], None] | None = None,
    on_scored: Callable[[Pair, np.ndarray, np.ndarray], None] | None = None,
    spacing: Spacing | None = None,
    on_case: Callable[[ScoredCase], None] | None = None,
    absent_as_one: bool = False,
) -> Evaluation:
    """Predict and score every pair; an unreadable one is recorded in ``failed``, the rest go on.

    ``on_done(pair)`` follows every pair (scored or failed); ``on_scored(pair, prediction,
    reference)`` every scored one, with both ``(H, W)`` label maps (``drunet compare`` keeps
    them for its figure and adds its own scores); ``on_case`` gets the same with the image
    (the HTML report). ``spacing=(sy, sx)`` gives HD95 in that unit instead of pixels;
    ``absent_as_one`` scores classes absent from both files 1.0 (:mod:`~.scoring`).
    """
    num_classes = predictor.num_classes
    ignore_index = predictor.config.data.masks.ignore_index
    names = class_names(predictor.config, num_classes)
    evaluation = new_evaluation(num_classes, names, ignore_index, hd95, spacing, absent_as_one)
    for pair in pairs:
        try:
            image, reference = read_pair(pair, predictor.config.data.masks)
            started = time.perf_counter()
            prediction = predictor.predict(network_input(predictor, pair, image))
            evaluation.predict_seconds += time.perf_counter() - started
            stack, slice_ = stack_slice(pair)
            score_case(evaluation, pair.name, pair.mask, prediction, reference, stack, slice_)
            if on_scored is not None:
                on_scored(pair, prediction, reference)
            if on_case is not None:
                on_case(ScoredCase(pair.name, image, prediction, reference, pair.image, pair.mask))
        except (DataError, DrunetError) as err:
            evaluation.failed[pair.image] = str(err)
        if on_done is not None:
            on_done(pair)
    return evaluation


def network_input(predictor: Predictor, pair: Pair, image: np.ndarray) -> np.ndarray:
    """The network's input for a dataset pair: its image ``(H, W, C)``, with its neighbours'
    images stacked along channels under 2.5D context (as in training)."""
    if not predictor.context_slices:
        return image
    (neighbours,) = context_pairs([pair], predictor.context_slices)
    return read_context(neighbours, centre=image)


def class_names(config: ExperimentConfig, num_classes: int) -> list[str]:
    """The run's class names, or ``background, class 1, …`` when it names none (or not all)."""
    names = config.data.masks.class_names
    if names is not None and len(names) == num_classes:
        return list(names)
    return default_class_names(num_classes)


def default_class_names(num_classes: int) -> list[str]:
    return ["background", *(f"class {c}" for c in range(1, num_classes))]
