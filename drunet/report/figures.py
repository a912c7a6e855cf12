"""Pictures for the HTML report: PNG thumbnails of images, masks and error maps, and matplotlib
figures (Dice histograms, the confusion matrix, training curves), all as PNG bytes or data URIs.

Thumbnails are shrunk (never enlarged) so that a report of hundreds of images stays a few MB:
images with area averaging, masks with nearest neighbours (class indices are not blended), error
maps with area averaging so that a one-pixel error still tints its thumbnail pixel.
"""

from __future__ import annotations

import base64
import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import matplotlib
import numpy as np

matplotlib.use("Agg")  # no display on servers; must precede pyplot
import matplotlib.pyplot as plt

from drunet.inference.overlay import colorize, to_display

# Error-map colours (RGB); listed in the report's legend.
CORRECT = (235, 235, 235)  # foreground found
FALSE_POSITIVE = (230, 40, 40)  # predicted foreground where the truth is background
FALSE_NEGATIVE = (30, 110, 255)  # truth foreground predicted as background
WRONG_CLASS = (255, 200, 0)  # foreground of one class predicted as another
IGNORED = (110, 110, 110)


def png_bytes(rgb: np.ndarray) -> bytes:
    """``(H, W, 3)`` or ``(H, W)`` uint8 → PNG file bytes (gray when the channels agree: a
    third of the size for gray images)."""
    gray = rgb.ndim == 2 or (
        np.array_equal(rgb[:, :, 0], rgb[:, :, 1]) and np.array_equal(rgb[:, :, 1], rgb[:, :, 2])
    )
    array = (rgb if rgb.ndim == 2 else rgb[:, :, 0]) if gray else rgb[:, :, ::-1]  # OpenCV: BGR
    ok, encoded = cv2.imencode(
        ".png", np.ascontiguousarray(array), [cv2.IMWRITE_PNG_COMPRESSION, 9]
    )
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 array
        raise ValueError(f"could not encode a {rgb.shape} array as PNG")
    return encoded.tobytes()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def shrink(array: np.ndarray, max_side: int, nearest: bool = False) -> np.ndarray:
    """``array`` scaled so its longer side is at most ``max_side`` (never enlarged)."""
    height, width = array.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return array
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(array, size, interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)


def _ignored(reference: np.ndarray, ignore_index: int | None) -> np.ndarray:
    if ignore_index is None:
        return np.zeros(reference.shape, dtype=bool)
    return reference == ignore_index


