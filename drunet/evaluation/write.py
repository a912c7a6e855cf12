"""The files an evaluation writes: ``per_image.csv``, ``summary.json``, ``per_stack.csv``.

Every output name is claimed first (:func:`drunet.outputs.claim_outputs`, by
:func:`drunet.evaluation.run_evaluation`): a file of that name that drunet did not write is
never replaced, unless ``overwrite`` (``--overwrite``).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from drunet.atomic import atomic_write_text
from drunet.evaluation.result import Evaluation
from drunet.evaluation.scoring import SCORES
from drunet.evaluation.stacks import stack_rows

PER_IMAGE_CSV = "per_image.csv"
SUMMARY_JSON = "summary.json"
PER_STACK_CSV = "per_stack.csv"


def write_evaluation(
    evaluation: Evaluation, out_dir: str | Path, extra: dict[str, Any] | None = None
) -> tuple[Path, Path]:
    """Write ``per_image.csv`` and ``summary.json`` (``extra`` keys first) into ``out_dir``;
    with stacks also ``per_stack.csv`` (:func:`per_stack_path`)."""
    out_dir = Path(out_dir)
    columns = ["image", "class", "name", *SCORES, "tp", "fp", "fn", "absent"]
    if evaluation.has_stacks:
        columns[1:1] = ["stack", "slice"]
    if evaluation.hd95 is not None:
        columns.append("hd95")
    csv_path, json_path = out_dir / PER_IMAGE_CSV, out_dir / SUMMARY_JSON
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
