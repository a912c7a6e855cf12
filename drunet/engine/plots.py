"""``progress.png``: the run at a glance — losses, validation Dice per class, LR, epoch time."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers; must precede pyplot
import matplotlib.pyplot as plt

from drunet.atomic import atomic_write_bytes
from drunet.engine.epochs import EpochRecord


def plot_progress(
    history: list[EpochRecord], path: str | Path, class_names: list[str] | None = None
) -> None:
    """Draw four panels from the per-epoch history and write them to ``path`` atomically."""
    epochs = [r.epoch for r in history]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), constrained_layout=True)
    loss_ax, dice_ax, lr_ax, time_ax = axes.ravel()

    loss_ax.plot(epochs, [r.train_loss for r in history], "o-", label="train")
    loss_ax.plot(epochs, [r.val_loss for r in history], "o-", label="validation")
    loss_ax.set(title="loss", xlabel="epoch")
    loss_ax.legend()

    per_class = sorted(
        (k for k in history[-1].scores if k.startswith("dice_")), key=lambda k: int(k[5:])
    )
    for key in per_class:
        index = int(key[5:])
        style = "--" if index == 0 and len(per_class) > 1 else "o-"  # background de-emphasised
        name = class_names[index] if class_names and index < len(class_names) else f"class {index}"
        dice_ax.plot(epochs, [r.scores.get(key, float("nan")) for r in history], style, label=name)
    dice_ax.plot(epochs, [r.scores["dice"] for r in history], "k-", lw=2, label="mean (fg)")
    best = max(history, key=lambda r: r.scores["dice"])
    dice_ax.axvline(best.epoch, color="grey", lw=0.8, ls=":")
    dice_ax.set(
        title=f"validation Dice (best {best.scores['dice']:.4f} @ {best.epoch})",
        xlabel="epoch",
        ylim=(0, 1.02),
    )
    dice_ax.legend(fontsize="small")

    lr_ax.plot(epochs, [r.lr for r in history], "o-")
    lr_ax.set(title="learning rate (start of epoch)", xlabel="epoch")
    time_ax.bar(epochs, [r.seconds for r in history])
    time_ax.set(title="epoch time (s)", xlabel="epoch")

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