def mask_rgb(mask: np.ndarray, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """Class indices ``(H, W)`` → class colours ``(H, W, 3)``; ignored pixels gray."""
    ignored = _ignored(mask, ignore_index)
    rgb = colorize(np.where(ignored, 0, mask).astype(np.int64), num_classes)
    rgb[ignored] = IGNORED
    return rgb


def error_map(
    prediction: np.ndarray,
    reference: np.ndarray,
    image: np.ndarray | None = None,
    ignore_index: int | None = None,
) -> np.ndarray:
    """``(H, W, 3)`` uint8: false positives, false negatives and wrong classes in their colours,
    found foreground light, the rest the image darkened (black without an image)."""
    if image is not None:
        out = (to_display(image).mean(axis=2, keepdims=True) * 0.35).astype(np.uint8)
        out = np.repeat(out, 3, axis=2)
    else:
        out = np.zeros((*reference.shape, 3), dtype=np.uint8)
    ignored = _ignored(reference, ignore_index)
    truth_fg, pred_fg = (reference > 0) & ~ignored, (prediction > 0) & ~ignored
    out[truth_fg & (prediction == reference)] = CORRECT
    out[pred_fg & ~truth_fg & ~ignored] = FALSE_POSITIVE
    out[truth_fg & ~pred_fg] = FALSE_NEGATIVE
    out[truth_fg & pred_fg & (prediction != reference)] = WRONG_CLASS
    out[ignored] = IGNORED
    return out


def panels(
    prediction: np.ndarray,
    reference: np.ndarray,
    image: np.ndarray | None,
    num_classes: int,
    max_side: int,
    ignore_index: int | None = None,
) -> dict[str, np.ndarray]:
    """Image (when given), ground truth, prediction and error map, each shrunk to ``max_side``."""
    out = {}
    if image is not None:
        image = to_display(image)  # once: the error map is drawn over it too
        out["image"] = shrink(image, max_side)
    out["ground truth"] = shrink(mask_rgb(reference, num_classes, ignore_index), max_side, True)
    out["prediction"] = shrink(mask_rgb(prediction, num_classes), max_side, True)
    out["errors"] = shrink(error_map(prediction, reference, image, ignore_index), max_side)
    return out


def strip(images: Sequence[np.ndarray], gap: int = 2) -> np.ndarray:
    """Same-height RGB panels side by side with a white gap."""
    height = max(p.shape[0] for p in images)
    parts = []
    for panel in images:
        padded = np.full((height, panel.shape[1], 3), 255, np.uint8)
        padded[: panel.shape[0]] = panel
        parts += [padded, np.full((height, gap, 3), 255, np.uint8)]
    return np.concatenate(parts[:-1], axis=1)


def figure_png(fig: plt.Figure, dpi: int = 80) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def dice_histograms(per_class: Mapping[str, Sequence[float]]) -> bytes:
    """One histogram of per-image Dice per (foreground) class, 20 bins over [0, 1]."""
    count = max(1, len(per_class))
    columns = min(count, 3)
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(3.6 * columns, 2.6 * rows), squeeze=False, constrained_layout=True
    )
    for ax, (name, values) in zip(axes.ravel(), per_class.items(), strict=False):
        ax.hist(values, bins=20, range=(0, 1), color="#0072b2")
        ax.set(title=name, xlabel="Dice per image", ylabel="images", xlim=(0, 1))
    for ax in axes.ravel()[len(per_class) :]:
        ax.axis("off")
    return figure_png(fig)


def confusion_figure(matrix: np.ndarray, names: Sequence[str]) -> bytes:
    """Confusion matrix (row = true class) normalised by each true class's pixel count."""
    totals = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    size = 1.2 + 0.55 * len(names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size), constrained_layout=True)
    shown = ax.imshow(normalised, vmin=0, vmax=1, cmap="Blues")
    ticks = range(len(names))
    ax.set_xticks(ticks, names, rotation=45, ha="right")
    ax.set_yticks(ticks, names)
    ax.set(xlabel="predicted class", ylabel="true class", title="share of each true class")
    if len(names) <= 12:
        for (row, col), value in np.ndenumerate(normalised):
            colour = "white" if value > 0.5 else "black"
            ax.text(col, row, f"{value:.2f}", ha="center", va="center", color=colour, fontsize=8)
    fig.colorbar(shown, ax=ax, shrink=0.8)
    return figure_png(fig)


def read_metrics_csv(path: Path) -> list[dict[str, float]]:
    """A run's ``metrics.csv`` as rows of floats (empty cells are NaN)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            {k: float(v) if v not in ("", None) else math.nan for k, v in row.items()}
            for row in csv.DictReader(handle)
        ]


def training_curves(rows: list[dict[str, float]], class_names: Sequence[str]) -> bytes:
    """Losses and validation Dice (mean and per class) against the epoch."""
    epochs = [r["epoch"] for r in rows]
    fig, (loss_ax, dice_ax) = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        if key in rows[0]:
            loss_ax.plot(epochs, [r[key] for r in rows], "o-", ms=3, label=label)
    loss_ax.set(title="loss", xlabel="epoch")
    loss_ax.legend()
    for key in sorted((k for k in rows[0] if k.startswith("dice_")), key=lambda k: k[5:]):
        index = key[5:]
        name = class_names[int(index)] if index.isdigit() and int(index) < len(class_names) else key
        dice_ax.plot(epochs, [r[key] for r in rows], "--", lw=1, label=name)
    if "dice" in rows[0]:
        dice_ax.plot(epochs, [r["dice"] for r in rows], "k-", lw=2, label="mean (foreground)")
    dice_ax.set(title="validation Dice", xlabel="epoch", ylim=(0, 1.02))
    dice_ax.legend(fontsize="small")
    return figure_png(fig)
