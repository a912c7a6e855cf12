"""The model card: the ``README.md`` of a ``save_pretrained`` folder, as the Hugging Face Hub
reads it — YAML front matter (``library_name: drunet``, tags, licence, datasets, and the
validation scores as ``model-index``) and a body saying what the model segments, how to use it,
the data it was trained on and its scores.

The facts come from the configuration stored with the weights and, when the model comes from a
run folder, from the run's files: ``metrics.csv`` (the best epoch's row, by ``train.monitor``)
and ``fingerprint.json`` (the training data measured by ``drunet plan``). Values are copied as
``metrics.csv`` holds them, so the card and the run agree digit for digit.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from drunet.checkpoint import METRICS
from drunet.config import ExperimentConfig
from drunet.errors import DrunetError
from drunet.models.registry import family_for

CARD = "README.md"
FINGERPRINT = "fingerprint.json"  # drunet.plan's FINGERPRINT_FILE (the plan is slow to import)
_SCORES = {"dice": "Dice", "iou": "IoU", "precision": "Precision", "recall": "Recall"}


@dataclass(frozen=True)
class RunFacts:
    """What a run folder says about its model.

    ``best``: the ``metrics.csv`` row of the best epoch (the first to reach the highest
    ``train.monitor`` score, as training picks ``best.safetensors``), ``None`` without metrics;
    ``epochs``: the epochs it trained; ``fingerprint``: ``fingerprint.json`` as stored.
    """

    name: str
    best: dict[str, float] | None
    epochs: int
    fingerprint: dict[str, Any] | None


def read_run(run_dir: str | Path, monitor: str) -> RunFacts:
    """The :class:`RunFacts` of ``run_dir`` (absent files leave their fields empty)."""
    run_dir = Path(run_dir)
    rows = _read_metrics(run_dir / METRICS)
    if rows and any(monitor not in row for row in rows):
        raise DrunetError(f"{run_dir / METRICS} has no {monitor!r} column (train.monitor)")
    best = max(rows, key=lambda row: row[monitor]) if rows else None  # max keeps the first
    fingerprint = None
    if (run_dir / FINGERPRINT).is_file():
        try:
            fingerprint = json.loads((run_dir / FINGERPRINT).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise DrunetError(f"cannot read {run_dir / FINGERPRINT}: {err}") from None
    return RunFacts(run_dir.resolve().name, best, len(rows), fingerprint)


def _read_metrics(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return [
                {key: float(value) for key, value in row.items() if value not in ("", None)}
                for row in csv.DictReader(handle)
            ]
    except (OSError, ValueError, csv.Error) as err:
        raise DrunetError(f"{path} is not a drunet metrics file ({err})") from None


def model_card(
    config: ExperimentConfig,
    run: RunFacts | None = None,
    *,
    repo_id: str | None = None,
    license: str | None = None,
    datasets: Sequence[str] = (),
) -> str:
    """The ``README.md`` text for a model with ``config`` (and ``run``'s facts when known).
    ``repo_id`` names it in the usage lines; ``license`` (an SPDX-style id such as ``mit``)
    and ``datasets`` (Hub dataset ids) go into the front matter."""
    front = yaml.safe_dump(
        _front_matter(config, run, repo_id, license, list(datasets)),
        sort_keys=False,
        allow_unicode=True,
    )
    return f"---\n{front}---\n\n" + "\n".join(_body(config, run, repo_id)) + "\n"


def _front_matter(
    config: ExperimentConfig,
    run: RunFacts | None,
    repo_id: str | None,
    license: str | None,
    datasets: list[str],
) -> dict[str, Any]:
    model = config.model.spec()
    tags = ["drunet", "image-segmentation", "semantic-segmentation", "pytorch", "safetensors"]
    tags += [t for t in (family_for(model.name).tag, model.name) if t not in tags]
    meta: dict[str, Any] = {"library_name": "drunet", "pipeline_tag": "image-segmentation"}
    if license:
        meta["license"] = license
    meta["tags"] = tags
    if datasets:
        meta["datasets"] = datasets
    if run is not None and run.best is not None:
        data_name = _data_name(config) or "training data"
        scores = [
            {"type": name, "value": run.best[name], "name": f"{label} (validation, best epoch)"}
            for name, label in _SCORES.items()
            if name in run.best
        ]
        meta["model-index"] = [
            {
                "name": repo_id.split("/")[-1] if repo_id else run.name,
                "results": [
                    {
                        "task": {"type": "image-segmentation", "name": "Image Segmentation"},
                        "dataset": {
                            "name": data_name,
                            "type": datasets[0] if datasets else data_name,
                            "split": "validation",
                        },
                        "metrics": scores,
                    }
                ],
            }
        ]
    return meta


def _data_name(config: ExperimentConfig) -> str | None:
    """The training data's folder name (never its full local path)."""
    layout = config.data.layout
    folder = config.data.root or (layout.images.parent if layout.images is not None else None)
    return Path(folder).name or None if folder is not None else None


def _body(config: ExperimentConfig, run: RunFacts | None, repo_id: str | None) -> list[str]:
    model = config.model.spec()
    classes = config.data.masks.class_names or [str(i) for i in range(model.num_classes)]
    name = repo_id or (run.name if run is not None else model.name)
    where = f"hf:{repo_id}" if repo_id else "PATH/TO/THIS/FOLDER"
    lines = [
        f"# {name}",
        "",
        f"A drunet `{model.name}` segmentation model: "
        f"{model.in_channels}-channel images → {model.num_classes} classes "
        f"({', '.join(classes)}).",
        "",
        "## Use",
        "",
        "```bash",
        'pip install "drunet[hub]"',
        f"drunet predict images/ --model {where} --out predictions/",
        "```",
        "",
        "```python",
        "import drunet",
        "",
        f'model = drunet.from_pretrained("{repo_id or where}")  # logits (N, C, H, W)',
        "```",
        "",
        "`config.json` is drunet's configuration (the same as inside `model.safetensors`): the "
        "preprocessing below is applied by `drunet predict` and `drunet.Predictor`.",
        "",
    ]
    return lines + _data_lines(config, run) + _score_lines(config, run)


def _data_lines(config: ExperimentConfig, run: RunFacts | None) -> list[str]:
    norm = config.data.normalization
    lines = ["## Training data", ""]
    data_name = _data_name(config)
    lines.append(f"- data: `{data_name}`" if data_name else "- data: not recorded")
    lines.append(f"- classes: {', '.join(config.data.masks.class_names or []) or 'not named'}")
    stats = "" if norm.mean is None else f", mean {_floats(norm.mean)}, std {_floats(norm.std)}"
    lines.append(f"- normalisation: {norm.mode}{stats}")
    fingerprint = run.fingerprint if run is not None else None
    if fingerprint:
        sizes = fingerprint.get("sizes", {})
        lines.append(
            f"- {fingerprint.get('pairs')} training pairs ({fingerprint.get('sampled')} measured), "
            f"{fingerprint.get('channels')} channel(s), median size {_size(sizes.get('median'))}, "
            f"{_share(fingerprint.get('empty_mask_fraction'))} of masks empty"
        )
        if fingerprint.get("split"):
            lines.append(f"- validation: {fingerprint['split']}")
        spacing = fingerprint.get("spacing")
        if spacing:
            lines.append(f"- pixel spacing: {spacing['y']:g} × {spacing['x']:g} {spacing['unit']}")
        for cls in fingerprint.get("classes", []):
            lines.append(
                f"- class {cls['index']} `{cls['name']}`: {_share(cls['frequency'])} of pixels"
            )
    train = config.train
    lines += [
        "",
        "## Training",
        "",
        f"- model `{config.model.spec().name}`, patch {config.data.augmentation.patch_size}, "
        f"batch {config.data.batch_size}, optimiser {train.optimizer}, lr {train.lr:g}, "
        f"{train.schedule} schedule, up to {train.epochs} epochs",
        "",
    ]
    return lines


def _score_lines(config: ExperimentConfig, run: RunFacts | None) -> list[str]:
    if run is None or run.best is None:
        return ["## Results", "", "No metrics were recorded with these weights.", ""]
    best = run.best
    classes = config.data.masks.class_names or []
    lines = [
        "## Results",
        "",
        f"Validation scores of the weights (epoch {best.get('epoch', 0):g} of {run.epochs}, the "
        f"best by {config.train.monitor}), from the run's `{METRICS}`. Dice and IoU average the "
        "foreground classes.",
        "",
        "| score | value |",
        "|---|---|",
    ]
    lines += [f"| {name} | {best[name]:g} |" for name in (*_SCORES, "val_loss") if name in best]
    for index, label in enumerate(classes):
        if f"dice_{index}" in best:
            lines.append(f"| dice `{label}` | {best[f'dice_{index}']:g} |")
    return [*lines, ""]


def _size(value: Any) -> str:
    return (
        f"{value[0]} × {value[1]}" if isinstance(value, list | tuple) and len(value) == 2 else "?"
    )


def _floats(values: Sequence[float] | None) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values or []) + "]"


def _share(value: Any) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, int | float) else "?"
