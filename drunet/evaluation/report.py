"""``report.html`` for ``drunet evaluate``: summary, per-image table, worst cases, Dice
histograms, the confusion matrix (multi-class), and the run's training curves and config."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from drunet.atomic import atomic_write_text
from drunet.evaluation.cases import Case, CaseCollector
from drunet.evaluation.result import Evaluation
from drunet.evaluation.scoring import SCORES, nanmean
from drunet.report.figures import (
    FALSE_NEGATIVE,
    FALSE_POSITIVE,
    IGNORED,
    WRONG_CLASS,
    confusion_figure,
    dice_histograms,
    read_metrics_csv,
    training_curves,
)
from drunet.report.html import (
    Column,
    esc,
    figure,
    img,
    legend,
    number,
    page,
    section,
    simple_table,
    sortable_table,
)

REPORT_NAME = "report.html"


def per_image_values(evaluation: Evaluation) -> list[dict[str, float]]:
    """One dict per image: foreground means of each score and HD95 (classes absent from both
    files left out; NaN when every one is), the summed foreground fp / fn and, with several
    foreground classes, ``dice_<c>`` per class (NaN when absent)."""
    by_image: list[list[dict[str, Any]]] = [[] for _ in evaluation.names]
    for i, row in enumerate(evaluation.rows()):
        by_image[i // evaluation.num_classes].append(row)
    values = []
    for rows in by_image:
        foreground = [r for r in rows if r["class"] > 0]
        item: dict[str, float] = {k: nanmean([r[k] for r in foreground]) for k in SCORES}
        if evaluation.hd95 is not None:
            item["hd95"] = nanmean([r["hd95"] for r in foreground])
        item["fp"] = sum(r["fp"] for r in foreground)
        item["fn"] = sum(r["fn"] for r in foreground)
        if len(foreground) > 1:
            item.update({f"dice_{r['class']}": r["dice"] for r in foreground})
        values.append(item)
    return values


def _summary(evaluation: Evaluation) -> str:
    summary = evaluation.summary()
    unit = summary["hd95"]["unit"] if "hd95" in summary else ""
    headers = ["class", "Dice", "IoU", "precision", "recall"]
    headers += [f"HD95 ({unit})"] if unit else []
    rows = []
    for c, (name, scores) in enumerate(summary["per_class"].items()):
        row = [f"{c} {name}", *(number(scores[k]) for k in SCORES)]
        rows.append(row + ([number(scores.get("hd95"), 2)] if unit else []))
    mean = ["mean (foreground)", *(number(summary["mean"][k]) for k in SCORES)]
    rows.append(mean + ([number(summary["hd95"]["mean"], 2)] if unit else []))
    body = simple_table(headers, rows)
    body += (
        "<p>macro: counts summed over the images, each class scored, the foreground classes "
        "averaged. "
        + (
            "A class absent from both prediction and truth scores 1.0 (--absent-as-one).</p>"
            if evaluation.absent_as_one
            else "A class absent from both prediction and truth is absent (—) and left out "
            "of the means.</p>"
        )
    )
    reductions = [
        [name, *(number(scores[k]) for k in SCORES)]
        for name, scores in summary["reductions"].items()
    ]
    body += simple_table(["reduction", "Dice", "IoU", "precision", "recall"], reductions)
    if unit:
        body += f"<p>HD95 undefined (one side empty) in {summary['hd95']['undefined']} case(s).</p>"
    if evaluation.failed:
        items = "".join(f"<li>{esc(p)}: {esc(r)}</li>" for p, r in evaluation.failed.items())
        body += f'<p class="bad">{len(evaluation.failed)} input(s) failed:</p><ul>{items}</ul>'
    return section("Summary", body, "summary")


def _stacks(evaluation: Evaluation) -> str:
    """Per stack: its slices' counts summed, then scored (foreground means); "" without."""
    if not evaluation.has_stacks:
        return ""
    rows = [
        [stack.name, str(stack.slices), *(number(stack.mean[k]) for k in SCORES)]
        for stack in evaluation.stack_scores()
    ]
    body = simple_table(["stack", "slices", "Dice", "IoU", "precision", "recall"], rows)
    body += (
        "<p>Each stack's counts summed over its slices, then scored: not the mean of its "
        "slices' scores. Per class in per_stack.csv.</p>"
    )
    return section("Per stack", body, "per-stack")


def _table(evaluation: Evaluation, values: list[dict[str, float]]) -> str:
    columns = [Column("image", "image", text=True), Column("dice", "Dice")]
    columns += [Column(k, k if k != "iou" else "IoU") for k in SCORES[1:]]
    if evaluation.hd95 is not None:
        columns.append(Column("hd95", "HD95", digits=2))
    columns += [Column("fp", "FP px"), Column("fn", "FN px")]
    for c in range(1, evaluation.num_classes if evaluation.num_classes > 2 else 1):
        columns.append(Column(f"dice_{c}", f"Dice {evaluation.class_names[c]}"))
    rows = [
        (name, f"case-{i}", [values[i][c.key] for c in columns[1:]])
        for i, name in enumerate(evaluation.names)
    ]
    hint = "<p>Click a header to sort; link a view with <code>#sort=dice</code>.</p>"
    return section("Per image", hint + sortable_table(columns, rows), "per-image")


