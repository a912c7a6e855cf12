"""``PredictJob``: everything ``drunet predict`` can be asked, as one typed object, and the
``PredictReport`` of running it (:func:`drunet.inference.run.run_predict`).

Every flag of ``drunet predict`` is a field here (a test keeps them in step), so the Python API
does all the command does::

    report = run_predict(PredictJob("scans/", models=("runs/a", "runs/b"), out=Path("masks")))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drunet.giant.options import GiantOptions
from drunet.inference.files import PredictionReport
from drunet.inference.options import PredictSettings
from drunet.inference.shard import parse_shard


@dataclass(frozen=True)
class PredictJob(PredictSettings):
    """A prediction to run: inputs, the model(s), where and how, and what to write.

    * ``inputs``: an image file, a folder of images, or a glob.
    * ``models``: run folders or weights files; none → the latest run in ``runs_dir``; several
      → an ensemble averaging their probabilities. ``backend``: ``torch`` or ``onnxruntime``
      (one model, the exported graph in float32 on the CPU).
    * ``out``: the folder of ``<stem>_mask.png`` and the other outputs: ``overlay``, ``color``,
      ``probabilities``; ``nnunet_names``: nnU-Net channel files' masks as ``<case>.png``.
    * ``resume``: skip inputs whose outputs all exist (``--continue``). ``shard``: ``(I, N)`` or
      ``"I/N"``, only the inputs whose index in the sorted list is ``I`` modulo ``N``.
    * the tiling, test-time augmentation, post-processing, ``device``, ``precision`` and
      ``compile`` fields: see :class:`~drunet.inference.options.PredictSettings`.
    * ``prefetch``: batches read ahead in ``workers`` threads (0: no threads).
    * Giant images (:mod:`drunet.giant.files`: whole-slide files, OME-Zarr, pyramidal or
      larger-than-the-pixel-limit TIFFs; ``stream``: every input) are streamed: ``level`` /
      ``mpp`` choose the pyramid level, ``tissue`` skips background (``None``: on for slides),
      ``resume`` continues an interrupted one from its last finished rows, ``overwrite``
      replaces a file drunet did not write at an output name and discards an unfinished run.
    * ``json_output``: the caller reports as JSON (:meth:`PredictReport.to_json`), so notes
      meant for a person are not shown.
    """

    inputs: str | Path
    models: tuple[str | Path, ...] = ()
    out: Path = Path("predictions")
    runs_dir: Path = Path("runs")
    overlay: bool = True
    color: bool = False
    probabilities: bool = False
    nnunet_names: bool = False
    resume: bool = False
    json_output: bool = False
    backend: str = "torch"
    shard: tuple[int, int] | str | None = None
    prefetch: int = 2
    workers: int = 2
    stream: bool = False
    level: int | None = None
    mpp: float | None = None
    tissue: bool | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.shard is not None:  # "I/N" or (I, N), checked alike
            text = self.shard if isinstance(self.shard, str) else "/".join(map(str, self.shard))
            object.__setattr__(self, "shard", parse_shard(text))
        object.__setattr__(self, "models", tuple(self.models or ()))
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "runs_dir", Path(self.runs_dir))
        if self.prefetch < 0:
            raise ValueError(f"prefetch must be >= 0, got {self.prefetch}")

    def giant_options(self) -> GiantOptions:
        """How giant inputs are streamed (see :class:`~drunet.giant.files.GiantOptions`)."""
        return GiantOptions(
            probabilities=self.probabilities,
            level=self.level,
            mpp=self.mpp,
            tissue=self.tissue,
            resume=self.resume,
            overwrite=self.overwrite,
        )


@dataclass
class PredictReport(PredictionReport):
    """What a job wrote, skipped and could not read, with the weights it used."""

    models: list[Path] = field(default_factory=list)
    out: Path = Path("predictions")

    def to_json(self) -> dict[str, Any]:
        """The report as ``drunet predict --json`` prints it."""
        return {
            "models": [str(path) for path in self.models],
            "out": str(self.out),
            "written": [str(path) for path in self.written],
            "skipped": [str(path) for path in self.skipped],
            "failed": {str(path): reason for path, reason in self.failed.items()},
        }

    def summary(self) -> str:
        """One line for a person: how many masks were written where, and skipped."""
        done = f"wrote {len(self.written)} mask(s) to {self.out}/"
        if self.skipped:
            done += f"; skipped {len(self.skipped)} already predicted (--continue)"
        return done
