"""Comparison outputs: JSON, CSV and Markdown tables, progress curves, a prediction figure and
the HTML report (``report.html``, :mod:`drunet.report.compare_report`)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from drunet.atomic import atomic_write_bytes, atomic_write_text
from drunet.compare.run import OUTPUT_FILES, ModelReport
from drunet.datasets import Pair, read_pair
from drunet.inference.overlay import to_display
from drunet.outputs import claim_outputs
from drunet.report.compare_report import ModelMasks, write_compare_report
from drunet.report.markdown import markdown

COLUMNS = [
    ("model", "model", "{}"),
    ("Dice", "dice", "{:.4f}"),
    ("IoU", "iou", "{:.4f}"),
    ("precision", "precision", "{:.4f}"),
    ("recall", "recall", "{:.4f}"),
    ("adapted Rand error", "adapted_rand_error", "{:.4f}"),
    ("params (M)", "parameters", "{:.2f}"),
    ("GFLOPs/patch", "gflops", "{:.1f}"),
    ("train img/s", "train_images_per_second", "{:.2f}"),
    ("infer img/s", "inference_images_per_second", "{:.2f}"),
    ("epochs", "epochs", "{}"),
    ("minutes", "train_minutes", "{:.1f}"),
]


def table_rows(reports: list[ModelReport]) -> list[dict[str, str]]:
    rows = []
    for report in reports:
        values = {**report.to_json(), **report.scores}
        values["parameters"] = report.parameters / 1e6
        row = {}
        for title, key, fmt in COLUMNS:
            if key in values:
                row[title] = fmt.format(values[key])
        rows.append(row)
    return rows


def markdown_table(reports: list[ModelReport]) -> str:
    return markdown(table_rows(reports))


def write_reports(
    reports: list[ModelReport],
    held_out: list[Pair],
    out_dir: str | Path,
    examples: int = 3,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write compare.json, compare.csv, compare.md, curves.png, predictions.png and
    report.html (the models side by side, every held-out image). A file at one of these names
    that drunet did not write is refused before anything is written, unless ``overwrite``."""
    out_dir = Path(out_dir)
    paths = {key: out_dir / name for key, name in OUTPUT_FILES.items()}
    claim_outputs(out_dir, paths.values(), overwrite=overwrite)
    atomic_write_text(paths["json"], json.dumps([r.to_json() for r in reports], indent=2))
    rows = table_rows(reports)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(paths["csv"], buffer.getvalue())
    atomic_write_text(paths["md"], markdown_table(reports))
    curves = _png(_curves(reports))
    atomic_write_bytes(paths["curves"], curves)
    atomic_write_bytes(paths["figure"], _png(_figure(reports, held_out[:examples])))
    models = [ModelMasks(r.model, r.predictions, r.run_dir) for r in reports]
    write_compare_report(out_dir, rows, held_out, models, curves)
    return paths


def _curves(reports: list[ModelReport]) -> plt.Figure:
    fig, (dice_ax, loss_ax) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for report in reports:
        minutes, elapsed = [], 0.0
        for record in report.history:
            elapsed += record.seconds / 60
            minutes.append(elapsed)
        dice_ax.plot(minutes, [r.scores["dice"] for r in report.history], "o-", label=report.model)
        loss_ax.plot(minutes, [r.train_loss for r in report.history], "o-", label=report.model)
    dice_ax.set(title="validation Dice", xlabel="wall-clock minutes", ylim=(0, 1))
    loss_ax.set(title="training loss", xlabel="wall-clock minutes")
    dice_ax.legend()
    return fig


def _figure(reports: list[ModelReport], pairs: list[Pair]) -> plt.Figure:
    columns = 2 + len(reports)
    fig, axes = plt.subplots(
        len(pairs), columns, figsize=(3 * columns, 3 * len(pairs)), squeeze=False
    )
    for row, pair in enumerate(pairs):
        image, truth = read_pair(pair)
        panels = [("image", to_display(image)), ("ground truth", truth)]
        panels += [(r.model, r.predictions[row]) for r in reports]
        for col, (title, panel) in enumerate(panels):
            ax = axes[row][col]
            ax.imshow(panel, cmap="gray" if panel.ndim == 2 else None, interpolation="nearest")
            ax.set_title(title if row == 0 else "")
            ax.axis("off")
        axes[row][0].set_ylabel(pair.image.name)
    return fig


def _png(fig: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()