def _case_caption(case: Case, values: dict[str, float]) -> str:
    scores = ", ".join(f"{k} {number(values[k])}" for k in SCORES)
    hd = f", HD95 {number(values['hd95'], 2)}" if "hd95" in values else ""
    return f"{case.name} — {scores}{hd}"


ERROR_LEGEND = [
    ("found", (235, 235, 235)),
    ("false positive", FALSE_POSITIVE),
    ("false negative", FALSE_NEGATIVE),
    ("wrong class", WRONG_CLASS),
    ("ignored", IGNORED),
]


def _worst(cases: list[Case], values: list[dict[str, float]], total: int) -> str:
    cards = []
    for case in cases:
        pictures = "".join(figure(png, title) for title, png in case.panels.items())
        caption = _case_caption(case, values[case.index])
        cards.append(
            f'<div class="case" id="worst-{case.index}"><a href="#case-{case.index}">'
            f'{esc(caption)}</a><div class="panels">{pictures}</div></div>'
        )
    title = f"Worst {len(cases)} of {total} (lowest foreground Dice)"
    body = f"<p>Error map: {legend(ERROR_LEGEND)}</p>" + "".join(cards)
    return section(title, body, "worst")


def _gallery(cases: list[Case], values: list[dict[str, float]]) -> str:
    cards = "".join(
        f'<div class="case strip" id="case-{case.index}">'
        f"<div>{esc(_case_caption(case, values[case.index]))}</div>"
        f"{img(case.strip, case.name)}</div>"
        for case in cases
    )
    body = (
        "<p>image · ground truth · prediction · errors</p>" + f'<div class="gallery">{cards}</div>'
    )
    return section("Every case", body, "cases")


def _training(run_dir: Path | None, class_names: Sequence[str]) -> str:
    if run_dir is None:
        return ""
    body = ""
    metrics = run_dir / "metrics.csv"
    if metrics.is_file():
        rows = read_metrics_csv(metrics)
        if rows:
            body += figure(training_curves(rows, class_names), f"training curves ({metrics})")
    config = run_dir / "config.yaml"
    if config.is_file():
        body += f"<h3>config.yaml</h3><pre>{esc(config.read_text(encoding='utf-8'))}</pre>"
    return section(f"Training run {run_dir}", body, "training") if body else ""


def evaluation_report(
    evaluation: Evaluation,
    collector: CaseCollector,
    meta: Sequence[str] = (),
    run_dir: Path | None = None,
) -> str:
    """The whole page as a string (see :func:`write_evaluation_report`)."""
    values = per_image_values(evaluation)
    foreground = range(1, evaluation.num_classes)
    histograms = {
        evaluation.class_names[c]: [
            dice for v in values if not math.isnan(dice := v.get(f"dice_{c}", v["dice"]))
        ]
        for c in foreground
    }
    distribution = figure(dice_histograms(histograms), "per-image Dice per class")
    sections = [
        _summary(evaluation),
        _stacks(evaluation),
        section("Distribution of per-image Dice", distribution, "distribution"),
    ]
    if evaluation.num_classes > 2:
        matrix = figure(
            confusion_figure(collector.confusion, evaluation.class_names),
            "confusion matrix, normalised by true class (rows sum to 1)",
        )
        sections.append(section("Confusion matrix", matrix, "confusion"))
    sections += [
        _worst(collector.worst_cases(), values, evaluation.num_images),
        _table(evaluation, values),
        _gallery(collector.cases, values),
        _training(run_dir, evaluation.class_names),
    ]
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [*meta, f"{evaluation.num_images} image(s) scored, {len(evaluation.failed)} failed"]
    return page(f"drunet evaluation — {stamp}", lines, sections)


def write_evaluation_report(
    evaluation: Evaluation,
    collector: CaseCollector,
    out_dir: str | Path,
    meta: Sequence[str] = (),
    run_dir: str | Path | None = None,
) -> Path:
    """Write ``out_dir/report.html``: one file, images inline, openable from disk.

    ``collector`` must have been the ``on_case`` hook of the evaluation; ``meta`` lines (model,
    data, …) head the page; ``run_dir`` adds the run's training curves and config when it holds
    them (``metrics.csv``, ``config.yaml``).
    """
    if len(collector.cases) != evaluation.num_images:
        raise ValueError(
            f"the collector saw {len(collector.cases)} cases but the evaluation scored "
            f"{evaluation.num_images}; pass it as on_case to the evaluation"
        )
    path = Path(out_dir) / REPORT_NAME
    run = Path(run_dir) if run_dir is not None else None
    atomic_write_text(path, evaluation_report(evaluation, collector, meta, run))
    return path
