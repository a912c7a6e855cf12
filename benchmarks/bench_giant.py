"""Giant images: peak RSS and megapixels/s of streamed `drunet predict`, against the in-memory path.

For each size (10k², 20k², 40k² RGB by default) a synthetic tiled, zlib-compressed BigTIFF is
generated on the fly — written band by band through ``write_tiled_tiff``, never whole in
memory: smooth stain-like blobs with noise, and with ``--tissue F`` white glass around a central
tissue region covering a share ``F`` of the slide. Then the real CLI runs on it in a fresh
process per case, ``drunet predict IMAGE --model WEIGHTS --out OUT --no-overlay``:

* ``stream``: ``--stream`` (tiled pyramidal BigTIFF mask; ``--tissue`` skipping when asked);
* ``memory``: the in-memory path, run only where it fits — its estimated peak (the image, its
  float32 copy and the blend sums: ``(C + 4·C + 8)·H·W`` bytes) below half the machine's
  memory; ``DRUNET_MAX_IMAGE_PIXELS`` is raised for it so the TIFF is read whole.

Peak RSS is the child's ``ru_maxrss`` (``os.wait4``), taken by a small launcher process that
forks and execs it: Linux folds the parent's peak into a child's ``ru_maxrss`` at ``exec``, so
waiting on ``drunet`` directly from this process (which generated a 20,000² image and peaked at
about 1.7 GB doing it) reported that peak as drunet's. Megapixels/s is image pixels over the
child's wall time (model loading, reading, writing included). The weights are the default
DRUNet (random: speed and memory do not depend on the values) for 3 channels, as if trained on
``--tile``² patches. The table prints both paths side by side with their ratios.

    python benchmarks/bench_giant.py [--sizes 10000 20000 40000] [--tile 256] [--tissue 0.3]
    python benchmarks/bench_giant.py --sizes 2000 --model-params init_features=4,depth=2  # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from drunet.checkpoint import save_weights
from drunet.config import config_from_dict
from drunet.giant.tiff_sink import write_tiled_tiff
from drunet.models import create_model

BAND = 512  # rows generated at once


def synthetic_bands(size: int, tissue: float | None, seed: int = 0) -> Iterator[np.ndarray]:
    """``(rows, size, 3)`` uint8 bands of a synthetic slide, top to bottom (see the module)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((size // 64 + 2, size // 64 + 2, 3)).astype(np.float32)
    side = size * np.sqrt(tissue) if tissue is not None else size
    low, high = (size - side) / 2, (size + side) / 2
    for top in range(0, size, BAND):
        rows = min(BAND, size - top)
        y = np.arange(top, top + rows)[:, None] / 64
        x = np.arange(size)[None, :] / 64
        y0, x0 = y.astype(int), x.astype(int)
        fy, fx = (y - y0)[..., None], (x - x0)[..., None]
        smooth = (  # bilinear upsampling of the coarse field, row band by row band
            coarse[y0, x0] * (1 - fy) * (1 - fx)
            + coarse[y0 + 1, x0] * fy * (1 - fx)
            + coarse[y0, x0 + 1] * (1 - fy) * fx
            + coarse[y0 + 1, x0 + 1] * fy * fx
        )
        band = (smooth * 160 + rng.integers(0, 60, (rows, size, 3))).astype(np.uint8)
        if tissue is not None:
            ys = np.arange(top, top + rows)[:, None]
            xs = np.arange(size)[None, :]
            glass = ~((ys >= low) & (ys < high) & (xs >= low) & (xs < high))
            band[glass] = 235
        yield band


def write_image(path: Path, size: int, tissue: float | None) -> None:
    write_tiled_tiff(
        path,
        synthetic_bands(size, tissue),
        height=size,
        width=size,
        dtype=np.uint8,
        channels=3,
        pyramid=tissue is not None,  # a slide has a pyramid (the tissue overview reads it)
    )


def write_weights(path: Path, tile: int, params: dict[str, object]) -> None:
    config = config_from_dict(
        {
            "model": {"name": "drunet", "in_channels": 3, "num_classes": 2, "params": params},
            "data": {
                "augmentation": {"patch_size": tile},
                "normalization": {
                    "mean": [0.5] * 3,
                    "std": [0.25] * 3,
                    "clip_percentiles": None,
                },
            },
        }
    )
    save_weights(path, create_model("drunet", in_channels=3, out_channels=1, **params), config)


def memory_fits(size: int) -> bool:
    """Whether the in-memory path's estimated peak is below half the machine's memory."""
    need = (3 + 4 * 3 + 8) * size * size
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return need < total / 2


def run_case(image: Path, weights: Path, out: Path, mode: str, tissue: bool) -> dict[str, float]:
    """One ``drunet predict`` in a fresh process: its peak RSS (MiB) and wall seconds."""
    command = [sys.executable, "-m", "drunet", "predict", str(image), "--model", str(weights)]
    command += ["--out", str(out), "--no-overlay"]
    env = dict(os.environ)
    if mode == "stream":
        command += ["--stream", "--tissue" if tissue else "--no-tissue"]
    else:
        env["DRUNET_MAX_IMAGE_PIXELS"] = str(2**40)
    start = time.perf_counter()
    launcher = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *command],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if launcher.returncode != 0:
        raise SystemExit(f"drunet predict ({mode}) failed on {image}")
    peak_kib = int(launcher.stdout.strip().splitlines()[-1])
    return {"peak_mib": peak_kib / 1024, "seconds": wall}  # ru_maxrss: KiB on Linux


# Fork, exec the command (its output discarded) and print its ru_maxrss; exit with its status.
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| size | tissue | stream s | stream peak RSS | stream MP/s | memory s | memory peak RSS | "
        "memory MP/s | RSS ratio | speed ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        s, m = row["stream"], row.get("memory")
        assert isinstance(s, dict)
        tissue = row.get("tissue")
        cells = [f"{row['size']}²", "all" if tissue is None else f"{tissue:.0%}"]
        cells += [f"{s['seconds']:.1f}", f"{s['peak_mib']:.0f} MiB", f"{s['mp_s']:.2f}"]
        if isinstance(m, dict):
            cells += [f"{m['seconds']:.1f}", f"{m['peak_mib']:.0f} MiB", f"{m['mp_s']:.2f}"]
            cells += [f"{s['peak_mib'] / m['peak_mib']:.2f}", f"{s['mp_s'] / m['mp_s']:.2f}"]
        else:
            cells += ["not run", "—", "—", "—", "—"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_params(text: str) -> dict[str, object]:
    params: dict[str, object] = {}
    for item in filter(None, text.split(",")):
        key, value = item.split("=")
        params[key] = int(value) if value.isdigit() else value
    return params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 20000, 40000])
    parser.add_argument("--tile", type=int, default=256, help="training patch = tile side")
    parser.add_argument("--tissue", type=float, default=None, help="tissue share of the slide")
    parser.add_argument("--model-params", default="", help="DRUNet params, e.g. depth=2")
    parser.add_argument("--no-memory", action="store_true", help="skip the in-memory path")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        weights = work / "model.safetensors"
        write_weights(weights, args.tile, parse_params(args.model_params))
        for size in args.sizes:
            image = work / f"synthetic_{size}.tif"
            write_image(image, size, args.tissue)
            row: dict[str, object] = {"size": size, "tissue": args.tissue}
            modes = ["stream"] + ([] if args.no_memory or not memory_fits(size) else ["memory"])
            for mode in modes:
                result = run_case(image, weights, work / mode, mode, args.tissue is not None)
                result["mp_s"] = size * size / 1e6 / result["seconds"]
                row[mode] = result
                load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
                print(f"{size}² {mode}: {json.dumps(result)} load {load}", flush=True)
            rows.append(row)
            image.unlink()
    print(table(rows))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
