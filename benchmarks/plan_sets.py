"""The data and the scoring of benchmarks/plan_vs_default.sh (today's default vs the plan).

    python benchmarks/plan_sets.py prepare WORK ../shared/datasets   # splits, synthetic sets
    python benchmarks/plan_sets.py score RUN HELDOUT [--rand] >> results.jsonl
    python benchmarks/plan_sets.py table WORK/results.jsonl           # the README table

``prepare`` writes ``WORK/<set>/trainval`` and ``WORK/<set>/heldout`` (``images/`` + ``masks/``)
for ISBI 2012 and DSB 2018 (a seeded third held out, as symbolic links to the shared files) and
for three synthetic sets drawn with OpenCV: ``synth_thin`` (2-px curves, 256²), ``synth_wide``
(discs of radius 8–16, 256²) and ``synth_empty`` (101² images, 70 % of masks empty).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

SHARED = {"isbi2012": "isbi2012/train", "dsb2018_nuclei": "dsb2018_nuclei"}
SYNTHETIC = {"synth_thin": (256, 30), "synth_wide": (256, 30), "synth_empty": (101, 60)}
HELD_OUT = 1 / 3
SEED = 0


def held_out_names(names: list[str], seed: int = SEED) -> set[str]:
    """A seeded third of ``names`` (rounded up), the same for every run."""
    order = np.random.default_rng(seed).permutation(sorted(names))
    return set(order[: -(-len(names) // 3)].tolist())


def split_folder(source: Path, out: Path) -> None:
    """Link ``source/{images,masks}`` into ``out/trainval`` and ``out/heldout``."""
    masks = {p.stem: p for p in (source / "masks").iterdir()}
    images = {p.stem: p for p in (source / "images").iterdir() if p.stem in masks}
    held = held_out_names(list(images))
    for stem, image in images.items():
        part = out / ("heldout" if stem in held else "trainval")
        for kind, path in (("images", image), ("masks", masks[stem])):
            link = part / kind / path.name
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(path.resolve())


def draw(kind: str, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic ``(image uint8 (H, W), mask uint8 0/1)`` of ``kind``."""
    mask = np.zeros((size, size), np.uint8)
    if kind == "synth_thin":
        for _ in range(6):
            points = rng.integers(0, size, (4, 2)).astype(np.int32)
            cv2.polylines(mask, [points], False, 1, thickness=2)
    elif kind == "synth_wide" or rng.random() < 0.3:  # synth_empty: 70 % of masks empty
        for _ in range(int(rng.integers(2, 7)) if kind == "synth_wide" else 2):
            centre = tuple(int(c) for c in rng.integers(0, size, 2))
            radius = int(rng.integers(8, 17)) if kind == "synth_wide" else int(rng.integers(4, 9))
            cv2.circle(mask, centre, radius, 1, thickness=-1)
    image = 90 + 60 * mask.astype(np.float32) + rng.normal(0, 25, mask.shape)
    image = cv2.GaussianBlur(image, (3, 3), 0)
    return np.clip(image, 0, 255).astype(np.uint8), mask


def prepare(work: Path, shared: Path) -> None:
    for name, folder in SHARED.items():
        split_folder(shared / folder, work / name)
    for kind, (size, count) in SYNTHETIC.items():
        rng = np.random.default_rng(SEED)
        source = work / kind / "all"
        for i in range(count):
            image, mask = draw(kind, size, rng)
            for sub, array in (("images", image), ("masks", mask * 255)):
                (source / sub).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(source / sub / f"{i:03d}.png"), array)
        split_folder(source, work / kind)


def score(run: Path, held_out: Path, rand: bool) -> dict:
    from drunet.compare.measure import evaluate_held_out
    from drunet.datasets import discover
    from drunet.inference import Predictor

    pairs = discover(held_out).pairs
    scores, _, predictions = evaluate_held_out(Predictor.from_run(run), pairs, rand)
    truths = [read_mask(pair.mask) for pair in pairs]
    per_image = [image_dice(p, t) for p, t in zip(predictions, truths, strict=True)]
    epochs = len((run / "metrics.csv").read_text().splitlines()) - 1
    return {
        "run": str(run),
        "held_out": len(pairs),
        "epochs": epochs,
        **scores,
        "image_dice": float(np.mean(per_image)),
    }


def read_mask(path: Path) -> np.ndarray:
    """A held-out mask as 0/1 (the sets here are binary: 0/255 or 0/1 files)."""
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise SystemExit(f"{path}: not a readable mask")
    return (mask.reshape(mask.shape[:2] + (-1,))[..., 0] > 0).astype(np.uint8)


