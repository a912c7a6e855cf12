"""The package's documentation (a markdown model card) and its cover image.

The card states what the model segments, the input it takes and how it is normalised, the
training data (from the run's ``fingerprint.json`` when training measured one) and the
validation scores of the best epoch (from ``metrics.csv``); the cover shows the sample image
beside the model's mask over it.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from drunet import __version__, checkpoint
from drunet.config import ExperimentConfig
from drunet.inference.overlay import overlay, to_display

log = logging.getLogger(__name__)

FINGERPRINT = "fingerprint.json"  # written by training's plan step (drunet.plan)
_SCORES = ("dice", "iou", "precision", "recall")


def cover_png(image: np.ndarray, mask: np.ndarray, num_classes: int) -> bytes:
    """PNG bytes: the image ``(H, W[, C])`` and the mask ``(H, W)`` over it, side by side
    (the 2:1 cover the zoo asks for)."""
    both = np.concatenate([to_display(image), overlay(image, mask, num_classes)], axis=1)
    buffer = io.BytesIO()
    Image.fromarray(both).save(buffer, format="PNG")
    return buffer.getvalue()


def model_card(
    config: ExperimentConfig,
    run_dir: Path,
    name: str,
    preprocessing: list[dict[str, Any]],
    input_dtype: str,
    multiple: int,
    sample: str,
) -> str:
    """The markdown documentation of the package."""
    spec = config.model.spec()
    classes = config.data.masks.class_names or [f"class {k}" for k in range(spec.num_classes)]
    train = config.train
    steps = yaml.safe_dump(preprocessing, sort_keys=False).rstrip()
    lines = [
        f"# {name}",
        "",
        f"A drunet `{spec.name}` network segmenting {spec.num_classes} classes "
        f"({', '.join(map(str, classes))}), exported by drunet {__version__} from the run "
        f"`{run_dir.name}`.",
        "",
        "## Input and output",
        "",
        f"- Input `raw`: `(batch, channel, y, x)`, {spec.in_channels} channel(s) of "
        f"{input_dtype} pixels as read from the image file (colour images in RGB order).",
        f"- Height and width: any multiple of {multiple} (the model pads other sizes itself).",
        "- Output `probabilities`: "
        + (
            "the foreground probability (sigmoid), foreground where > 0.5."
            if spec.out_channels == 1
            else "one probability per class (softmax); the mask is their argmax."
        ),
        "",
        "Preprocessing, drunet's normalisation of the training images as fixed steps:",
        "",
        "```yaml",
        steps,
        "```",
        "",
        "## Training",
        "",
        *_training_data(config, run_dir),
        f"- Patch size {config.data.augmentation.patch_size}, batch size "
        f"{config.data.batch_size}, {train.epochs} epoch(s), optimiser {train.optimizer} "
        f"(learning rate {train.lr:g}, schedule {train.schedule}).",
        f"- Test tensors: {sample}.",
        "",
        "## Validation scores",
        "",
        *_scores(run_dir / checkpoint.METRICS, train.monitor),
        "",
        "## Use",
        "",
        "With drunet, on the run folder: `drunet predict IMAGES --model RUN --out MASKS`. "
        "Anywhere else (bioimageio.core, ilastik, deepImageJ, QuPath, napari): load this package; "
        "the ONNX and TorchScript weights need no drunet, the PyTorch state dict builds the "
        "network with `drunet.models.registry.create_model`.",
        "",
    ]
    return "\n".join(lines)


def _training_data(config: ExperimentConfig, run_dir: Path) -> list[str]:
    root = config.data.root or config.data.layout.images
    lines = [f"- Data: `{root}`." if root is not None else "- Data: not recorded."]
    try:
        found = json.loads((run_dir / FINGERPRINT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return lines
    if not isinstance(found, dict):
        return lines
    sizes = (found.get("sizes") or {}).get("median")
    dtypes = ", ".join(f"{k} ({v})" for k, v in (found.get("dtypes") or {}).items())
    lines.append(
        f"- {found.get('pairs', '?')} training pairs ({found.get('split', 'split not recorded')})"
        f"; pixel types {dtypes or '?'}; median size {sizes or '?'}."
    )
    return lines


def _scores(metrics: Path, monitor: str) -> list[str]:
    """A table of the best epoch's validation scores (by ``monitor``)."""
    try:
        with metrics.open(newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.DictReader(handle) if _number(row.get(monitor))]
    except OSError as err:
        log.warning("no validation scores in the model card: %s", err)
        return ["No `metrics.csv` in the run folder."]
    if not rows:
        return [f"`{metrics.name}` holds no `{monitor}` score."]
    best = max(rows, key=lambda row: float(row[monitor]))
    per_class = sorted(k for k in best if k.startswith(("dice_", "iou_")))
    keys = [k for k in (*_SCORES, *per_class) if _number(best.get(k))]
    return [
        f"Best epoch {best.get('epoch', '?')} of {len(rows)} by {monitor} (the foreground "
        "classes' mean over the validation images):",
        "",
        "| score | value |",
        "|---|---|",
        *(f"| {k} | {float(best[k]):.4f} |" for k in keys),
    ]


def _number(text: str | None) -> bool:
    try:
        return text is not None and np.isfinite(float(text))
    except ValueError:
        return False
