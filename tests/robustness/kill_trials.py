"""kill -9 at random moments of `drunet train` and `drunet predict`, then recover.

Each trial runs the real CLI in a subprocess and SIGKILLs it at a random time (no handler can
run: it is a power cut as far as drunet knows), then checks the recovery:

* training — ``drunet train --resume RUN`` finishes; ``metrics.csv`` lists every epoch once, in
  order; the kill lost at most the epoch in progress; the weights load;
* extension — a finished run extended with ``--resume RUN --epochs N`` is killed (before or
  after its first new epoch) and extended again: every epoch once, and the learning rate of every
  epoch is the one an uninterrupted extension has;
* prediction — every output file present after the kill is whole; ``--continue`` completes the
  folder without touching the finished files and leaves no temporary files.

    python tests/robustness/kill_trials.py --trials 10     # several trials of each (a few min)

``tests/robustness/test_kill.py`` runs one trial of each in the suite.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from drunet.atomic import TEMP_SUFFIX
from drunet.checkpoint import load_model
from drunet.config import TrainConfig
from drunet.datasets import make_synthetic, read_image, write_image
from drunet.engine.optim import lr_factor
from drunet.engine.state import load_state

TINY = {
    "model": {"params": {"init_features": 4, "depth": 2, "blocks_per_stage": 1}},
    "data": {"augmentation": {"patch_size": 32}, "batch_size": 2},
    "train": {"epochs": 8, "steps_per_epoch": 2, "device": "cpu"},
}


def drunet(*args: object, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "drunet", *map(str, args)]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, **kwargs
    )


def finish(process: subprocess.Popen, timeout: float = 300) -> str:
    output, _ = process.communicate(timeout=timeout)
    if process.returncode != 0:
        raise AssertionError(f"exit {process.returncode}:\n{output}")
    return output


def wait_for(condition, process: subprocess.Popen, timeout: float = 120) -> bool:
    """Poll until ``condition()``; False when the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.02)
    raise TimeoutError("condition not reached")


def kill(process: subprocess.Popen) -> str:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    output, _ = process.communicate()
    return output


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(TEMP_SUFFIX)]


def make_data(work: Path) -> tuple[Path, Path]:
    data = make_synthetic(work / "data", num_images=5, sizes=((40, 40),), seed=4)
    recipe = work / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(TINY))
    return data, recipe


def training_trial(work: Path, rng: random.Random) -> dict:
    """Kill training at a random moment after its first checkpoint; resume; check."""
    data, recipe = make_data(work)
    run = work / "runs" / "run"
    process = drunet("train", "--data", data, "--config", recipe, "--runs-dir", work / "runs",
                     "--name", "run", "--quiet")  # fmt: skip
    if wait_for(lambda: (run / "state.pt").exists(), process):
        time.sleep(rng.uniform(0.0, 2.0))  # somewhere in the remaining epochs
    output = kill(process)
    printed = [int(line.split()[1]) for line in output.splitlines() if line.startswith("epoch")]
    saved = load_state(run / "state.pt").epoch
    # The reporter prints an epoch just before its checkpoint is written, so the checkpoint may
    # lag the last printed epoch by one (killed while saving) — never more.
    assert saved >= (printed[-1] if printed else 0) - 1, (saved, printed)
    finish(drunet("train", "--resume", run, "--quiet"))
    lines = (run / "metrics.csv").read_text().splitlines()[1:]
    epochs = [int(line.split(",")[0]) for line in lines]
    assert epochs == list(range(1, TINY["train"]["epochs"] + 1)), epochs
    assert not temporaries(run), temporaries(run)
    load_model(run / "best.safetensors")
    load_model(run / "last.safetensors")
    return {"printed_before_kill": printed[-1] if printed else 0, "checkpoint_epoch": saved}


def extension_trial(work: Path, rng: random.Random, short: int = 3, total: int = 7) -> dict:
    """Extend a finished ``short``-epoch run to ``total`` epochs, kill the extension at a random
    moment, extend again; check every epoch is there once with the uninterrupted LR."""
    data, recipe = make_data(work)
    run = work / "runs" / "run"
    finish(drunet("train", "--data", data, "--config", recipe, "--runs-dir", work / "runs",
                  "--name", "run", "--quiet", "--epochs", short))  # fmt: skip
    process = drunet("train", "--resume", run, "--epochs", total, "--quiet")
    if rng.random() < 0.5:  # during start-up or the first new epoch
        time.sleep(rng.uniform(0.5, 6.0))
    elif wait_for(lambda: load_state(run / "state.pt").epoch > short, process):
        time.sleep(rng.uniform(0.0, 1.5))  # somewhere after the first new checkpoint
    kill(process)
    saved = load_state(run / "state.pt").epoch
    finish(drunet("train", "--resume", run, "--epochs", total, "--quiet"))
    lines = (run / "metrics.csv").read_text().splitlines()
    columns = lines[0].split(",")
    rows = [dict(zip(columns, line.split(","), strict=True)) for line in lines[1:]]
    epochs = [int(row["epoch"]) for row in rows]
    assert epochs == list(range(1, total + 1)), epochs
    expected = expected_lrs(short, total)
    lrs = [float(row["lr"]) for row in rows]
    assert all(abs(a - b) <= 1e-5 * b for a, b in zip(lrs, expected, strict=True)), (lrs, expected)
    assert f"epochs: {total}" in (run / "config.yaml").read_text()
    assert not temporaries(run), temporaries(run)
    load_model(run / "best.safetensors")
    load_model(run / "last.safetensors")
    return {"checkpoint_epoch_at_kill": saved, "short": short, "total": total}


