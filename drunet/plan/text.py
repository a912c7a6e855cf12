"""The fingerprint and the plan as a few plain-text lines (the CLI prints them)."""

from __future__ import annotations

from typing import Any

from drunet.plan.fingerprint import Fingerprint
from drunet.plan.postprocess import Selection
from drunet.plan.rules import Plan


def fingerprint_lines(fp: Fingerprint) -> list[str]:
    """A short summary of ``fp``: data, sizes, intensities, spacing, classes."""
    sizes = fp.sizes
    lines = [
        f"data: {fp.source}; split: {fp.split}",
        f"measured: {fp.sampled} of {fp.pairs} training pairs (at most {fp.max_images}, centre "
        f"{fp.max_side}² of each)"
        + (f"; {fp.skipped} unreadable, left out (drunet verify says why)" if fp.skipped else ""),
        f"sizes (W×H): {_hw(sizes.min)} … {_hw(sizes.max)}, median {_hw(sizes.median)}, "
        f"{sizes.distinct} distinct",
        f"channels: {fp.channels} ({', '.join(fp.dtypes)})",
    ]
    for c, stats in enumerate(fp.intensity):
        lines.append(
            f"  channel {c}: mean {stats.mean:.4g}, std {stats.std:.4g}, range "
            f"{stats.min:.4g} … {stats.max:.4g} (0.5–99.5 %: {stats.p00_5:.4g} … "
            f"{stats.p99_5:.4g})"
        )
    if fp.spacing is not None:
        s = fp.spacing
        lines.append(f"spacing: {s.x:.4g} × {s.y:.4g} {s.unit} (x × y; {fp.spacing_files} file(s))")
    lines.append(f"masks without foreground: {fp.empty_mask_fraction:.0%}")
    for k in fp.classes:
        text = f"  {k.name}: {k.frequency:.1%} of pixels, width {_px(k.width_median)}"
        if k.width_median is not None:
            text += f" (10–90 %: {_px(k.width_p10)} … {_px(k.width_p90)})"
        if k.objects_per_image is not None:
            text += (
                f"; {k.objects_per_image:g} object(s) per mask, area {_px(k.object_area_median)}"
                f" (5–95 %: {_px(k.object_area_p05)} … {_px(k.object_area_p95)})"
            )
        lines.append(text)
    if fp.ignore_index is not None:
        lines.append(f"ignored (value {fp.ignore_index}): {fp.ignored_share:.1%} of pixels")
    return lines


def plan_lines(plan: Plan) -> list[str]:
    """One line per choice: ``key = value  (source: reason)``."""
    return [f"{c.key} = {_value(c.key, c.value)}  ({c.source}: {c.reason})" for c in plan.choices]


def key_lines(plan: Plan) -> list[str]:
    """The plan's model, patch and batch in three short lines (``drunet train`` prints them
    before the first epoch), each with its source and reason."""
    labels = {"model.name": "model", "data.augmentation.patch_size": "patch"}
    labels["data.batch_size"] = "batch"
    return [
        f"plan: {labels[c.key]} {_value(c.key, c.value)} ({c.source}: {c.reason})"
        for c in plan.choices
        if c.key in labels
    ]


def selection_lines(selection: Selection) -> list[str]:
    """The post-processing chosen on validation: the per-image score before and after, then one
    line per step, ``key = value  (reason with every candidate's score)``."""
    name = "Dice" if selection.metric == "dice" else "IoU"
    head = (
        f"post-processing chosen on {selection.images} validation image(s) "
        f"({selection.empty_masks} empty), per-image {name} {selection.baseline:.4f} → "
        f"{selection.score:.4f} (an empty prediction of an empty mask scores 1)"
    )
    return [head, *(f"  {s.key} = {_value(s.key, s.value)}  ({s.reason})" for s in selection.steps)]


def _value(key: str, value: Any) -> str:
    if key == "loss" and value is None:
        return "Dice + CE"
    if isinstance(value, bool):
        return str(value).lower()
    return "none" if value is None else str(value)


def _hw(size: tuple[int, int]) -> str:
    return f"{size[1]}×{size[0]}"


def _px(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g} px"
