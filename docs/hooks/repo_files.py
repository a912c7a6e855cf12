"""mkdocs hook: the benchmark figures and reports under ``benchmarks/results/`` join the site.

They live beside the benchmarks that make them (and the README shows them from there); the site
serves the same files as ``results/…`` without a second copy in ``docs/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
SUFFIXES = {".png", ".html"}


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for path in sorted(RESULTS.rglob("*")):
        if path.suffix in SUFFIXES:
            uri = "results/" + path.relative_to(RESULTS).as_posix()
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