def expected_lrs(short: int, total: int) -> list[float]:
    """LR at the start of each epoch: ``short`` epochs of the recipe's cosine schedule, then the
    decay continued from where it ended (an anchor) over the extension."""
    cfg = TrainConfig(**{**TINY["train"], "epochs": short})
    steps = cfg.steps_per_epoch or 1
    first = lr_factor(cfg, short * steps, 0)
    anchor = (short * steps, first(short * steps))
    extended = lr_factor(cfg, total * steps, 0, anchor=anchor)
    return [
        cfg.lr * (first if e <= short else extended)((e - 1) * steps) for e in range(1, total + 1)
    ]


def predict_trial(work: Path, rng: random.Random, run: Path | None = None, count: int = 80) -> dict:
    """Kill prediction of a folder at a random moment; --continue; check."""
    if run is None:
        data, recipe = make_data(work)
        finish(drunet("train", "--data", data, "--config", recipe, "--runs-dir", work / "runs",
                      "--name", "run", "--quiet", "--epochs", "1"))  # fmt: skip
        run = work / "runs" / "run"
    images = work / "images"
    pixels = np.random.default_rng(rng.randrange(2**32))
    for i in range(count):
        write_image(images / f"{i:03d}.png", pixels.integers(0, 256, (128, 128), np.uint8))
    out = work / "out"
    process = drunet("predict", images, "--model", run, "--out", out, "--batch-size", "1")
    if wait_for(lambda: out.is_dir() and any(out.glob("*_mask.png")), process):
        time.sleep(rng.uniform(0.0, 0.5))  # well before the last of the images
    kill(process)
    done = {p: p.stat().st_mtime_ns for p in out.glob("*_mask.png")}
    for path in out.glob("*.png"):  # nothing half-written under a final name
        read_image(path)
    output = finish(drunet("predict", images, "--model", run, "--out", out, "--continue"))
    masks = sorted(p.name for p in out.glob("*_mask.png"))
    assert masks == [f"{i:03d}_mask.png" for i in range(count)], masks
    for path, mtime in done.items():
        assert path.stat().st_mtime_ns == mtime, f"{path} was predicted again"
    assert not temporaries(out), temporaries(out)
    return {
        "finished_before_kill": len(done),
        "count": count,
        "continue_output": output.strip().splitlines()[-1],
    }


def concurrent_trial(work: Path, rng: random.Random, count: int = 60) -> dict:
    """Two `predict --continue` on one folder at once, one killed at a random moment; the other
    completes, then a third --continue finishes: every mask exactly once, whole, no temporaries."""
    data, recipe = make_data(work)
    finish(drunet("train", "--data", data, "--config", recipe, "--runs-dir", work / "runs",
                  "--name", "run", "--quiet", "--epochs", "1"))  # fmt: skip
    run, images, out = work / "runs" / "run", work / "images", work / "out"
    pixels = np.random.default_rng(rng.randrange(2**32))
    for i in range(count):
        write_image(images / f"{i:03d}.png", pixels.integers(0, 256, (128, 128), np.uint8))
    args = ("predict", images, "--model", run, "--out", out, "--continue", "--batch-size", "1")
    first, second = drunet(*args), drunet(*args)
    if wait_for(lambda: out.is_dir() and any(out.glob("*_mask.png")), first):
        time.sleep(rng.uniform(0.0, 0.5))
    kill(first)
    finish(second)
    finish(drunet(*args))
    masks = sorted(p.name for p in out.glob("*_mask.png"))
    assert masks == [f"{i:03d}_mask.png" for i in range(count)], masks
    for path in out.glob("*.png"):  # every file whole
        read_image(path)
    assert not temporaries(out), temporaries(out)
    return {"count": count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    kinds = (
        ("train", training_trial),
        ("extend", extension_trial),
        ("predict", predict_trial),
        ("concurrent", concurrent_trial),
    )
    for kind, trial in kinds:
        for i in range(args.trials):
            with tempfile.TemporaryDirectory() as work:
                result = trial(Path(work), rng)
            print(f"{kind} trial {i + 1}/{args.trials}: ok {result}", flush=True)
    print(f"all {len(kinds) * args.trials} trials recovered")


if __name__ == "__main__":
    main()