def image_dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Foreground Dice of one image; an empty prediction of an empty mask counts 1 (the rule of
    the per-image validation score), so painting empty images is visible."""
    p, t = prediction > 0, truth > 0
    total = int(p.sum()) + int(t.sum())
    return 1.0 if total == 0 else 2.0 * int((p & t).sum()) / total


def table(results: Path) -> str:
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    return "\n".join([*table_lines(rows), "", *summary_lines(rows)])


def summary_lines(rows: list[dict]) -> list[str]:
    """Per set, at the shortest budget: each recipe's Dice over its seeds (mean, the seeds'
    range as the spread), the planned recipe's gap to the default against the larger spread,
    and time to quality (the planned recipe's mean Dice at each budget over its longest)."""
    lines = []
    for name in dict.fromkeys(r["set"] for r in rows):
        mine = [r for r in rows if r["set"] == name]
        short = min(r["minutes"] for r in mine)
        parts = []
        dice: dict[str, list[float]] = {}
        for recipe in dict.fromkeys(r["recipe"] for r in mine):
            runs = [r for r in mine if r["recipe"] == recipe and r["minutes"] == short]
            if not runs:
                continue
            values = [r["dice"] for r in runs]
            dice[recipe] = values
            text = f"{recipe} {_mean(values):.4f} (±{_spread(values) / 2:.4f})"
            rand = [r["adapted_rand_error"] for r in runs if "adapted_rand_error" in r]
            if rand:
                text += f", adapted Rand {_mean(rand):.4f} (±{_spread(rand) / 2:.4f})"
            parts.append(text)
        line = f"{name} at {short:g} min, mean (± half the seeds' range): " + "; ".join(parts)
        if "plan" in dice and "default" in dice:
            gap = _mean(dice["plan"]) - _mean(dice["default"])
            spread = max(_spread(dice["plan"]), _spread(dice["default"]))
            line += f"; plan − default {gap:+.4f} (seed spread {spread:.4f})"
        for minutes in sorted({r["minutes"] for r in mine} - {short}):  # longer budgets, paired
            both = {
                recipe: {r["seed"]: r["dice"] for r in mine
                         if r["recipe"] == recipe and r["minutes"] == minutes}
                for recipe in ("plan", "default")
            }  # fmt: skip
            seeds = sorted(set(both["plan"]) & set(both["default"]))
            if seeds:
                gaps = [both["plan"][seed] - both["default"][seed] for seed in seeds]
                line += (
                    f"; at {minutes:g} min plan − default "
                    + " / ".join(f"{gap:+.4f}" for gap in gaps)
                    + f" (seed {', '.join(map(str, seeds))})"
                )
        planned = [r for r in mine if r["recipe"] == "plan"]
        budgets = sorted({r["minutes"] for r in planned})
        if len(budgets) > 1:  # over the seeds run at the longest budget, on every budget
            seeds = {r["seed"] for r in planned if r["minutes"] == budgets[-1]}
            means = {
                m: _mean([r["dice"] for r in planned if r["minutes"] == m and r["seed"] in seeds])
                for m in budgets
            }
            longest = means[budgets[-1]]
            line += f"; time to quality (seed {', '.join(map(str, sorted(seeds)))}): " + ", ".join(
                f"{m:g} min {means[m]:.4f} = {means[m] / longest:.1%}" for m in budgets
            )
        lines.append(line)
    return lines


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _spread(values: list[float]) -> float:
    return max(values) - min(values)


def table_lines(rows: list[dict]) -> list[str]:
    """The README table's lines, one row per run (``per-image Dice``: :func:`image_dice`)."""
    lines = [
        "| set | recipe | minutes | seed | epochs | Dice | per-image Dice | adapted Rand error |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        rand = f"{r['adapted_rand_error']:.4f}" if "adapted_rand_error" in r else "–"
        lines.append(
            f"| {r['set']} | {r['recipe']} | {r['minutes']} | {r['seed']} | {r['epochs']} | "
            f"{r['dice']:.4f} | {r.get('image_dice', float('nan')):.4f} | {rand} |"
        )
    return lines


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("prepare")
    p.add_argument("work", type=Path)
    p.add_argument("shared", type=Path)
    s = commands.add_parser("score")
    s.add_argument("run", type=Path)
    s.add_argument("held_out", type=Path)
    s.add_argument("--rand", action="store_true", help="also ISBI's adapted Rand error")
    s.add_argument("--tag", default="{}", help="JSON fields added to the line (set, recipe, …)")
    t = commands.add_parser("table")
    t.add_argument("results", type=Path)
    args = parser.parse_args(argv)
    if args.command == "prepare":
        prepare(args.work, args.shared)
    elif args.command == "score":
        print(json.dumps({**json.loads(args.tag), **score(args.run, args.held_out, args.rand)}))
    else:
        print(table(args.results))


if __name__ == "__main__":
    main(sys.argv[1:])
