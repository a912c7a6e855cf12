"""Score a trained model on a folder of images and reference masks.

Each image is predicted with the run's own preprocessing (:class:`Predictor`) and compared with
its mask, read with the run's mask options (0/255 masks, colour maps, ``ignore_index``). Per
image and class: tp / fp / fn pixel counts, Dice, IoU, precision and recall (the empty rule of
:mod:`drunet.metrics`: a class absent from both prediction and mask scores 1.0) and, when asked
for, HD95 in pixels or, with a pixel ``spacing``, in its unit (:mod:`drunet.inference.distance`).
The summary gives every reduction of :mod:`drunet.metrics`; its headline ``mean`` is ``macro`` —
counts summed over the images, each foreground class scored, the classes averaged — the number
training reports for validation. :mod:`drunet.inference.evaluate_folder` scores a folder of
existing predictions the same way.

Slices of multi-page TIFF stacks are scored one by one (named ``<stack>#<page>``, e.g.
``cell#0003``) and, per stack, from their summed counts (:mod:`drunet.inference.stack_scores`):
``per_stack.csv`` and the summary's ``per_stack`` section, only when there are stacks.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from drunet.atomic import atomic_write_text
from drunet.config import ExperimentConfig
from drunet.datasets import LayoutOptions, Pair, discover, read_pair
from drunet.errors import DataError, DrunetError
from drunet.inference.distance import Spacing, hd95_per_class
from drunet.inference.predictor import Predictor
from drunet.inference.stack_scores import (
    SCORES,
    StackScores,
    stack_rows,
    stack_scores,
    stack_slice,
    stack_summary,
)
from drunet.metrics import REDUCTIONS, StatsMeter, scores_from_counts

Split = Literal["all", "train", "val", "test"]
SPLITS: tuple[str, ...] = ("all", "train", "val", "test")
PER_STACK_CSV = "per_stack.csv"


def evaluation_pairs(
    data: str | Path | None, config: ExperimentConfig, split: Split = "all"
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


@dataclass
class ScoredCase:
    """One scored image, as the ``on_case`` hook receives it (the report keeps thumbnails).

    ``image`` is ``(H, W, C)`` in the file's dtype, or None when only masks were compared;
    ``prediction`` and ``reference`` are ``(H, W)`` class indices.
    """

    name: str
    image: np.ndarray | None
    prediction: np.ndarray
    reference: np.ndarray
    image_path: Path | None
    mask_path: Path
    prediction_path: Path | None = None


@dataclass
class Evaluation:
    """Per-image counts (``stats``: ``(N, C)`` each) and HD95, and what could not be scored."""

    num_classes: int
    class_names: list[str]
    ignore_index: int | None = None
    spacing: Spacing | None = None  # HD95 unit: pixels when None
    names: list[str] = field(default_factory=list)  # the pairs' names, in ``stats`` order
    stacks: list[str | None] = field(default_factory=list)  # each image's stack (None: 2D)
    slices: list[int | None] = field(default_factory=list)  # its page in that stack
    meter: StatsMeter | None = None
    hd95: list[list[float]] | None = None  # (N, C) when computed
    failed: dict[Path, str] = field(default_factory=dict)
    predict_seconds: float = 0.0  # spent in ``Predictor.predict`` (reading and scoring aside)

    @property
    def num_images(self) -> int:
        return len(self.names)

    @property
    def has_stacks(self) -> bool:
        """Whether any scored image is a slice of a stack."""
        return any(stack is not None for stack in self.stacks)

    def stack_scores(self) -> list[StackScores]:
        """Every stack's scores from its slices' summed counts, sorted by name."""
        assert self.meter is not None
        return stack_scores(self.meter.stats, self.stacks, self.meter.foreground)

    def rows(self) -> list[dict[str, Any]]:
        """One row per image and class: counts, scores and HD95 (NaN when undefined); with
        stacks also each image's ``stack`` and ``slice`` (empty for a 2D image)."""
        assert self.meter is not None
        stats = self.meter.stats
        per_image = scores_from_counts(*stats[:3])  # (N, C) each
        stacked = self.has_stacks
        rows = []
        for i, name in enumerate(self.names):
            for c in range(self.num_classes):
                row: dict[str, Any] = {"image": name}
                if stacked:
                    row["stack"], row["slice"] = self.stacks[i] or "", _blank(self.slices[i])
                row.update({"class": c, "name": self.class_names[c]})
                row.update({k: float(per_image[k][i, c]) for k in SCORES})
                row.update({k: int(getattr(stats, k)[i, c]) for k in ("tp", "fp", "fn")})
                if self.hd95 is not None:
                    row["hd95"] = self.hd95[i][c]
                rows.append(row)
        return rows

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary: ``mean`` (macro, foreground), ``per_class``, every reduction
        (and ``hd95``, and ``per_stack`` when images are stack slices: see ``stack_summary``)."""
        assert self.meter is not None
        macro = self.meter.compute("macro")
        per_class = {
            name: {k: getattr(macro, k)[c] for k in SCORES}
            for c, name in enumerate(self.class_names)
        }
        reductions = {}
        for reduction in REDUCTIONS:
            if reduction != "none":
                scores = self.meter.compute(reduction)
                reductions[reduction] = {k: getattr(scores, f"mean_{k}") for k in SCORES}
        out: dict[str, Any] = {
            "images": self.num_images,
            "failed": {str(k): v for k, v in self.failed.items()},
            "num_classes": self.num_classes,
            "class_names": self.class_names,
            "mean": reductions["macro"],
            "per_class": per_class,
            "reductions": reductions,
        }
        if self.hd95 is not None:
            values = np.array(self.hd95, dtype=np.float64).reshape(-1, self.num_classes)
            class_means = [_nanmean(values[:, c]) for c in range(self.num_classes)]
            for c, name in enumerate(self.class_names):
                per_class[name]["hd95"] = class_means[c]
            foreground = [m for m in class_means[1:] if m is not None]
            out["hd95"] = {
                "unit": "px" if self.spacing is None else f"spacing {list(self.spacing)}",
                "mean": float(np.mean(foreground)) if foreground else None,
                "per_class": class_means,
                "undefined": int(np.isnan(values[:, 1:]).sum()),
            }
        if self.has_stacks:
            out["per_stack"] = stack_summary(self.stack_scores(), self.class_names)
        return out


def _blank(value: int | None) -> int | str:
    return "" if value is None else value


def _nanmean(values: np.ndarray) -> float | None:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else None


def class_names(config: ExperimentConfig, num_classes: int) -> list[str]:
    names = config.data.masks.class_names
    if names is not None and len(names) == num_classes:
        return list(names)
    return ["background", *(f"class {c}" for c in range(1, num_classes))]


def new_evaluation(
    num_classes: int,
    names: list[str],
    ignore_index: int | None = None,
    hd95: bool = False,
    spacing: Spacing | None = None,
) -> Evaluation:
    """An empty :class:`Evaluation` ready for :func:`score_case`."""
    evaluation = Evaluation(num_classes, names, ignore_index=ignore_index, spacing=spacing)
    evaluation.meter = StatsMeter(num_classes, ignore_index=ignore_index)
    evaluation.hd95 = [] if hd95 else None
    return evaluation


def evaluate(
    predictor: Predictor,
    pairs: Sequence[Pair],
    hd95: bool = False,
    on_done: Callable[[Pair], None] | None = None,
    on_scored: Callable[[Pair, np.ndarray, np.ndarray], None] | None = None,
    spacing: Spacing | None = None,
    on_case: Callable[[ScoredCase], None] | None = None,
) -> Evaluation:
    """Predict and score every pair; an unreadable one is recorded in ``failed``, the rest go on.

    ``on_done(pair)`` follows every pair (scored or failed); ``on_scored(pair, prediction,
    reference)`` every scored one, with both ``(H, W)`` label maps (``drunet compare`` keeps
    them for its figure and adds its own scores); ``on_case`` gets the same with the image
    (the HTML report). ``spacing=(sy, sx)`` gives HD95 in that unit instead of pixels.
    """
    num_classes = predictor.num_classes
    ignore_index = predictor.config.data.masks.ignore_index
    names = class_names(predictor.config, num_classes)
    evaluation = new_evaluation(num_classes, names, ignore_index, hd95, spacing)
    for pair in pairs:
        try:
            image, reference = read_pair(pair, predictor.config.data.masks)
            started = time.perf_counter()
            prediction = predictor.predict(predictor.with_context(pair, image))
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


def score_case(
    evaluation: Evaluation,
    name: str,
    mask: Path,
    prediction: np.ndarray,
    reference: np.ndarray,
    stack: str | None = None,
    page: int | None = None,
) -> None:
    """Add one image's counts (and HD95) to ``evaluation``; ``mask`` names it in errors.

    ``stack`` and ``page`` say which stack the image is a slice of (None for a 2D image).
    """
    assert evaluation.meter is not None
    try:
        evaluation.meter.update(
            torch.from_numpy(prediction.astype(np.int64))[None], torch.from_numpy(reference)[None]
        )
    except ValueError as err:  # mask values the model cannot predict
        raise DataError(
            f"mask {mask}: {err}; the model has {evaluation.num_classes} classes — check "
            "that the masks match the data the run was trained on"
        ) from None
    if evaluation.hd95 is not None:
        evaluation.hd95.append(
            hd95_per_class(
                prediction,
                reference,
                evaluation.num_classes,
                evaluation.ignore_index,
                evaluation.spacing,
            )
        )
    evaluation.names.append(name)
    evaluation.stacks.append(stack)
    evaluation.slices.append(page)


def write_evaluation(
    evaluation: Evaluation, out_dir: str | Path, extra: dict[str, Any] | None = None
) -> tuple[Path, Path]:
    """Write ``per_image.csv`` and ``summary.json`` (``extra`` keys first) into ``out_dir``;
    with stacks also ``per_stack.csv`` (:func:`per_stack_path`)."""
    out_dir = Path(out_dir)
    columns = ["image", "class", "name", *SCORES, "tp", "fp", "fn"]
    if evaluation.has_stacks:
        columns[1:1] = ["stack", "slice"]
    if evaluation.hd95 is not None:
        columns.append("hd95")
    csv_path, json_path = out_dir / "per_image.csv", out_dir / "summary.json"
    _write_csv(csv_path, columns, evaluation.rows())
    if evaluation.has_stacks:
        rows = stack_rows(evaluation.stack_scores(), evaluation.class_names)
        _write_csv(per_stack_path(out_dir), list(rows[0]), rows)
    else:  # an earlier evaluation's, into the same folder, would not match these files
        per_stack_path(out_dir).unlink(missing_ok=True)
    summary = {**(extra or {}), **evaluation.summary()}
    atomic_write_text(json_path, json.dumps(summary, indent=2, allow_nan=False) + "\n")
    return csv_path, json_path


def per_stack_path(out_dir: str | Path) -> Path:
    """Where :func:`write_evaluation` writes the per-stack table (when there are stacks)."""
    return Path(out_dir) / PER_STACK_CSV


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    atomic_write_text(path, buffer.getvalue())


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6f}"
    return value
