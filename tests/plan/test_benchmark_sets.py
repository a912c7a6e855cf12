"""benchmarks/plan_sets.py (the data of plan_vs_default.sh): a seeded held-out third, and
synthetic sets whose fingerprints are what their names say. No training here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from drunet.plan import compute_fingerprint
from tests.plan.conftest import folder_pairs, write_folder

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import plan_sets


def test_a_seeded_third_is_held_out(tmp_path: Path) -> None:
    names = [f"{i:02d}" for i in range(30)]
    held = plan_sets.held_out_names(names)
    assert len(held) == 10 and held == plan_sets.held_out_names(list(reversed(names)))
    assert len(plan_sets.held_out_names(names[:7])) == 3  # rounded up
    source = write_folder(tmp_path / "src", [np.zeros((8, 8), np.uint8)] * 6)
    plan_sets.split_folder(source, tmp_path / "out")
    trainval = sorted(p.stem for p in (tmp_path / "out" / "trainval" / "images").iterdir())
    heldout = sorted(p.stem for p in (tmp_path / "out" / "heldout" / "masks").iterdir())
    assert len(heldout) == 2 and sorted(trainval + heldout) == [f"{i:03d}" for i in range(6)]
    assert (tmp_path / "out" / "heldout" / "images" / f"{heldout[0]}.png").is_symlink()


def test_synthetic_sets_have_the_structure_their_names_say(tmp_path: Path) -> None:
    fingerprints = {}
    for kind in ("synth_thin", "synth_wide", "synth_empty"):
        rng = np.random.default_rng(0)
        masks = [plan_sets.draw(kind, 101, rng)[1] for _ in range(20)]
        fingerprints[kind] = compute_fingerprint(folder_pairs(write_folder(tmp_path / kind, masks)))
    assert fingerprints["synth_thin"].thinnest_width <= 4
    assert fingerprints["synth_wide"].thinnest_width >= 16
    assert fingerprints["synth_wide"].empty_mask_fraction == 0
    assert 0.5 <= fingerprints["synth_empty"].empty_mask_fraction <= 0.9


def test_per_image_dice_counts_an_empty_prediction_of_an_empty_mask_as_right() -> None:
    empty = np.zeros((4, 4), np.uint8)
    blob = empty.copy()
    blob[:2, :2] = 1  # 4 pixels
    half = empty.copy()
    half[:1, :2] = 1  # 2 of them
    assert plan_sets.image_dice(empty, empty) == 1.0
    assert plan_sets.image_dice(blob, empty) == 0.0  # painting an empty image
    assert plan_sets.image_dice(half, blob) == 2 * 2 / (2 + 4)
    row = {"set": "s", "recipe": "plan", "minutes": 1, "seed": 0, "epochs": 3, "dice": 0.5}
    line = plan_sets.table_lines([{**row, "image_dice": 0.75}])[-1]
    assert line == "| s | plan | 1 | 0 | 3 | 0.5000 | 0.7500 | – |"


def test_the_summary_weighs_the_gap_against_the_seed_spread_and_time_to_quality() -> None:
    def row(recipe: str, seed: int, minutes: int, dice: float, **extra: float) -> dict:
        tags = {"set": "s", "recipe": recipe, "seed": seed, "minutes": minutes}
        return {**tags, "dice": dice, **extra}

    rows = [
        row("default", 0, 10, 0.80, adapted_rand_error=0.2),
        row("default", 1, 10, 0.84, adapted_rand_error=0.1),
        row("plan", 0, 10, 0.85, adapted_rand_error=0.1),
        row("plan", 1, 10, 0.83, adapted_rand_error=0.1),
        row("plan", 0, 30, 0.90),
        row("plan", 1, 30, 0.94),
    ]
    (line,) = plan_sets.summary_lines(rows)
    # default: mean 0.82, range 0.04; plan: mean 0.84, range 0.02; gap +0.02 vs spread 0.04;
    # time to quality over both seeds: 0.84 / 0.92 = 91.3 %.
    assert line == (
        "s at 10 min, mean (± half the seeds' range): default 0.8200 (±0.0200), adapted Rand "
        "0.1500 (±0.0500); plan 0.8400 (±0.0100), adapted Rand 0.1000 (±0.0000); plan − default "
        "+0.0200 (seed spread 0.0400); time to quality (seed 0, 1): 10 min 0.8400 = 91.3%, "
        "30 min 0.9200 = 100.0%"
    )
    # One seed at the long budget: the short budget's mean is over that seed only (0.85 / 0.90).
    (line,) = plan_sets.summary_lines(rows[:-1])
    assert line.endswith("time to quality (seed 0): 10 min 0.8500 = 94.4%, 30 min 0.9000 = 100.0%")
    # A default at the long budget too: the gap per seed run by both.
    (line,) = plan_sets.summary_lines([*rows, row("default", 1, 30, 0.935)])
    assert "; at 30 min plan − default +0.0050 (seed 1); time to quality" in line


def test_an_unknown_long_recipe_stops_the_script_before_any_work(tmp_path: Path) -> None:
    script = Path(__file__).parents[2] / "benchmarks" / "plan_vs_default.sh"
    env = {**os.environ, "LONG_RECIPE": "bogus", "WORK": str(tmp_path / "work")}
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert done.returncode == 2
    assert "LONG_RECIPE=bogus: use plan or default" in done.stderr
    assert not (tmp_path / "work").exists()  # nothing prepared, nothing trained
