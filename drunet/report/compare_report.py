"""``report.html`` for ``drunet compare``: the models side by side.

The comparison table, the training curves, and per held-out image the image, the ground truth
and each model's mask, ordered by where the models disagree most (the share of pixels on which
two models differ, averaged over the pairs of models; with one model, its share of wrong
pixels). Built from plain data so that :mod:`drunet.compare` calls it, never the reverse.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from drunet.atomic import atomic_write_text
from drunet.datasets import MaskOptions, Pair, read_pair
from drunet.evaluation.cases import foreground_dice
from drunet.inference.overlay import to_display
from drunet.outputs import claim_outputs
from drunet.report.figures import mask_rgb, png_bytes, shrink
from drunet.report.html import Column, esc, figure, number, page, section, simple_table
from drunet.report.html import sortable_table as _sortable

REPORT_NAME = "report.html"


@dataclass
class ModelMasks:
    """One model of a comparison: its name, its masks (one per held-out pair) and its run."""

    name: str
    predictions: Sequence[np.ndarray]
    run_dir: str | Path | None = None


def disagreement(predictions: Sequence[np.ndarray], truth: np.ndarray) -> float:
    """Share of pixels where two models differ, averaged over the pairs of models; with one
    model, the share of pixels where it differs from ``truth``."""
    if len(predictions) < 2:
        return float(np.mean(predictions[0] != truth)) if predictions else 0.0
    pairs = itertools.combinations(predictions, 2)
    return float(np.mean([np.mean(a != b) for a, b in pairs]))


def compare_report(
    rows: Sequence[dict[str, str]],
    pairs: Sequence[Pair],
    models: Sequence[ModelMasks],
    curves_png: bytes | None = None,
    mask_options: MaskOptions | None = None,
    max_cases: int = 60,
    panel_side: int = 200,
) -> str:
    """The whole page; ``rows`` is the comparison table as shown in the console (text cells)."""
    for model in models:
        if len(model.predictions) != len(pairs):
            raise ValueError(
                f"model {model.name} has {len(model.predictions)} masks for {len(pairs)} images"
            )
    num_classes = 2
    records = []
    for i, pair in enumerate(pairs):
        _, truth = read_pair(pair, mask_options)
        masks = [m.predictions[i] for m in models]
        num_classes = max(num_classes, int(truth.max()) + 1, *(int(m.max()) + 1 for m in masks))
        records.append((i, pair, truth, disagreement(masks, truth)))
    ignore = mask_options.ignore_index if mask_options is not None else None
    dice = [
        [foreground_dice(m.predictions[i], truth, num_classes, ignore) for m in models]
        for i, _, truth, _ in records
    ]
    order = sorted(records, key=lambda r: (-r[3], r[0]))

    titles = list(dict.fromkeys(t for row in rows for t in row))
    table = simple_table(titles, [[row.get(t, "") for t in titles] for row in rows])
    sections = [section("Scores on the held-out images", table, "table")]
    if curves_png is not None:
        sections.append(
            section("Training", figure(curves_png, "validation Dice and loss"), "curves")
        )

    columns = [Column("image", "image", text=True), Column("disagreement", "disagreement")]
    columns += [Column(f"dice_{k}", f"Dice {m.name}") for k, m in enumerate(models)]
    table_rows = [(pair.name, f"case-{i}", [share, *dice[i]]) for i, pair, _, share in order]
    hint = "<p>Sorted by disagreement; click a header to sort (or <code>#sort=dice_0</code>).</p>"
    sections.append(section("Per image", hint + _sortable(columns, table_rows), "per-image"))

    cards = []
    for i, pair, truth, share in order[:max_cases]:
        image, _ = read_pair(pair, mask_options)
        panels = [("image", shrink(to_display(image), panel_side))]
        panels.append(
            ("ground truth", shrink(mask_rgb(truth, num_classes, ignore), panel_side, True))
        )
        for k, model in enumerate(models):
            title = f"{model.name} (Dice {number(dice[i][k])})"
            panels.append(
                (title, shrink(mask_rgb(model.predictions[i], num_classes), panel_side, True))
            )
        pictures = "".join(figure(png_bytes(p), title) for title, p in panels)
        cards.append(
            f'<div class="case" id="case-{i}">{esc(pair.name)} — disagreement '
            f'{number(share)}<div class="panels">{pictures}</div></div>'
        )
    shown = f"the {len(cards)} of {len(pairs)} images where the models disagree most"
    sections.append(section(f"Images: {shown}", "".join(cards), "cases"))

    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    meta = [f"{len(pairs)} held-out image(s); models: {', '.join(m.name for m in models)}"]
    meta += [f"{m.name}: {m.run_dir}" for m in models if m.run_dir is not None]
    return page(f"drunet comparison — {stamp}", meta, sections)


def write_compare_report(
    out_dir: str | Path,
    rows: Sequence[dict[str, str]],
    pairs: Sequence[Pair],
    models: Sequence[ModelMasks],
    curves_png: bytes | None = None,
    mask_options: MaskOptions | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``out_dir/report.html`` (see :func:`compare_report`); a ``report.html`` drunet did
    not write is refused unless ``overwrite``."""
    path = Path(out_dir) / REPORT_NAME
    html = compare_report(rows, pairs, models, curves_png, mask_options)
    claim_outputs(out_dir, [path], overwrite=overwrite)
    atomic_write_text(path, html)
    return path
